"""Where each source stands, for `escalation-monitor status`: health, cursor, recent volume, reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from monitor.store.repository import SourceHealth, Store
from monitor.store.schema import CursorRow


@dataclass(frozen=True, slots=True)
class SourceStatus:
    source: str  # the collector's name (`x`, `mastodon:mastodon.nl`, `replay`)
    brand: str
    state: str  # "ok", "rate limited until …", "back-off until … (3 failures)", …
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    posts_last_hour: int
    cursor: str | None


def source_statuses(store: Store, now: datetime) -> list[SourceStatus]:
    health = {(h.source, h.brand): h for h in store.all_source_health()}
    with store.session() as s:
        cursors = {(c.source, c.brand): c.cursor for c in s.scalars(select(CursorRow))}
    # Mentions carry the network (`mastodon`), collectors a name that may add an instance.
    recent = store.mentions_collected_since(now - timedelta(hours=1))
    rows = []
    for key in sorted(set(health) | set(cursors)):
        source, brand = key
        h = health.get(key)
        rows.append(SourceStatus(
            source=source, brand=brand, state=_state(h, now) if h else "ok",
            last_success_at=h.last_success_at if h else None, last_error_at=h.last_error_at if h else None,
            last_error=h.last_error if h else None,
            posts_last_hour=recent.get((source.split(":")[0], brand), 0), cursor=cursors.get(key),
        ))
    return rows


def _state(h: SourceHealth, now: datetime) -> str:
    if h.paused_until is not None and h.paused_until > now:
        until = h.paused_until.astimezone(timezone.utc).isoformat(timespec="seconds")
        failures = f" ({h.failures} failure{'s' if h.failures != 1 else ''} in a row)" if h.failures else ""
        return f"{h.pause_reason} until {until}{failures}"
    if h.failures:
        return f"failing ({h.failures} in a row), retrying"
    return "ok"
