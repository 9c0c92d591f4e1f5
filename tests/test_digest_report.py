"""The weekly digest's chart, HTML report and Slack post, from a known history."""

from __future__ import annotations

from datetime import timedelta

import yaml
from typer.testing import CliRunner

from monitor.cli import app
from monitor.digest import StormOfWeek, build_digest
from monitor.digest_report import render_html, summary_text
from monitor.models import Classification, EscalationState, Severity, TriggerMatch
from monitor.store.repository import Store
from tests.fakes.slack import TOKEN
from tests.slacking import fake_slack  # noqa: F401 - fixture
from tests.support import BRAND, T0, build_config, build_mention, config_dict
from tests.test_slack import alert_payload, open_escalation

# T0 is Monday 2026-11-23 10:00 UTC, in ISO week 2026-W48.


def known_history(store: Store) -> None:
    """Three high escalations: claimed after 10 and 20 minutes (one resolved: useful), and one dismissed unclaimed."""
    a, b, c = (open_escalation(store, alert_payload(), n) for n in range(3))
    store.transition(a, EscalationState.claimed, "Sanne", T0 + timedelta(minutes=10))
    store.transition(a, EscalationState.resolved, "Sanne", T0 + timedelta(hours=1))
    store.transition(b, EscalationState.claimed, "Daan", T0 + timedelta(minutes=20))
    store.transition(c, EscalationState.dismissed, "Sanne", T0 + timedelta(minutes=5))


def test_digest_week_writes_the_html_report_and_sends_the_chart(fake_slack, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    db = f"sqlite:///{tmp_path / 'digest.db'}"
    store = Store.open(db)
    try:
        known_history(store)
    finally:
        store.close()
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config_dict(
        storage={"url": db}, digest={"output_dir": "out"},
        slack={"enabled": True, "base_url": fake_slack.api_url, "channel": "#webcare"})), encoding="utf-8")

    result = CliRunner().invoke(app, ["digest", "--week", "2026-W48", "--send", "-c", str(path)])
    assert result.exit_code == 0, result.output
    report = tmp_path / "out" / "digest-2026-W48.html"
    html = report.read_text(encoding="utf-8")
    assert "3 escalations · claim median 15 min (p90 20 min)" in html
    assert "SLA breaches: 1 claim" in html  # the 20-minute claim missed the 15-minute promise
    assert "false positives 50%" in html and 'src="data:image/png;base64,iVBOR' in html
    (upload,) = fake_slack.uploads.values()
    assert upload["content"].startswith(b"\x89PNG") and upload["channel"] == "C0WEB"
    assert upload["filename"] == "digest-2026-W48.png"
    assert upload["comment"].startswith("*Escalation digest 2026-W48*\n3 escalations")


def test_digest_send_without_slack_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config_dict(storage={"url": f"sqlite:///{tmp_path / 'd.db'}"})), encoding="utf-8")
    result = CliRunner().invoke(app, ["digest", "--send", "-c", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == "--send: slack.enabled is false in the configuration"


def at(minutes: int):
    return T0 + timedelta(minutes=minutes)


def test_digest_numbers_on_a_known_history(store):
    """Topics, storms, SLA breaches and follow-ups from the stored events, and the bottleneck."""
    a, b, c = (open_escalation(store, alert_payload(), n) for n in range(3))
    triggers = {a: ("legal", "press"), b: ("churn",), c: ()}
    store.save_classifications([
        Classification(store.escalation(e).subject_mention_id, "lexicon", "1", "en", "negative", {"negative": 0.9},
                       0.8, tuple(TriggerMatch(t, t, 0, 1, t) for t in found)) for e, found in triggers.items()], T0)
    storm_posts = store.ingest("x", BRAND, [build_mention(f"storm{n}", at=at(-10 + 5 * n)) for n in range(3)], "c",
                               own_accounts={}, now=T0).new_ids
    storm = store.open_storm(BRAND, "storing · internet", ["storing"], T0, 1.0, store.mentions(storm_posts))
    d = store.create_escalation(
        brand=BRAND, group_key=f"storm:{storm}", kind="storm", subject_mention_id=None, storm_id=storm,
        source="mixed", lang=None, severity=Severity.high, probability=1.0, reasons=["storm"],
        suggested_owner="Daan", owner_reason="skill: storm", member_ids=storm_posts, alert_payload=alert_payload(),
        channel="#webcare-acme", last_alert={}, now=T0)

    store.transition(a, EscalationState.claimed, "Sanne", at(10))
    store.record_sla_breach(a, "reply", "owner", at(30), "Not answered in public within 30 min", at(30))
    store.transition(a, EscalationState.resolved, "Sanne", at(70))
    store.transition(b, EscalationState.claimed, "Daan", at(20))
    store.record_sla_breach(b, "claim", "owner", at(15), "Not claimed within 15 min", at(15))
    store.transition(b, EscalationState.waiting, "Daan", at(30))
    store.transition(b, EscalationState.claimed, "Daan", at(150))
    store.transition(b, EscalationState.resolved, "Daan", at(160))
    store.transition(c, EscalationState.dismissed, "Sanne", at(5))
    store.transition(d, EscalationState.claimed, "Daan", at(25))
    store.transition(d, EscalationState.resolved, "Daan", at(30))

    digest = build_digest(store, build_config(), "2026-W48", T0 + timedelta(days=7))
    assert digest.total == 4
    assert digest.by_topic == {"legal": 1, "press": 1, "churn": 1, "no trigger": 1, "storm": 1}
    assert digest.storms == [StormOfWeek("storing · internet", 3, 10)]
    assert digest.claim_minutes == (20, 25)
    assert digest.claim_breaches == 2  # b (20 min) and the storm (25 min): 15 min promised
    # a was never answered in public but resolved: only its recorded reminder counts it.
    assert digest.reply_breaches == 1
    assert digest.sla_follow_ups == {"claim → owner": 1, "reply → owner": 1}
    # unclaimed 10 + 20 + 5 + 25 min; unanswered 60 (a) + 20 (b, less its 120-minute wait) + 5 (d).
    assert digest.stage_hours == {"unclaimed": 1.0, "claimed but unanswered": 1.4,
                                  "waiting on another department": 2.0}
    assert digest.bottleneck == "waiting on another department"
    assert "waited longest: waiting on another department (2.0 h)" in summary_text(digest)
    assert "storing · internet (3 posts over 10 min)" in render_html(digest, b"")
