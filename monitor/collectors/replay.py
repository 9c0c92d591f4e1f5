"""Replay source: posts from a scenario file become visible when the clock reaches their time."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from monitor.clock import Clock
from monitor.collectors.base import CollectResult
from monitor.models import MetricsUpdate
from monitor.scenario import Scenario


class ReplayCollector:
    """The cursor is the number of scenario posts already handed out, so a restart resumes exactly.

    Its posts keep the source they were written for (x, reddit, ...), so they are stored and
    scored exactly as collected ones would be.
    """

    def __init__(self, scenario: Scenario, brand: str, clock: Clock, batch_size: int = 50,
                 source: str = "replay"):
        self.scenario = scenario
        self.brand = brand
        self.clock = clock
        self.batch_size = batch_size
        self.source = source
        self.sources = frozenset(p.source for p in scenario.posts)
        self._post_times = [p.at for p in scenario.posts]
        self._metric_times = [m.at for m in scenario.metrics]

    def collect(self, cursor: str | None) -> CollectResult:
        start = int(cursor or 0)
        visible = bisect.bisect_right(self._post_times, self.clock.now())
        end = min(visible, start + self.batch_size)
        posts = self.scenario.posts[start:end]
        return CollectResult(tuple(p.to_mention(self.brand) for p in posts), str(end), more=end < visible)

    def refresh_metrics(self, external_ids: Sequence[str]) -> list[MetricsUpdate]:
        wanted = set(external_ids)
        now = self.clock.now()
        latest: dict[tuple[str, str], MetricsUpdate] = {}
        for event in self.scenario.metrics[: bisect.bisect_right(self._metric_times, now)]:
            if event.id in wanted:
                latest[(event.source, event.id)] = event.to_update()
        return [MetricsUpdate(u.source, u.external_id, now, u.metrics) for u in latest.values()]
