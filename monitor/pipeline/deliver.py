"""Stage 8: deliver queued alerts in order, with back-off; the outbox survives restarts and outages."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from monitor.clock import Clock
from monitor.notifiers.base import DeliveryError, Notifier
from monitor.store.repository import Store

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int
    failed: int
    gave_up: int


def backoff_seconds(attempts: int) -> float:
    """2, 4, 8 ... seconds after each failed attempt, capped at five minutes."""
    return min(MAX_BACKOFF_S, 2.0 ** max(1, attempts))


def deliver_pending(store: Store, notifier: Notifier, clock: Clock, max_attempts: int = 20) -> DeliveryReport:
    sent = failed = gave_up = 0
    held: set[int] = set()
    for item in store.pending_outbox(clock.now()):
        if item.escalation_id in held:
            continue  # an earlier message of this escalation failed: keep the order
        try:
            ts = notifier.send(item)
        except DeliveryError as exc:
            held.add(item.escalation_id)
            attempts = item.attempts + 1
            if exc.permanent or attempts >= max_attempts:
                store.mark_failed(item.id, str(exc), None, clock.now())
                gave_up += 1
                log.error("alert given up outbox=%d escalation=%d attempts=%d error=%s", item.id,
                          item.escalation_id, attempts, exc)
                continue
            wait = exc.retry_after if exc.retry_after is not None else backoff_seconds(attempts)
            store.mark_failed(item.id, str(exc), clock.now() + timedelta(seconds=wait), clock.now())
            failed += 1
            log.warning("alert delivery failed outbox=%d attempt=%d retry_in=%.0fs error=%s", item.id, attempts,
                        wait, exc)
            continue
        store.mark_sent(item.id, ts, clock.now())
        sent += 1
        log.info("alert delivered outbox=%d escalation=%d kind=%s", item.id, item.escalation_id, item.kind)
    return DeliveryReport(sent, failed, gave_up)
