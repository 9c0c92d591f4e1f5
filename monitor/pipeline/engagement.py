"""Engagement re-polling: fresh counts for watched mentions, less often as they age."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from monitor.clock import Clock
from monitor.collectors.base import Collector, SourceFault
from monitor.config import EngagementConfig
from monitor.models import Snapshot, StoredMention
from monitor.store.repository import Store

log = logging.getLogger(__name__)


def next_poll(created_at: datetime, now: datetime, snapshots: Sequence[Snapshot],
              cfg: EngagementConfig) -> datetime | None:
    """When to look again: the next step of the schedule after `now`, then hourly; None ends the watch."""
    age = now - created_at
    if age >= timedelta(hours=cfg.max_age_hours):
        return None
    recent = [s.metrics.shares for s in snapshots[-cfg.dead_after_polls:]]
    if (age >= timedelta(minutes=cfg.dead_min_age_minutes) and len(recent) == cfg.dead_after_polls
            and recent[0] == recent[-1]):
        return None
    for minutes in cfg.repoll_minutes:
        due = created_at + timedelta(minutes=minutes)
        if due > now:
            return due
    return now + timedelta(hours=1)


def repoll_due(store: Store, collectors: Mapping[str, Collector], clock: Clock, cfg: EngagementConfig) -> int:
    """Re-poll every watched mention that is due; returns the number of snapshots stored."""
    now = clock.now()
    due = store.due_for_repoll(now)
    if not due:
        return 0
    # The team closed it: nothing left to learn from its engagement, and reads cost budget.
    closed = store.mentions_with_closed_escalation([m.id for m in due])
    schedule: dict[int, datetime | None] = {m.id: None for m in due if m.id in closed}
    by_source: dict[str, list[StoredMention]] = defaultdict(list)
    for mention in due:
        if mention.id not in closed:
            by_source[mention.source].append(mention)
    stored = 0
    for source, mentions in by_source.items():
        collector = collectors.get(source)
        if collector is None:
            schedule.update({m.id: None for m in mentions})  # source no longer configured
            continue
        paused_until = _paused_until(store, collector, now)
        if paused_until is not None:
            # Rate limited or out of read budget: ask again when the source allows it, not every run.
            schedule.update({m.id: paused_until for m in mentions})
            continue
        try:
            updates = collector.refresh_metrics([m.external_id for m in mentions])
        except SourceFault as fault:
            # Keep watching; a source that says when to come back is asked then, others at the next run.
            log.warning("re-poll failed source=%s kind=%s: %s", source, fault.kind, fault)
            if fault.retry_at is not None and fault.retry_at > now:
                schedule.update({m.id: fault.retry_at for m in mentions})
            continue
        stored += store.add_snapshots(updates)
        returned = {u.external_id for u in updates}
        for m in mentions:
            # A post the source no longer returns was deleted or hidden: stop watching it.
            schedule[m.id] = next_poll(m.created_at, now, store.snapshots(m.id), cfg) if m.external_id in returned else None
    store.set_watch(schedule)
    log.info("repolled mentions=%d snapshots=%d", len(due), stored)
    return stored


def _paused_until(store: Store, collector: Collector, now: datetime) -> datetime | None:
    health = store.source_health(collector.source, collector.brand)
    if health is not None and health.paused_until is not None and health.paused_until > now:
        return health.paused_until
    return None
