"""Stages 6-7: route each decision to a suggested owner and queue its alert in the outbox."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from monitor.clock import Clock
from monitor.config import Config
from monitor.models import AlertMessage, Owner, Severity
from monitor.notifiers.render import alert_to_payload
from monitor.pipeline.decide import Action, Decision
from monitor.routing import Router, RoutingRequest
from monitor.store.repository import Store

log = logging.getLogger(__name__)


def channel_for(config: Config, brand: str, severity: Severity) -> str:
    b = config.brand(brand)
    return b.slack_channels_by_severity.get(severity) or b.slack_channel or config.slack.channel


def compose(decision: Decision, owner: Owner, store: Store, change: str | None = None) -> AlertMessage:
    subject = decision.subject
    escalation_id = decision.existing.id if decision.existing else 0
    members = len(decision.member_ids)
    if decision.kind == "storm" and decision.storm is not None:
        examples = store.mentions(list(decision.member_ids)[-3:])
        return AlertMessage(
            escalation_id=escalation_id, kind=decision.action.value, brand=decision.brand,
            severity=decision.severity, title=f"Storm: {decision.storm.name}",
            source=", ".join(sorted({m.source for m in examples})) or "mixed", author=None,
            text=" / ".join(m.text for m in examples), url=None, reasons=decision.reasons, owner=owner,
            change=change, members=members,
        )
    assert subject is not None
    title = {"mention": "Escalation risk", "repeat_contact": "Repeat contact without a reply"}[decision.kind]
    metrics = store.latest_metrics(subject.id)
    return AlertMessage(
        escalation_id=escalation_id, kind=decision.action.value, brand=decision.brand, severity=decision.severity,
        title=title, source=subject.source, author=subject.author, text=subject.text, url=subject.url,
        reasons=decision.reasons, owner=owner, engagement=metrics,
        forecast_shares=decision.assessment.forecast_shares if decision.assessment else None,
        change=change, members=members,
    )


def _last_alert(decision: Decision, store: Store) -> dict:
    metrics = store.latest_metrics(decision.subject.id) if decision.subject else None
    members = decision.storm.size if decision.storm is not None and decision.kind == "storm" else len(
        set(decision.member_ids) | (store.escalation_member_ids(decision.existing.id) if decision.existing else set()))
    return {"severity": decision.severity.value, "shares": metrics.shares if metrics else 0, "members": members}


def enqueue(decisions: Sequence[Decision], store: Store, router: Router, config: Config, clock: Clock) -> int:
    """Write each decision; returns how many messages were queued."""
    queued = 0
    for d in decisions:
        now = clock.now()
        channel = channel_for(config, d.brand, d.severity)
        if d.action is Action.open:
            lang = d.subject.lang if d.subject else None
            brand_lang = next(iter(config.brand(d.brand).languages), None)
            owner = router.suggest(RoutingRequest(lang, d.skills, store.previous_owner(d.group_key), now, brand_lang),
                                   store.open_load())
            alert = compose(d, owner, store)
            escalation_id = store.create_escalation(
                brand=d.brand, group_key=d.group_key, kind=d.kind,
                subject_mention_id=d.subject.id if d.subject else None,
                storm_id=d.storm.id if d.storm else None,
                source=d.subject.source if d.subject else "mixed", lang=lang, severity=d.severity,
                probability=d.probability, reasons=d.reasons, suggested_owner=owner.member,
                owner_reason=owner.reason, member_ids=d.member_ids, alert_payload=alert_to_payload(alert),
                channel=channel, last_alert=_last_alert(d, store), now=now,
            )
            log.info("escalation opened id=%d group=%s severity=%s owner=%s", escalation_id, d.group_key,
                     d.severity.value, owner.member)
            queued += 1
            continue
        existing = d.existing
        assert existing is not None
        payload = None
        if d.change:
            owner = Owner(existing.owner or existing.suggested_owner, None, "current owner")
            member = next((m for m in config.team.members if m.name == owner.member), None)
            owner = Owner(owner.member, member.slack_user if member else None, owner.reason)
            payload = alert_to_payload(compose(d, owner, store, change=d.change))
            queued += 1
        store.update_escalation(
            existing.id, severity=d.severity, probability=d.probability, reasons=d.reasons,
            member_ids=d.member_ids, alert_payload=payload, channel=channel, now=now,
            subject_mention_id=d.subject.id if d.kind == "repeat_contact" and d.subject else None,
            last_alert=_last_alert(d, store) if d.change else None,
        )
    return queued
