"""Replays a scenario through the real pipeline and outbox, in virtual time.

The clock is stepped one collection interval at a time and every job runs once per step, in
pipeline order, so a scenario gives the same alerts on every run and on any machine.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from monitor.clock import Clock, ManualClock
from monitor.collectors.replay import ReplayCollector
from monitor.config import Config
from monitor.daemon import Daemon
from monitor.notifiers.base import Notifier
from monitor.notifiers.console import ConsoleNotifier
from monitor.notifiers.interactivity import Listener
from monitor.pipeline import Pipeline
from monitor.scenario import Scenario
from monitor.store.repository import EscalationRecord, Store

log = logging.getLogger(__name__)

BUNDLED_SCENARIO = Path(__file__).resolve().parent / "scenario.jsonl"
TAIL = timedelta(minutes=10)  # keep the clock running past the last event for late re-polls


@dataclass
class DemoSummary:
    mentions: int
    alerts: int
    updates: int
    by_reason: dict[str, int]
    true_positives: int
    false_positives: int
    missed: int
    unlabelled_alerted: int
    storms: list[str]
    missed_posts: list[str] = field(default_factory=list)
    false_positive_posts: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    speed: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def primary_reason(escalation: EscalationRecord) -> str:
    """One word for what made the alert, for the summary's `by_reason`."""
    if escalation.kind in ("storm", "repeat_contact"):
        return escalation.kind
    if any(" threat: " in r for r in escalation.reasons):
        return "threat"
    text = " ".join(escalation.reasons)
    if "forecast" in text:
        return "viral"
    if "followers" in text:
        return "reach"
    return "negative"


class DemoStoreError(Exception):
    """The database given to keep the replay in cannot take it."""


def run_demo(config: Config, scenario_path: Path | None = None, speed: float | None = None,
             out: TextIO | None = None, notifier: Notifier | None = None,
             on_step: Callable[[datetime], None] | None = None, storage_url: str | None = None,
             interactivity: Callable[[Store, Clock], Listener | None] | None = None) -> DemoSummary:
    """`speed`: at most this many scenario seconds per wall-clock second (None: as fast as it goes).
    `notifier`: where alerts go (default: printed); `on_step` sees the clock after each step.
    `storage_url`: an empty database to keep the replay's history in, for `digest --week`
    afterwards (default: a temporary one). `interactivity` starts a listener for button clicks
    on the replay's store and clock; it is stopped when the replay ends."""
    scenario = Scenario.load(scenario_path or BUNDLED_SCENARIO)
    step = timedelta(seconds=config.sources.replay.interval_seconds)
    with tempfile.TemporaryDirectory(prefix="escalation-monitor-demo-") as tmp:
        config = config.model_copy(deep=True)
        config.storage.url = storage_url or f"sqlite:///{Path(tmp) / 'demo.db'}"
        store = Store.open(config.storage.url)
        listener = None
        try:
            if store.count_mentions():
                # A second replay into the same history would find its posts stored and alert on none.
                raise DemoStoreError(f"{storage_url} already holds mentions; the demo needs an empty database")
            start = scenario.start - timedelta(seconds=30)
            clock = ManualClock(start)
            collector = ReplayCollector(scenario, config.brands[0].name, clock,
                                        batch_size=config.sources.replay.batch_size)
            pipeline = Pipeline(config, store, clock, notifier or ConsoleNotifier(out), {"replay": collector})
            daemon = Daemon(pipeline, with_cron_jobs=False)
            listener = interactivity(store, clock) if interactivity is not None else None
            started = time.monotonic()
            while clock.now() < scenario.end + TAIL:
                clock.advance(seconds=step.total_seconds())
                if on_step is not None:
                    on_step(clock.now())
                daemon.run_once()
                if speed:
                    ahead = (clock.now() - start).total_seconds() / speed - (time.monotonic() - started)
                    time.sleep(max(0.0, ahead))
            summary = summarize(store, scenario)
            summary.wall_seconds = round(time.monotonic() - started, 1)
            summary.speed = round((clock.now() - start).total_seconds() / max(summary.wall_seconds, 0.1), 1)
            return summary
        finally:
            if listener is not None:
                listener.stop()
            store.close()


def summarize(store: Store, scenario: Scenario) -> DemoSummary:
    from sqlalchemy import select

    from monitor.store.schema import EscalationMentionRow, MentionRow, OutboxRow

    escalations = store.escalations_between(scenario.start - timedelta(days=1), scenario.end + timedelta(days=1))
    with store.session() as s:
        alerted = set(s.execute(
            select(MentionRow.source, MentionRow.external_id)
            .join(EscalationMentionRow, EscalationMentionRow.mention_id == MentionRow.id)
        ).all())
        updates = s.query(OutboxRow).filter(OutboxRow.kind == "update", OutboxRow.state == "sent").count()
    tp = fp = missed = unlabelled = 0
    missed_posts, fp_posts = [], []
    for post in scenario.posts:
        hit = (post.source, post.id) in alerted
        if post.expect == "alert":
            tp += hit
            if not hit:
                missed += 1
                missed_posts.append(f"{post.source}:{post.id} @{post.author.handle}: {post.text[:80]}")
        elif post.expect == "no_alert":
            if hit:
                fp += 1
                fp_posts.append(f"{post.source}:{post.id} @{post.author.handle}: {post.text[:80]}")
        elif hit:
            unlabelled += 1
    return DemoSummary(
        mentions=store.count_mentions(),
        alerts=len(escalations),
        updates=updates,
        by_reason=dict(Counter(primary_reason(e) for e in escalations)),
        true_positives=tp,
        false_positives=fp,
        missed=missed,
        unlabelled_alerted=unlabelled,
        storms=[e.reasons[-1].removeprefix("top terms: ") for e in escalations if e.kind == "storm"],
        missed_posts=missed_posts,
        false_positive_posts=fp_posts,
    )
