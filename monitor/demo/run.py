"""Replays a scenario on a compressed clock through the real pipeline, scheduler and outbox."""

from __future__ import annotations

import logging
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from monitor.clock import CompressedClock
from monitor.collectors.replay import ReplayCollector
from monitor.config import Config
from monitor.daemon import Daemon
from monitor.notifiers.console import ConsoleNotifier
from monitor.pipeline import Pipeline
from monitor.scenario import Scenario
from monitor.store.repository import EscalationRecord, Store

log = logging.getLogger(__name__)

BUNDLED_SCENARIO = Path(__file__).resolve().parent / "scenario.jsonl"
TARGET_WALL_SECONDS = 20.0
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


def run_demo(config: Config, scenario_path: Path | None = None, speed: float | None = None,
             out: TextIO | None = None) -> DemoSummary:
    scenario = Scenario.load(scenario_path or BUNDLED_SCENARIO)
    duration = (scenario.end - scenario.start + TAIL).total_seconds()
    speed = speed or max(1.0, duration / TARGET_WALL_SECONDS)
    with tempfile.TemporaryDirectory(prefix="escalation-monitor-demo-") as tmp:
        config = config.model_copy(deep=True)
        config.storage.url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        store = Store.open(config.storage.url)
        try:
            clock = CompressedClock(scenario.start - timedelta(seconds=30), speed)
            collector = ReplayCollector(scenario, config.brands[0].name, clock,
                                        batch_size=config.sources.replay.batch_size)
            pipeline = Pipeline(config, store, clock, ConsoleNotifier(out), {"replay": collector})
            daemon = Daemon(pipeline, speed=speed, with_cron_jobs=False)
            started = time.monotonic()
            daemon.start()
            try:
                while clock.now() < scenario.end + TAIL:
                    time.sleep(0.1)
            finally:
                daemon.stop()
            # Drain: whatever the last ticks left half-way goes through now.
            daemon.run_once()
            summary = summarize(store, scenario)
            summary.wall_seconds = round(time.monotonic() - started, 1)
            summary.speed = round(speed, 1)
            return summary
        finally:
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
