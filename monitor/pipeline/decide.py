"""Stage 5: decide what each assessment means for the team (Alertmanager-style dedup and grouping).

Every escalation has a group key: one post (`mention:ID`), one customer who keeps writing
(`author:SOURCE:ID`), or one storm (`storm:ID`). A group has at most one escalation in hand, so
a post never produces two alerts; later news about it becomes an update of the same message.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from classifiers.risk import severity_from_size
from monitor.config import Config
from monitor.models import RiskAssessment, Severity, StoredMention
from monitor.pipeline.storms import StormChange
from monitor.store.repository import EscalationRecord, StormRecord, Store


class Action(str, enum.Enum):
    open = "open"
    update = "update"  # store the news; `change` says whether a message goes out


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    group_key: str
    kind: str  # mention, repeat_contact, storm
    brand: str
    severity: Severity
    probability: float
    reasons: tuple[str, ...]
    member_ids: tuple[int, ...]
    subject: StoredMention | None
    storm: StormRecord | None = None
    assessment: RiskAssessment | None = None
    existing: EscalationRecord | None = None
    change: str | None = None  # for updates: what to tell the channel; None = record silently
    skills: tuple[str, ...] = ()  # what handling it takes: trigger categories, "storm", the source


def _growth_change(existing: EscalationRecord, severity: Severity, shares: float, members: int) -> str | None:
    last = existing.last_alert
    parts = []
    if severity.rank > Severity(last.get("severity", severity.value)).rank:
        parts.append(f"severity {last.get('severity')} → {severity.value}")
    last_shares = float(last.get("shares", 0))
    if shares >= 50 and shares >= 2 * max(last_shares, 1):
        parts.append(f"reposts {int(last_shares):,} → {int(shares):,}")
    last_members = int(last.get("members", 1))
    if members > last_members and (existing.kind != "storm" or members >= last_members * 1.5):
        parts.append(f"posts {last_members} → {members}")
    return "; ".join(parts) or None


def decide_mentions(store: Store, config: Config, assessed: Sequence[tuple[StoredMention, RiskAssessment]],
                    shares_of) -> list[Decision]:
    """`shares_of(mention_id)` gives the latest share count, for telling when a post has grown."""
    decisions = []
    window = timedelta(hours=config.risk.repeat_contact_window_hours)
    for mention, a in assessed:
        thresholds = config.thresholds_for(mention.brand)
        storm = store.storm_of(mention.id)
        repeat = any(r.endswith("posts without a reply") for r in a.reasons)
        if repeat:
            key, kind = f"author:{mention.source}:{mention.author.id}", "repeat_contact"
            members = tuple(store.author_mention_ids(mention, mention.created_at - window))
        else:
            key, kind = f"mention:{mention.id}", "mention"
            members = (mention.id,)

        classification = store.classification(mention.id)
        skills = tuple(dict.fromkeys([t.category for t in classification.triggers] if classification else [])) + (
            mention.source,)
        existing = store.open_escalation(key)
        if existing is None and kind == "mention":
            # A post the team already closed, or that belongs to a customer's open escalation.
            if store.any_escalation(key) is not None or store.escalation_of_mention(mention.id) is not None:
                continue
        if existing is not None:
            severity = max(existing.severity, a.severity or existing.severity, key=lambda s: s.rank)
            change = _growth_change(existing, severity, shares_of(mention.id), len(set(members) | store.escalation_member_ids(existing.id)))
            decisions.append(Decision(Action.update, key, kind, mention.brand, severity,
                                      max(a.probability, existing.probability), a.reasons, members, mention,
                                      storm, a, existing, change, skills))
            continue
        if a.severity is None:
            continue
        # Posts in a storm are covered by the storm's alert; only a severe one gets its own.
        if storm is not None and a.probability < thresholds.high:
            continue
        decisions.append(Decision(Action.open, key, kind, mention.brand, a.severity, a.probability, a.reasons,
                                  members, mention, storm, a, skills=skills))
    return decisions


def decide_storms(store: Store, changes: Sequence[StormChange]) -> list[Decision]:
    decisions = []
    for change in changes:
        storm = store.storm(change.storm_id)
        key = f"storm:{storm.id}"
        severity = severity_from_size(storm.size, storm.expected_per_window)
        reasons = (f"{storm.size} negative posts, about {storm.expected_per_window:.1f} expected per "
                   f"window", f"top terms: {', '.join(storm.terms[:5])}")
        members = tuple(sorted(store.storm_member_ids_of(storm.id)))
        existing = store.open_escalation(key)
        if existing is None:
            if change.closed or store.any_escalation(key) is not None:
                continue
            decisions.append(Decision(Action.open, key, "storm", storm.brand, severity, 1.0, reasons, members,
                                      None, storm, skills=("storm",)))
            continue
        text = _growth_change(existing, severity, 0, storm.size)
        if change.closed:
            text = f"storm is over: volume back to normal after {storm.size} posts"
        decisions.append(Decision(Action.update, key, "storm", storm.brand,
                                  max(existing.severity, severity, key=lambda s: s.rank), 1.0, reasons, members,
                                  None, storm, None, existing, text))
    return decisions
