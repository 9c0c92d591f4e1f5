"""What a forecaster knows about a post at one moment: its cumulative share count so far.

Two kinds of source feed it. Event sources give the time of every share (and sometimes the
sharer's followers): the count is an exact step function. Count sources (X) only give totals at
poll times: the count between polls is the straight line through the snapshots. Both become an
`Observation` with the same `count_at`, so every forecaster reads both the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from monitor.models import Snapshot

log = logging.getLogger(__name__)

# More shares than any post has ever had: a count above this comes from a broken API.
MAX_SHARES = 100_000_000


@dataclass(frozen=True, slots=True)
class Observation:
    """A post `age` seconds after it was posted.

    `times` (seconds since the post, sorted) and `counts` (cumulative shares at those times,
    non-decreasing) are the knots of the count curve; `step` says whether the curve jumps at each
    knot (event times: one share per knot) or runs straight between knots (snapshots: the first
    knot is the post itself, at t = 0). `followers` holds the followers of each sharer, aligned
    with `times`, where the source gives them (event sources only).
    """

    age: float
    times: np.ndarray
    counts: np.ndarray
    step: bool
    followers: np.ndarray | None = None
    author_followers: float | None = None
    # The post is gone (the source reports no engagement any more): nothing more will come.
    removed: bool = False

    @property
    def seen(self) -> float:
        return self.count_at(self.age)

    def last_rise(self) -> float:
        """When the count last went up (0 if it never did): the last share, or for snapshots the
        first snapshot that showed today's count."""
        if self.step:
            return float(self.times[-1]) if self.times.size else 0.0
        return float(self.times[np.argmax(self.counts >= self.counts[-1])]) if self.counts[-1] > 0 else 0.0

    def share_times(self, limit: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """(times, weights) of the shares seen: exact for events; for snapshots spread along the
        count curve, and beyond `limit` shares one entry stands for several (its weight)."""
        if self.step:
            return self.times, np.ones_like(self.times)
        seen = self.counts[-1]
        entries = int(min(np.ceil(seen), limit))
        if entries == 0:
            return np.zeros(0), np.zeros(0)
        # Where the curve crosses the middle of each entry's slice of the count, on rising segments.
        # A count already there at t = 0 (a skewed clock) rose from 0 at that instant.
        knot_times, knot_counts = np.append(0.0, self.times), np.append(0.0, self.counts)
        levels = (np.arange(entries) + 0.5) * seen / entries
        rising = np.flatnonzero(np.diff(knot_counts) > 0)
        low, high = knot_counts[rising], knot_counts[rising + 1]
        segment = np.searchsorted(high, levels, side="left")
        start, end = knot_times[rising][segment], knot_times[rising + 1][segment]
        times = start + (levels - low[segment]) / (high[segment] - low[segment]) * (end - start)
        return times, np.full(entries, seen / entries)

    def count_at(self, t: float | np.ndarray) -> float | np.ndarray:
        if self.step:
            values = np.concatenate(([0.0], self.counts))[np.searchsorted(self.times, t, side="right")]
        else:
            values = np.interp(t, self.times, self.counts)
        return values if isinstance(t, np.ndarray) else float(values)


def from_events(times: np.ndarray, age: float, followers: np.ndarray | None = None,
                author_followers: float | None = None) -> Observation:
    """The shares seen by `age` from their times (seconds since the post, root excluded).

    A share timed before the post (clock skew between the post's and the sharer's clocks) is
    counted as made at the moment of posting.
    """
    order = np.argsort(times, kind="stable")
    times = np.maximum(np.asarray(times, dtype=float)[order], 0.0)
    keep = times <= age
    shown = times[keep]
    return Observation(
        age=float(age),
        times=shown,
        counts=np.arange(1, shown.size + 1, dtype=float),
        step=True,
        followers=None if followers is None else np.asarray(followers, dtype=float)[order][keep],
        author_followers=author_followers,
    )


def from_snapshots(snapshots: Sequence[Snapshot], created_at: datetime, now: datetime,
                   author_followers: float | None = None) -> Observation:
    """The share curve from count snapshots, robust to what real APIs send.

    - Snapshots after `now` are not known yet and are ignored; out-of-order ones are sorted.
    - A snapshot before `created_at` (clock skew) counts as taken at the moment of posting.
    - Counts that go down (a sharer deleted their repost) keep the highest count so far: the
      exposure those shares gave already happened.
    - A count that drops to zero after being positive means the post itself was deleted or
      hidden: the forecast stops growing (`removed`).
    - Counts above `MAX_SHARES` are clamped and logged.

    The observation's age is that of the last snapshot, the last moment the count is known.
    """
    known = sorted((s for s in snapshots if s.observed_at <= now), key=lambda s: s.observed_at)
    if not known:
        return Observation(age=max(0.0, (now - created_at).total_seconds()), times=np.zeros(1),
                           counts=np.zeros(1), step=False, author_followers=author_followers)
    times = np.array([0.0] + [max(0.0, (s.observed_at - created_at).total_seconds()) for s in known])
    # The post had no shares when it was posted.
    raw = np.array([0.0] + [float(s.metrics.shares) for s in known])
    if raw.max() > MAX_SHARES:
        log.warning("share count %d above %d: a broken API? clamped", int(raw.max()), MAX_SHARES)
    raw = np.clip(raw, 0.0, MAX_SHARES)
    removed = bool(raw[-1] == 0 and raw.max() > 0)
    counts = np.maximum.accumulate(raw)
    # Several knots at one instant (skewed clocks put snapshots at 0): keep the last count.
    last_of_instant = np.append(times[1:] != times[:-1], True)
    return Observation(
        age=float(times[-1]),
        times=times[last_of_instant],
        counts=counts[last_of_instant],
        step=False,
        author_followers=author_followers,
        removed=removed,
    )
