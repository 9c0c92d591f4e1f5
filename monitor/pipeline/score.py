"""Stage 4: the escalation risk of each mention whose inputs changed, recalibrated from feedback."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from classifiers.calibration import FeedbackSummary, Recalibrator, summarize
from classifiers.risk import RiskScorer, velocity
from monitor.clock import Clock
from monitor.config import Config, RiskConfig
from monitor.models import RiskAssessment, RiskFeatures
from monitor.store.repository import Store

USUAL_WINDOW = timedelta(days=1)


def feedback(store: Store, cfg: RiskConfig) -> tuple[Recalibrator, FeedbackSummary]:
    """The recalibration and precision from the last `feedback_window` labelled alerts."""
    return summarize(store.labelled_alerts(cfg.feedback_window), cfg.recalibrate_min_labels)


def brand_velocity(store: Store, brand: str, now: datetime) -> float | None:
    """This brand's usual share velocity: the mean over its posts of the last day (None: no posts)."""
    posts = store.latest_snapshots(brand, now - USUAL_WINDOW, now)
    if not posts:
        return None
    return sum(velocity(snapshot, created_at) for created_at, snapshot in posts) / len(posts)


def score_pending(store: Store, scorer: RiskScorer, config: Config, clock: Clock,
                  limit: int = 500) -> list[RiskAssessment]:
    now = clock.now()
    window = timedelta(hours=config.risk.repeat_contact_window_hours)
    recalibrate, _ = feedback(store, config.risk)
    usual: dict[str, float | None] = {}
    assessments = []
    for mention, classification in store.mentions_to_score(limit):
        if mention.brand not in usual:
            usual[mention.brand] = brand_velocity(store, mention.brand, now)
        storm = store.storm_of(mention.id)
        features = RiskFeatures(
            mention=mention,
            classification=classification,
            snapshots=store.snapshots(mention.id),
            unanswered_contacts=store.unanswered_contacts(mention, mention.created_at - window),
            storm_name=storm.name if storm else None,
            now=now,
            brand_velocity=usual[mention.brand],
        )
        severity_for = config.thresholds_for(mention.brand).severity_for
        a = scorer.assess(features, severity_for)
        if recalibrate.fitted:
            p = recalibrate(a.probability)
            a = dataclasses.replace(a, probability=p, severity=severity_for(p), raw_probability=a.probability)
        assessments.append(a)
    store.save_assessments(assessments)
    return assessments
