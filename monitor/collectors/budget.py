"""A daily read budget for a source that bills per post read (X), kept in the store across restarts."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Protocol

from monitor.clock import Clock


class ReadCounter(Protocol):
    def reads_on(self, source: str, day: str) -> int: ...

    def add_reads(self, source: str, day: str, count: int) -> int: ...


class ReadBudget:
    """Counts posts read per UTC day; every collector of the source (one per brand) shares the count."""

    def __init__(self, counter: ReadCounter, source: str, daily_limit: int, clock: Clock):
        self.counter = counter
        self.source = source
        self.daily_limit = daily_limit
        self.clock = clock

    def _day(self) -> str:
        return self.clock.now().astimezone(timezone.utc).date().isoformat()

    def remaining(self) -> int:
        return max(0, self.daily_limit - self.counter.reads_on(self.source, self._day()))

    def spend(self, count: int) -> None:
        if count:
            self.counter.add_reads(self.source, self._day(), count)

    def resets_at(self) -> datetime:
        today = self.clock.now().astimezone(timezone.utc).date()
        return datetime.combine(today + timedelta(days=1), time(0), tzinfo=timezone.utc)
