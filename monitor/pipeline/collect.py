"""Stage 1-2: collect from a source and store the batch with its cursor."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from monitor.clock import Clock
from monitor.collectors.base import Collector
from monitor.store.repository import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CollectReport:
    new_ids: tuple[int, ...]
    seen_again: int
    more: bool  # the source has more waiting: run again without waiting for the interval


def collect_and_store(collector: Collector, store: Store, clock: Clock,
                      own_accounts: dict[str, set[str]]) -> CollectReport:
    """One collector run. The cursor moves only together with the committed batch."""
    cursor = store.cursor(collector.source, collector.brand)
    result = collector.collect(cursor)
    stored = store.ingest(collector.source, collector.brand, result.mentions, result.cursor,
                          own_accounts=own_accounts, now=clock.now())
    if result.mentions:
        log.info("collected source=%s brand=%s new=%d seen_again=%d", collector.source, collector.brand,
                 len(stored.new_ids), stored.seen_again)
    return CollectReport(stored.new_ids, stored.seen_again, result.more)
