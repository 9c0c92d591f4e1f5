"""Feedback labels: recalibration of the risk score and the precision on the last N labelled alerts."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from classifiers.calibration import Recalibrator, summarize
from classifiers.risk import RiskScorer
from monitor.cli import app
from monitor.clock import ManualClock
from monitor.models import EscalationState, LabelledAlert, RiskAssessment, Severity
from monitor.pipeline.classify import classify_pending
from monitor.pipeline.score import score_pending
from monitor.store.repository import Store
from monitor.store.schema import FeedbackRow, RiskRow
from tests.support import BRAND, LEGAL_THREAT, T0, build_config, build_mention, config_dict


def overconfident(n: int) -> list[LabelledAlert]:
    """Alerts the raw score puts at 0.6-0.95: none in the lower half was worth it, one in four in the upper."""
    return [LabelledAlert(0.6 + 0.35 * i / n, i % 4 == 0 and i > n // 2) for i in range(n)]


def test_recalibrator_is_the_identity_until_there_is_enough_to_learn():
    assert not Recalibrator.fit(overconfident(29), min_labels=30).fitted
    assert not Recalibrator.fit([LabelledAlert(0.8, True)] * 50, min_labels=30).fitted, "one kind of label"
    storms = [LabelledAlert(None, i % 2 == 0) for i in range(50)]
    assert not Recalibrator.fit(storms, min_labels=30).fitted, "storm alerts have no score to recalibrate"
    assert Recalibrator()(0.73) == 0.73


def test_recalibrator_lowers_an_overconfident_score_and_keeps_its_order():
    recalibrate = Recalibrator.fit(overconfident(60), min_labels=30)
    assert recalibrate.fitted
    assert recalibrate(0.8) < 0.5
    values = [recalibrate(p / 100) for p in range(1, 100)]
    assert values == sorted(values)
    assert all(0 < v < 1 for v in values)


def test_summary_precision_and_line():
    _, summary = summarize(overconfident(10) + [LabelledAlert(None, True)], min_labels=30)
    assert (summary.labelled, summary.useful, summary.calibrated) == (11, 2, False)
    assert summary.precision == pytest.approx(2 / 11)
    assert summary.line() == "alert precision: 0.18 on the last 11 labelled alerts (too few to recalibrate the risk)"
    assert summarize([], 30)[1].line() == "alert precision: no labelled alerts yet"


def _alert(store: Store, n: int, raw: float, label: str | None, now=T0) -> int:
    """A post with a stored risk, its escalation, and an agent's label."""
    (mention_id,) = store.ingest("x", BRAND, [build_mention(f"m{n}", at=now)], None, own_accounts={}, now=now).new_ids
    store.save_assessments([RiskAssessment(mention_id, min(1.0, raw + 0.05), Severity.high, ("r",), 0.0, now, raw)])
    escalation = store.create_escalation(
        brand=BRAND, group_key=f"mention:{mention_id}", kind="mention", subject_mention_id=mention_id,
        storm_id=None, source="x", lang="en", severity=Severity.high, probability=raw, reasons=["r"],
        suggested_owner=None, owner_reason=None, member_ids=[mention_id], alert_payload={}, channel="#c",
        last_alert={}, now=now)
    if label is not None:
        with store.session() as s:
            s.add(FeedbackRow(escalation_id=escalation, label=label, by="agent", at=now + timedelta(minutes=n)))
    return escalation


def test_labelled_alerts_latest_label_wins_and_the_raw_risk_comes_along(sqlite_store):
    first = _alert(sqlite_store, 1, 0.7, "useful")
    _alert(sqlite_store, 2, 0.9, "false_positive")
    _alert(sqlite_store, 3, 0.8, None)
    sqlite_store.transition(first, EscalationState.dismissed, "agent", T0 + timedelta(hours=1))
    alerts = sqlite_store.labelled_alerts(limit=10)
    assert alerts == [LabelledAlert(0.7, False), LabelledAlert(0.9, False)]
    assert sqlite_store.labelled_alerts(limit=1) == [LabelledAlert(0.7, False)]


def test_scoring_recalibrates_from_feedback_and_stores_the_raw_risk(sqlite_store, classifier):
    cfg = build_config(risk={"recalibrate_min_labels": 30})
    for i, alert in enumerate(overconfident(60)):
        _alert(sqlite_store, 100 + i, alert.raw_probability, "useful" if alert.useful else "false_positive")
    clock = ManualClock(T0 + timedelta(minutes=1))
    (threat,) = sqlite_store.ingest("x", BRAND, [build_mention("threat", LEGAL_THREAT)], None, own_accounts={},
                                    now=clock.now()).new_ids
    classify_pending(sqlite_store, classifier, clock, cfg.engagement)
    (assessment,) = [a for a in score_pending(sqlite_store, RiskScorer(), cfg, clock) if a.mention_id == threat]
    raw = RiskScorer().assess(_features(sqlite_store, threat, clock), cfg.thresholds.severity_for).probability
    assert assessment.raw_probability == pytest.approx(raw)
    assert assessment.probability < raw
    assert assessment.severity == cfg.thresholds.severity_for(assessment.probability)
    with sqlite_store.session() as s:
        stored = s.scalars(select(RiskRow.probability).where(RiskRow.mention_id == threat)).all()
    assert stored == [pytest.approx(raw)]


