"""`eval storms`: replays a scenario through collection, classification and storm tracking in
virtual time and scores the storms found against the posts labelled `storm`.

Only the stages a storm depends on run: risk scoring and alerting do not change when a storm
opens, and leaving them out keeps a two-day replay to minutes.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from classifiers.post import PostClassifier
from monitor.clock import ManualClock
from monitor.collectors.replay import ReplayCollector
from monitor.config import Config, bundled_config_dir
from monitor.pipeline.classify import classify_pending
from monitor.pipeline.collect import collect_and_store
from monitor.pipeline.storms import StormTracker
from monitor.scenario import Scenario
from monitor.store.repository import Store

NTH_POST = 10
TAIL = timedelta(minutes=30)  # run past the last post so a late storm can still open


@dataclass(frozen=True, slots=True)
class StormOutcome:
    name: str
    detected: bool
    delay_first_s: float | None  # detection time minus the storm's first post; None when missed
    delay_10th_s: float | None  # minus its 10th post (negative: found before it); None when missed or shorter


@dataclass(frozen=True, slots=True)
class StormEvalReport:
    storms: tuple[StormOutcome, ...]
    false_storms: int
    days: float

    def as_dict(self) -> dict:
        return {
            "storms": [{"name": s.name, "detected": s.detected, "delay_first_s": s.delay_first_s,
                        "delay_10th_s": s.delay_10th_s} for s in self.storms],
            "false_storms": self.false_storms,
            "false_storms_per_day": round(self.false_storms / self.days, 3) if self.days else None,
            "days": round(self.days, 3),
        }


def evaluate_storms(config: Config, scenario: Scenario) -> StormEvalReport:
    labels = {(p.source, p.id): p.storm for p in scenario.posts}
    brand = config.brands[0]
    step = timedelta(seconds=config.sources.replay.interval_seconds)
    # Per detected storm: when each label (None: unlabelled) first had a post in it, and its final make-up.
    first_at: dict[int, dict[str | None, datetime]] = {}
    make_up: dict[int, Counter] = {}
    with tempfile.TemporaryDirectory(prefix="escalation-monitor-eval-") as tmp:
        store = Store.open(f"sqlite:///{Path(tmp) / 'eval.db'}")
        try:
            clock = ManualClock(scenario.start - timedelta(seconds=30))
            collector = ReplayCollector(scenario, brand.name, clock, batch_size=config.sources.replay.batch_size)
            classifier = PostClassifier(bundled_config_dir(), config.classifiers.languages,
                                        config.classifiers.sentiment_model, config.classifiers.sentiment_labels)
            tracker = StormTracker(config.storms, config.timezone)
            while clock.now() < scenario.end + TAIL:
                clock.advance(seconds=step.total_seconds())
                while collect_and_store(collector, store, clock, {}).more:
                    pass
                classify_pending(store, classifier, clock, config.engagement)
                for change in tracker.update(store, brand, clock):
                    members = [labels.get((m.source, m.external_id))
                               for m in store.mentions(store.storm_member_ids_of(change.storm_id))]
                    make_up[change.storm_id] = Counter(members)
                    for label in members:
                        first_at.setdefault(change.storm_id, {}).setdefault(label, clock.now())
        finally:
            store.close()
    return score_storms(scenario, first_at, make_up)


def score_storms(scenario: Scenario, first_at: dict[int, dict[str | None, datetime]],
                 make_up: dict[int, Counter]) -> StormEvalReport:
    """A detected storm counts for the true storm most of its posts belong to; one made mostly of
    unlabelled posts is a false storm. A true storm is detected when one of its storms holds one of
    its posts; the earliest such moment is its detection time."""
    detected_at: dict[str, datetime] = {}
    false_storms = 0
    for storm_id, counts in make_up.items():
        labelled = {label: n for label, n in counts.items() if label is not None}
        if counts[None] > sum(labelled.values()):
            false_storms += 1
            continue
        name = max(labelled, key=labelled.__getitem__)
        at = first_at[storm_id][name]
        detected_at[name] = min(at, detected_at.get(name, at))
    posts: dict[str, list[datetime]] = {}
    for p in scenario.posts:
        if p.storm is not None:
            posts.setdefault(p.storm, []).append(p.at)
    outcomes = []
    for name, times in posts.items():
        times.sort()
        at = detected_at.get(name)
        outcomes.append(StormOutcome(
            name=name, detected=at is not None,
            delay_first_s=(at - times[0]).total_seconds() if at else None,
            delay_10th_s=(at - times[NTH_POST - 1]).total_seconds() if at and len(times) >= NTH_POST else None,
        ))
    days = (scenario.end - scenario.start).total_seconds() / 86400
    return StormEvalReport(tuple(outcomes), false_storms, days)
