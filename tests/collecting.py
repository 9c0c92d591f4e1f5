"""Helpers for the collector tests: run a collector through the real collect stage, read back what was stored."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select

from monitor.clock import ManualClock
from monitor.collectors.base import Collector
from monitor.pipeline.collect import BACKOFF_FIRST, CollectReport, collect_and_store
from monitor.store.repository import Store
from monitor.store.schema import MentionRow
from tests.fakes.server import FakeApi


def run(collector: Collector, store: Store, clock: ManualClock, own: dict[str, set[str]]) -> CollectReport:
    return collect_and_store(collector, store, clock, own)


def drain(collector: Collector, store: Store, clock: ManualClock, own: dict[str, set[str]]) -> int:
    """Runs until the source has nothing more right now, as the daemon's collect cycle does; returns the runs."""
    runs = 1
    while run(collector, store, clock, own).more:
        runs += 1
    return runs


def stored(store: Store) -> dict[str, dict]:
    """external id -> the stored fields a collector fills in."""
    with store.session() as s:
        return {r.external_id: {"text": r.text, "handle": r.author_handle, "author_id": r.author_id,
                                "followers": r.author_followers, "verified": r.author_verified, "lang": r.lang,
                                "url": r.url, "conversation_id": r.conversation_id, "in_reply_to": r.in_reply_to,
                                "is_brand_reply": r.is_brand_reply, "created_at": r.created_at}
                for r in s.scalars(select(MentionRow))}


def check_fault_and_recovery(collector: Collector, store: Store, clock: ManualClock, own: dict[str, set[str]],
                             fake: FakeApi, caplog, inject: Callable[[], None], kind: str, says: str) -> None:
    """`inject()` adds a post and switches a fault on. The next run fails cleanly: one warning
    line, the cursor and the store as they were, a back-off during which nothing is asked. The
    run after the back-off stores the new post."""
    cursor = store.cursor(collector.source, collector.brand)
    before = store.count_mentions()
    inject()
    failed_at = clock.now()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        report = run(collector, store, clock, own)
    assert report.new_ids == ()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("monitor")]
    assert len(lines) == 1 and f"kind={kind}" in lines[0] and says in lines[0], lines
    health = store.source_health(collector.source, collector.brand)
    assert health.failures == 1 and says in health.last_error and health.pause_reason == "back-off"
    assert health.paused_until == failed_at + BACKOFF_FIRST
    assert store.cursor(collector.source, collector.brand) == cursor and store.count_mentions() == before

    calls = len(fake.requests)
    run(collector, store, clock, own)
    assert len(fake.requests) == calls  # backing off: the source is not asked

    clock.set(health.paused_until)
    run(collector, store, clock, own)
    assert store.count_mentions() == before + 1
    assert store.source_health(collector.source, collector.brand).failures == 0


def check_rate_limit_pause(collector: Collector, store: Store, clock: ManualClock, own: dict[str, set[str]],
                           fake: FakeApi, until: datetime) -> None:
    """With a 429 switched on and one post waiting, a run pauses the source until `until`: runs
    before then ask nothing, and the run at `until` collects the post."""
    before = store.count_mentions()
    run(collector, store, clock, own)
    health = store.source_health(collector.source, collector.brand)
    assert health.pause_reason == "rate limited" and health.paused_until == until
    assert store.count_mentions() == before

    calls = len(fake.requests)
    clock.set(until - timedelta(seconds=1))
    run(collector, store, clock, own)
    assert len(fake.requests) == calls

    clock.set(until)
    run(collector, store, clock, own)
    assert store.count_mentions() == before + 1
    assert store.source_health(collector.source, collector.brand).paused_until is None