def _features(store, mention_id, clock):
    from monitor.models import RiskFeatures

    (mention,) = store.mentions([mention_id])
    return RiskFeatures(mention, store.classification(mention_id), store.snapshots(mention_id), 1, None, clock.now())


def test_status_and_digest_show_the_precision(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")
    url = f"sqlite:///{tmp_path / 'fb.db'}"
    store = Store.open(url)
    try:
        for i, label in enumerate(["useful", "useful", "false_positive", "useful"]):
            _alert(store, i, 0.8, label, now=T0 - timedelta(days=7))
    finally:
        store.close()
    config = tmp_path / "cfg.yaml"
    config.write_text(json.dumps(config_dict(storage={"url": url})), encoding="utf-8")
    runner = CliRunner()
    status = runner.invoke(app, ["status", "--config", str(config)])
    assert status.exit_code == 0, status.output
    assert "alert precision: 0.75 on the last 4 labelled alerts" in status.stdout
    digest = runner.invoke(app, ["digest", "--week", "2026-W47", "--json", "--config", str(config)])
    assert digest.exit_code == 0, digest.output
    data = json.loads(digest.stdout)
    assert (data["alert_precision"], data["labelled_alerts"]) == (0.75, 4)


# --- velocity against the brand's usual --------------------------------------------------------

def _viral_features(brand_velocity):
    from monitor.models import Author, Classification, Metrics, RiskFeatures, Snapshot, StoredMention

    mention = StoredMention(1, "x", "1", BRAND, Author("a1", "angry", 300), "Acme, my internet is down again",
                            T0, "en", None, None, None, False)
    classification = Classification(1, "lexicon", "1", "en", "negative",
                                    {"negative": 0.9, "neutral": 0.05, "positive": 0.05}, 0.8)
    snapshots = tuple(Snapshot(T0 + timedelta(minutes=m), Metrics(reposts=n)) for m, n in ((5, 40), (15, 120)))
    return RiskFeatures(mention, classification, snapshots, 0, None, T0 + timedelta(minutes=15), brand_velocity)


def test_a_post_spreading_far_faster_than_the_brands_usual_scores_higher_and_says_so():
    scorer = RiskScorer()
    quiet_brand = scorer.assess(_viral_features(2.0), lambda p: None)
    busy_brand = scorer.assess(_viral_features(2000.0), lambda p: None)
    unknown = scorer.assess(_viral_features(None), lambda p: None)
    assert quiet_brand.probability > unknown.probability >= busy_brand.probability
    assert "120 reposts in 15 min (240× usual), forecast" in quiet_brand.reason_line
    assert "usual" not in busy_brand.reason_line and "usual" not in unknown.reason_line


def test_brand_velocity_is_the_mean_share_rate_of_its_recent_posts(sqlite_store):
    from monitor.models import Metrics, MetricsUpdate
    from monitor.pipeline.score import brand_velocity

    now = T0 + timedelta(hours=2)
    assert brand_velocity(sqlite_store, BRAND, now) is None
    sqlite_store.ingest("x", BRAND, [build_mention("a", at=T0), build_mention("b", at=T0),
                                     build_mention("old", at=T0 - timedelta(days=2),
                                                   metrics=Metrics(reposts=9999))],
                        None, own_accounts={}, now=T0 + timedelta(minutes=1))
    sqlite_store.add_snapshots([MetricsUpdate("x", "a", T0 + timedelta(hours=1), Metrics(reposts=30, quotes=10))])
    # a: 40 shares in its first hour; b: none yet; the post of two days ago is not "usual" any more.
    assert brand_velocity(sqlite_store, BRAND, now) == pytest.approx(20.0)


def test_a_trigger_is_quoted_capped_among_the_reasons():
    from classifiers.risk import MAX_QUOTE_CHARS, RiskScorer
    from monitor.models import Author, Classification, RiskFeatures, StoredMention, TriggerMatch

    word = "journalist" + "s" * 300  # a wildcard term matches a word as long as the post
    mention = StoredMention(1, "x", "1", BRAND, Author("a1", "angry", 300_000, True), word, T0, "en", None, None,
                            None, False)
    trigger = TriggerMatch("press", "journalist*", 0, len(word), word)
    classification = Classification(1, "lexicon", "1", "en", "negative",
                                    {"negative": 0.9, "neutral": 0.05, "positive": 0.05}, 0.8, (trigger,))
    reasons = RiskScorer().assess(RiskFeatures(mention, classification, (), 0, None, T0), lambda p: None).reasons
    (threat,) = [r for r in reasons if "threat" in r]
    assert threat.endswith('…"') and len(threat) < MAX_QUOTE_CHARS + 20
    assert any("followers" in r for r in reasons)
