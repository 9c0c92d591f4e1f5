"""The weekly escalation digest: what came in, how fast the team answered, where it got stuck.

"Topic" is what a webcare lead sorts escalations by: the trigger categories found in the posts
(legal, press, regulator, churn, safety, shaming, the words routing matches against the team's
skills), "storm" for a storm, and "no trigger" for one raised on negativity, reach or a forecast
alone. An escalation with two triggers counts under both.

The bottleneck is the stage where escalations spent the most time in all: unclaimed (alert to
claim), claimed but unanswered (claim to the brand's first public reply, less any wait on another
department in between), and waiting on another department (marked and unmarked from Slack).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.config import Config
from monitor.models import IN_HAND, EscalationState, Severity
from monitor.pipeline.score import feedback
from monitor.sla import LEVELS
from monitor.store.repository import EscalationRecord, Store, Transition


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


STAGES = ("unclaimed", "claimed but unanswered", "waiting on another department")


@dataclass(frozen=True)
class StormOfWeek:
    name: str
    posts: int
    minutes: float  # from its first post to its last


@dataclass(frozen=True)
class Digest:
    week: str
    total: int
    by_severity: dict[str, int]
    by_source: dict[str, int]
    by_language: dict[str, int]
    by_kind: dict[str, int]
    by_topic: dict[str, int]
    storms: list[StormOfWeek]
    claim_minutes: tuple[float | None, float | None]
    reply_minutes: tuple[float | None, float | None]
    claim_breaches: int  # escalations that missed the promise, whether or not a reminder went out
    reply_breaches: int
    sla_follow_ups: dict[str, int]  # reminders recorded, by "kind → who", e.g. "claim → lead"
    dismissed: int
    false_positive_rate: float | None  # from agents' feedback labels, else from dismissals
    per_owner: dict[str, int]
    stage_hours: dict[str, float]  # time all escalations spent in each stage
    bottleneck: str | None
    alert_precision: float | None = None  # on the last risk.feedback_window labelled alerts, any week
    labelled_alerts: int = 0


def waiting_spans(transitions: list[Transition], now: datetime) -> list[tuple[datetime, datetime]]:
    """Each wait on another department: from marking it until the next change of state (or now)."""
    spans = []
    since: datetime | None = None
    for t in transitions:
        if since is not None:
            spans.append((since, t.at))
            since = None
        if t.state is EscalationState.waiting:
            since = t.at
    if since is not None:
        spans.append((since, now))
    return spans


def stage_minutes(e: EscalationRecord, transitions: list[Transition], now: datetime) -> dict[str, float]:
    """How long this escalation spent in each stage (see the module's docstring)."""
    end = e.closed_at or now
    waits = waiting_spans(transitions, now)
    unclaimed = _minutes(e.claimed_at or end, e.created_at) or 0.0
    unanswered = 0.0
    if e.claimed_at is not None:
        answered = min(e.first_reply_at or end, end)
        overlap = sum(max(0.0, (min(stop, answered) - max(begin, e.claimed_at)).total_seconds() / 60)
                      for begin, stop in waits)
        unanswered = max(0.0, (answered - e.claimed_at).total_seconds() / 60 - overlap)
    waiting = sum((stop - begin).total_seconds() / 60 for begin, stop in waits)
    return dict(zip(STAGES, (unclaimed, unanswered, waiting)))


def build_digest(store: Store, config: Config, week: str | None, now: datetime) -> Digest:
    start, end, label = week_bounds(week, config.timezone, now)
    _, labelled = feedback(store, config.risk)
    escalations = store.escalations_between(start, end)
    ids = [e.id for e in escalations]
    claim = [m for e in escalations if (m := _minutes(e.claimed_at, e.created_at)) is not None]
    reply = [m for e in escalations if (m := _minutes(e.first_reply_at, e.created_at)) is not None]
    told = store.sla_breaches_recorded(ids)

    def breached(e: EscalationRecord, kind: str, at: datetime | None, limits: dict[Severity, int]) -> bool:
        if any((e.id, kind, level) in told for level in LEVELS):
            return True  # a reminder went out: breached, even if the SLA has been changed since
        if at is None and e.state not in IN_HAND:
            return False  # closed without it (a dismissal needs no claim or reply)
        return (at or now) - e.created_at > timedelta(minutes=limits[e.severity])

    closed = [e for e in escalations if e.state in (EscalationState.resolved, EscalationState.dismissed)]
    dismissed = sum(e.state is EscalationState.dismissed for e in escalations)
    labels = [label for _, label in store.feedback_between(start, end)]
    transitions = store.transitions(ids)
    stages = [stage_minutes(e, transitions.get(e.id, []), now) for e in escalations]
    stage_hours = {stage: round(sum(m[stage] for m in stages) / 60, 1) for stage in STAGES}
    triggers = store.trigger_categories(ids)
    topics = Counter(t for e in escalations for t in (
        ["storm"] if e.kind == "storm" else sorted(triggers.get(e.id) or ["no trigger"])))
    return Digest(
        week=label,
        total=len(escalations),
        by_severity=dict(Counter(e.severity.value for e in escalations)),
        by_source=dict(Counter(e.source for e in escalations)),
        by_language=dict(Counter(e.lang or "unknown" for e in escalations)),
        by_kind=dict(Counter(e.kind for e in escalations)),
        by_topic=dict(topics),
        storms=[StormOfWeek(s.name, s.posts, round((s.last_post_at - s.first_post_at).total_seconds() / 60))
                for s in store.storms_between(start, end)],
        claim_minutes=_median_p90(claim),
        reply_minutes=_median_p90(reply),
        claim_breaches=sum(breached(e, "claim", e.claimed_at, config.sla.claim_minutes) for e in escalations),
        reply_breaches=sum(breached(e, "reply", e.first_reply_at, config.sla.reply_minutes) for e in escalations),
        sla_follow_ups=dict(Counter(f"{kind} → {level}" for _, kind, level in sorted(told))),
        dismissed=dismissed,
        false_positive_rate=(labels.count("false_positive") / len(labels) if labels
                             else dismissed / len(closed) if closed else None),
        per_owner=dict(Counter(e.owner or e.suggested_owner or "unassigned" for e in escalations)),
        stage_hours=stage_hours,
        bottleneck=max(STAGES, key=stage_hours.__getitem__) if escalations else None,
        alert_precision=labelled.precision,
        labelled_alerts=labelled.labelled,
    )
