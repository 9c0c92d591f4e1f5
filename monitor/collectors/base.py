"""The collector contract every source implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitor.models import MentionIn, MetricsUpdate


@dataclass(frozen=True, slots=True)
class Pause:
    """The source asks not to be called before `until` (its rate-limit window or read budget is spent)."""

    until: datetime
    reason: str  # "rate limited", "daily read budget"


@dataclass(frozen=True, slots=True)
class CollectResult:
    mentions: tuple[MentionIn, ...]
    cursor: str | None  # stored only after the batch is committed
    more: bool = False  # the source has more right now; the next run should come soon
    pause: Pause | None = None  # a clean stop: the batch is good, but wait before the next run


class SourceFault(Exception):
    """A source failed in a known way (429, 5xx, timeout, reset, bad response).

    The message is one log line naming what is wrong; it never holds a token. The cursor stays
    where it was and the run is retried after a back-off, or at `retry_at` when the source says when.
    """

    def __init__(self, kind: str, message: str, retry_at: datetime | None = None):
        super().__init__(message)
        self.kind = kind  # rate_limited, server_error, timeout, connection, bad_response, bad_request, auth, budget
        self.retry_at = retry_at


class Collector(Protocol):
    source: str  # the collector's name; its cursor is stored under it
    brand: str
    sources: frozenset[str]  # the `source` of the mentions it yields, for re-polling them

    def collect(self, cursor: str | None) -> CollectResult:
        """New mentions since `cursor` and the cursor to continue from; raises SourceFault."""
        ...

    def refresh_metrics(self, external_ids: Sequence[str]) -> list[MetricsUpdate]:
        """Current engagement of already collected posts (deleted posts are left out); raises SourceFault."""
        ...
