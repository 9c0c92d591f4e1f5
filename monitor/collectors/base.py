"""The collector contract every source implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from monitor.models import MentionIn, MetricsUpdate


@dataclass(frozen=True, slots=True)
class CollectResult:
    mentions: tuple[MentionIn, ...]
    cursor: str | None  # stored only after the batch is committed
    more: bool = False  # the source has more right now; the next run should come soon


class Collector(Protocol):
    source: str  # the collector's name; its cursor is stored under it
    brand: str
    sources: frozenset[str]  # the `source` of the mentions it yields, for re-polling them

    def collect(self, cursor: str | None) -> CollectResult:
        """New mentions since `cursor` and the cursor to continue from."""
        ...

    def refresh_metrics(self, external_ids: Sequence[str]) -> list[MetricsUpdate]:
        """Current engagement of already collected posts (deleted posts are left out)."""
        ...
