"""Parameters that depend on how long a post has been observed, fitted at a few ages."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def log_size(x: np.ndarray | float) -> np.ndarray | float:
    """ln of a size floored at 1: the one log convention for errors, fits and features."""
    return np.log(np.maximum(x, 1.0))


class TimeGrid:
    """Values fitted at some ages, interpolated linearly in log age, constant beyond the ends."""

    def __init__(self, ages: Sequence[float], values: Sequence[float]):
        order = np.argsort(ages)
        self.ages = np.asarray(ages, dtype=float)[order]
        self.values = np.asarray(values, dtype=float)[order]

    def __call__(self, age: float) -> float:
        return float(np.interp(np.log(max(age, 1.0)), np.log(np.maximum(self.ages, 1.0)), self.values))

    def to_dict(self) -> dict:
        return {"ages": self.ages.tolist(), "values": self.values.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> TimeGrid:
        return cls(data["ages"], data["values"])


def fit_scale(seen: Sequence[float], extra: Sequence[float], final: Sequence[float],
              default: float) -> float:
    """The a > 0 minimising mean |log_size(seen + a * extra) - log_size(final)| (default: no data)."""
    if len(seen) == 0:
        return default
    candidates = np.geomspace(1e-2, 1e2, 1601)
    seen, extra = np.asarray(seen, dtype=float)[:, None], np.asarray(extra, dtype=float)[:, None]
    errors = np.abs(log_size(seen + candidates * extra) - log_size(np.asarray(final, dtype=float))[:, None])
    return float(candidates[np.argmin(errors.mean(axis=0))])
