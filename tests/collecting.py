"""Helpers for the collector tests: run a collector through the real collect stage, read back what was stored."""

from __future__ import annotations

from sqlalchemy import select

from monitor.clock import ManualClock
from monitor.collectors.base import Collector
from monitor.pipeline.collect import CollectReport, collect_and_store
from monitor.store.repository import Store
from monitor.store.schema import MentionRow


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
