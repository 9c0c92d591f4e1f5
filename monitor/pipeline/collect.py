"""Stage 1-2: collect from a source and store the batch with its cursor; back off from a failing source."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.clock import Clock
from monitor.collectors.base import Collector, SourceFault
from monitor.store.repository import Store

log = logging.getLogger(__name__)

# A failing source is retried after 30 s, then 1, 2, 4 … minutes, at most every 30 minutes.
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class CollectReport:
    new_ids: tuple[int, ...]
    seen_again: int
    more: bool  # the source has more waiting: run again without waiting for the interval


def backoff(failures: int) -> timedelta:
    return min(BACKOFF_FIRST * 2 ** max(0, failures - 1), BACKOFF_MAX)


def collect_and_store(collector: Collector, store: Store, clock: Clock,
                      own_accounts: dict[str, set[str]]) -> CollectReport:
    """One collector run. The cursor moves only together with the committed batch."""
    now = clock.now()
    health = store.source_health(collector.source, collector.brand)
    if health is not None and health.paused_until is not None and now < health.paused_until:
        log.debug("collect skipped source=%s brand=%s reason=%s until=%s", collector.source, collector.brand,
                  health.pause_reason, _iso(health.paused_until))
        return CollectReport((), 0, False)
    cursor = store.cursor(collector.source, collector.brand)
    try:
        result = collector.collect(cursor)
    except SourceFault as fault:
        _record_fault(collector, store, now, fault, health.failures if health else 0)
        return CollectReport((), 0, False)
    stored = store.ingest(collector.source, collector.brand, result.mentions, result.cursor,
                          own_accounts=own_accounts, now=now)
    pause = result.pause
    store.record_source_success(collector.source, collector.brand, now, pause.until if pause else None,
                                pause.reason if pause else None)
    if result.mentions:
        log.info("collected source=%s brand=%s new=%d seen_again=%d", collector.source, collector.brand,
                 len(stored.new_ids), stored.seen_again)
    if pause is not None:
        log.warning("source paused source=%s brand=%s reason=%s until=%s", collector.source, collector.brand,
                    pause.reason, _iso(pause.until))
    return CollectReport(stored.new_ids, stored.seen_again, result.more and pause is None)


def _record_fault(collector: Collector, store: Store, now: datetime, fault: SourceFault, before: int) -> None:
    failures = before + 1
    if fault.retry_at is not None and fault.retry_at > now:
        until, reason = fault.retry_at, fault.kind.replace("_", " ")
    else:
        until, reason = now + backoff(failures), "back-off"
    store.record_source_failure(collector.source, collector.brand, now, str(fault), until, reason)
    log.warning("collect failed source=%s brand=%s kind=%s: %s; next try after %s (%s, failure %d in a row)",
                collector.source, collector.brand, fault.kind, fault, _iso(until), reason, failures)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")
