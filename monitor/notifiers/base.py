"""The notifier contract used by the delivery stage."""

from __future__ import annotations

from typing import Protocol

from monitor.store.repository import OutboxItem


class DeliveryError(Exception):
    """A failed delivery. `retry_after` (seconds) when the service said when; `permanent` to give up."""

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class Notifier(Protocol):
    def send(self, item: OutboxItem) -> str | None:
        """Deliver one alert or update; return the message id (Slack ts) if the service has one."""
        ...
