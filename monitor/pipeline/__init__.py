"""The pipeline: collect → store → classify → score → decide → route → enqueue → deliver.

Each stage is a module with one function over typed records; `Pipeline` wires them to one
store, clock, classifier and notifier, and is what the scheduler's jobs call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from classifiers.post import PostClassifier
from classifiers.risk import RiskScorer
from monitor.clock import Clock
from monitor.collectors.base import Collector
from monitor.config import Config, bundled_config_dir
from monitor.notifiers.base import Notifier
from monitor.pipeline.classify import classify_pending
from monitor.pipeline.collect import CollectReport, collect_and_store
from monitor.pipeline.decide import decide_mentions, decide_storms
from monitor.pipeline.deliver import DeliveryReport, deliver_pending
from monitor.pipeline.engagement import repoll_due
from monitor.pipeline.enqueue import enqueue
from monitor.pipeline.score import score_pending
from monitor.pipeline.storms import StormTracker
from monitor.routing import Router
from monitor.sla import follow_up
from monitor.store.repository import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessReport:
    classified: int
    scored: int
    queued: int


class Pipeline:
    def __init__(self, config: Config, store: Store, clock: Clock, notifier: Notifier,
                 collectors: Mapping[str, Collector], classifier: PostClassifier | None = None):
        self.config = config
        self.store = store
        self.clock = clock
        self.notifier = notifier
        self.collectors = dict(collectors)
        self.classifier = classifier or PostClassifier(bundled_config_dir(), config.classifiers.languages,
                                                       config.classifiers.sentiment_model,
                                                       config.classifiers.sentiment_labels)
        self.scorer = RiskScorer(repeat_contact_min_posts=config.risk.repeat_contact_min_posts)
        self.storms = StormTracker(config.storms, config.timezone)
        self.router = Router(config.team, config.timezone)
        self._own_accounts = {source: config.own_accounts(source)
                              for c in self.collectors.values() for source in c.sources}
        self._by_source = {source: c for c in self.collectors.values() for source in c.sources}
        # Jobs run on a thread pool; the decision stages must not interleave.
        self._process_lock = threading.Lock()
        self._deliver_lock = threading.Lock()

    def collect(self, name: str) -> CollectReport:
        return collect_and_store(self.collectors[name], self.store, self.clock, self._own_accounts)

    def repoll(self) -> int:
        return repoll_due(self.store, self._by_source, self.clock, self.config.engagement)

    def process(self) -> ProcessReport:
        """Everything between storing a mention and queueing its alert."""
        with self._process_lock:
            classified = classify_pending(self.store, self.classifier, self.clock, self.config.engagement)
            storm_changes = [c for brand in self.config.brands
                             for c in self.storms.update(self.store, brand, self.clock)]
            queued = enqueue(decide_storms(self.store, storm_changes), self.store, self.router, self.config,
                             self.clock)
            scored = 0
            while True:
                batch = self.store.mentions_to_score()
                if not batch:
                    break
                assessments = score_pending(self.store, self.scorer, self.config, self.clock)
                mentions = {m.id: m for m, _ in batch}
                pairs = [(mentions[a.mention_id], a) for a in assessments]
                decisions = decide_mentions(self.store, self.config, pairs, self._shares)
                queued += enqueue(decisions, self.store, self.router, self.config, self.clock)
                self.store.mark_scored(mentions)
                scored += len(assessments)
            return ProcessReport(classified.classified, scored, queued)

    def deliver(self) -> DeliveryReport:
        with self._deliver_lock:
            return deliver_pending(self.store, self.notifier, self.clock, self.config.delivery.max_attempts)

    def sla(self) -> int:
        """Thread replies for escalations past their time to claim or to first reply."""
        with self._process_lock:
            return follow_up(self.store, self.config, self.clock.now())

    def retention(self) -> int:
        removed = self.store.purge_older_than(self.clock.now() - timedelta(days=self.config.retention.keep_days))
        log.info("retention removed_mentions=%d", removed)
        return removed

    def _shares(self, mention_id: int) -> float:
        metrics = self.store.latest_metrics(mention_id)
        return float(metrics.shares) if metrics else 0.0
