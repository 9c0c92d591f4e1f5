"""SLA follow-up: an escalation not claimed, or not answered in public, within its severity's time
gets a thread reply mentioning its owner; one more such period later, the lead.

The brand's own public reply on the source counts as the answer (the collectors stamp it on the
escalation). Each breach is recorded once, timestamped, in the escalation's events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.config import Config, TeamMember
from monitor.store.repository import EscalationRecord, Store

log = logging.getLogger(__name__)

LEVELS = ("owner", "lead")  # who is told at one and at two SLA periods


@dataclass(frozen=True, slots=True)
class Breach:
    escalation_id: int
    kind: str  # "claim" or "reply"
    level: str  # "owner" or "lead"
    due: datetime  # when the promise ran out for this level
    minutes: int  # the SLA for this severity


def breaches(escalation: EscalationRecord, config: Config, now: datetime) -> list[Breach]:
    """Every breach of the escalation at `now`, already told or not."""
    found = []
    for kind, done_at, limits in (("claim", escalation.claimed_at, config.sla.claim_minutes),
                                  ("reply", escalation.first_reply_at, config.sla.reply_minutes)):
        if done_at is not None:
            continue
        minutes = limits[escalation.severity]
        for periods, level in enumerate(LEVELS, start=1):
            due = escalation.created_at + timedelta(minutes=minutes * periods)
            if now >= due:
                found.append(Breach(escalation.id, kind, level, due, minutes))
    return found


def _mention(member: TeamMember | None, fallback: str | None) -> str:
    if member is not None and member.slack_user:
        return f"<@{member.slack_user}>"
    return (member.name if member else fallback) or "nobody"


def follow_up_text(breach: Breach, escalation: EscalationRecord, config: Config) -> str:
    members = {m.name: m for m in config.team.members}
    owner_name = escalation.owner or escalation.suggested_owner
    what = {"claim": "claimed", "reply": "answered in public"}[breach.kind]
    if breach.level == "owner":
        return (f":alarm_clock: Not {what} within {breach.minutes} min ({escalation.severity.value} SLA). "
                f"{_mention(members.get(owner_name or ''), owner_name)}, please take it.")
    lead = next((m for m in config.team.members if m.role == "lead"), None)
    return (f":rotating_light: Still not {what} {breach.minutes * 2} min after the alert. "
            f"{_mention(lead, 'no lead configured')} (lead), please step in.")


def follow_up(store: Store, config: Config, now: datetime) -> int:
    """Record and announce breaches not yet told; returns how many."""
    in_hand = store.escalations_in_hand()
    told = store.sla_breaches_recorded(e.id for e in in_hand)
    queued = 0
    for escalation in in_hand:
        for breach in breaches(escalation, config, now):
            if (breach.escalation_id, breach.kind, breach.level) in told:
                continue
            store.record_sla_breach(escalation.id, breach.kind, breach.level, breach.due,
                                    follow_up_text(breach, escalation, config), now)
            log.warning("sla breach escalation=%d kind=%s level=%s due=%s", escalation.id, breach.kind, breach.level,
                        breach.due.isoformat(timespec="seconds"))
            queued += 1
    return queued
