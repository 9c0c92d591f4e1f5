"""Stage 4: the escalation risk of each mention whose inputs changed."""

from __future__ import annotations

from datetime import timedelta

from classifiers.risk import RiskScorer
from monitor.clock import Clock
from monitor.config import Config
from monitor.models import RiskAssessment, RiskFeatures
from monitor.store.repository import Store


def score_pending(store: Store, scorer: RiskScorer, config: Config, clock: Clock,
                  limit: int = 500) -> list[RiskAssessment]:
    now = clock.now()
    window = timedelta(hours=config.risk.repeat_contact_window_hours)
    assessments = []
    for mention, classification in store.mentions_to_score(limit):
        storm = store.storm_of(mention.id)
        features = RiskFeatures(
            mention=mention,
            classification=classification,
            snapshots=store.snapshots(mention.id),
            unanswered_contacts=store.unanswered_contacts(mention, mention.created_at - window),
            storm_name=storm.name if storm else None,
            now=now,
        )
        assessments.append(scorer.assess(features, config.thresholds_for(mention.brand).severity_for))
    store.save_assessments(assessments)
    return assessments
