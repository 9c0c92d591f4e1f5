"""Stage 3: classify stored mentions and put the ones worth watching on the engagement watchlist."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from classifiers.post import PostClassifier
from monitor.clock import Clock
from monitor.config import EngagementConfig
from monitor.models import Classification, StoredMention
from monitor.store.repository import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClassifyReport:
    classified: int
    watched: int


def worth_watching(mention: StoredMention, c: Classification, cfg: EngagementConfig) -> bool:
    return (c.negative >= 0.5 or c.complaint >= 0.5 or bool(c.triggers)
            or mention.author.followers >= cfg.min_followers_to_watch)


def classify_pending(store: Store, classifier: PostClassifier, clock: Clock, engagement: EngagementConfig,
                     batch_size: int = 256) -> ClassifyReport:
    classified = watched = 0
    while True:
        mentions = store.unclassified(classifier.model_name, classifier.model_version, limit=batch_size)
        if not mentions:
            break
        results = classifier.classify_mentions(mentions)
        # A new model classifies every stored mention again; only new mentions start a watch (one
        # whose watch ended long ago would be polled again, at the cost of the source's read budget).
        seen = store.ever_classified([m.id for m in mentions])
        store.save_classifications(results, clock.now())
        first_poll = timedelta(minutes=engagement.repoll_minutes[0]) if engagement.repoll_minutes else None
        schedule = {m.id: m.created_at + first_poll for m, c in zip(mentions, results)
                    if first_poll is not None and m.id not in seen and worth_watching(m, c, engagement)}
        store.set_watch(schedule)
        classified += len(results)
        watched += len(schedule)
    if classified:
        log.info("classified mentions=%d watched=%d", classified, watched)
    return ClassifyReport(classified, watched)
