"""The weekly escalation digest: what came in, how fast the team answered, where it got stuck."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.config import Config
from monitor.models import EscalationState, Severity
from monitor.pipeline.score import feedback
from monitor.store.repository import EscalationRecord, Store


def week_bounds(week: str | None, timezone: str, today: datetime) -> tuple[datetime, datetime, str]:
    """`2026-W47` (or the last full week) as [start, end) in the team's timezone."""
    tz = ZoneInfo(timezone)
    if week is None:
        local = today.astimezone(tz).date() - timedelta(days=7)
        year, number, _ = local.isocalendar()
        week = f"{year}-W{number:02d}"
    try:
        year_s, number_s = week.split("-W")
        monday = date.fromisocalendar(int(year_s), int(number_s), 1)
    except ValueError:
        raise ValueError(f"--week: expected an ISO week like 2026-W47, got {week!r}") from None
    start = datetime.combine(monday, datetime.min.time(), tzinfo=tz)
    return start, start + timedelta(days=7), week


def _minutes(later: datetime | None, earlier: datetime) -> float | None:
    return None if later is None else (later - earlier).total_seconds() / 60


def _median_p90(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return statistics.median(ordered), p90


@dataclass(frozen=True)
class Digest:
    week: str
    total: int
    by_severity: dict[str, int]
    by_source: dict[str, int]
    by_language: dict[str, int]
    by_kind: dict[str, int]
    claim_minutes: tuple[float | None, float | None]
    reply_minutes: tuple[float | None, float | None]
    claim_breaches: int
    reply_breaches: int
    dismissed: int
    false_positive_rate: float | None  # from agents' feedback labels, else from dismissals
    per_owner: dict[str, int]
    bottleneck: str | None
    alert_precision: float | None = None  # on the last risk.feedback_window labelled alerts, any week
    labelled_alerts: int = 0


def build_digest(store: Store, config: Config, week: str | None, now: datetime) -> Digest:
    start, end, label = week_bounds(week, config.timezone, now)
    _, labelled = feedback(store, config.risk)
    escalations = store.escalations_between(start, end)
    claim = [m for e in escalations if (m := _minutes(e.claimed_at, e.created_at)) is not None]
    reply = [m for e in escalations if (m := _minutes(e.first_reply_at, e.created_at)) is not None]

    def breached(e: EscalationRecord, at: datetime | None, limits: dict[Severity, int]) -> bool:
        limit = timedelta(minutes=limits[e.severity])
        return (at or now) - e.created_at > limit if at or e.state in (EscalationState.open,
                                                                       EscalationState.claimed) else False

    closed = [e for e in escalations if e.state in (EscalationState.resolved, EscalationState.dismissed)]
    dismissed = sum(e.state is EscalationState.dismissed for e in escalations)
    labels = [label for _, label in store.feedback_between(start, end)]
    waits = {
        "unclaimed": sum(_minutes(e.claimed_at or e.closed_at or now, e.created_at) or 0 for e in escalations),
        "claimed but unanswered": sum(_minutes(e.first_reply_at or e.closed_at or now, e.claimed_at) or 0
                                      for e in escalations if e.claimed_at),
    }
    return Digest(
        week=label,
        total=len(escalations),
        by_severity=dict(Counter(e.severity.value for e in escalations)),
        by_source=dict(Counter(e.source for e in escalations)),
        by_language=dict(Counter(e.lang or "unknown" for e in escalations)),
        by_kind=dict(Counter(e.kind for e in escalations)),
        claim_minutes=_median_p90(claim),
        reply_minutes=_median_p90(reply),
        claim_breaches=sum(breached(e, e.claimed_at, config.sla.claim_minutes) for e in escalations),
        reply_breaches=sum(breached(e, e.first_reply_at, config.sla.reply_minutes) for e in escalations),
        dismissed=dismissed,
        false_positive_rate=(labels.count("false_positive") / len(labels) if labels
                             else dismissed / len(closed) if closed else None),
        per_owner=dict(Counter(e.owner or e.suggested_owner or "unassigned" for e in escalations)),
        bottleneck=max(waits, key=waits.__getitem__) if escalations else None,
        alert_precision=labelled.precision,
        labelled_alerts=labelled.labelled,
    )
