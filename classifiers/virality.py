"""Forecast of a post's final shares (reposts + quotes) from its engagement so far."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from monitor.models import Snapshot


class PowerLawGrowthForecaster:
    """final = shares now x (horizon / age) ** alpha.

    Shares of a post arrive at a rate that decays roughly as a power of its age, so the
    multiplier left to come shrinks as the post gets older. alpha and the horizon are
    parameters (scikit-learn style); the escalation-risk issue fits better forecasters.
    """

    def __init__(self, alpha: float = 0.25, horizon_hours: float = 48.0, min_age_minutes: float = 2.0):
        self.alpha = alpha
        self.horizon_hours = horizon_hours
        self.min_age_minutes = min_age_minutes

    def predict(self, snapshots: Sequence[Snapshot], created_at: datetime, now: datetime) -> float:
        if not snapshots:
            return 0.0
        # Broken APIs send counts out of order or decreasing: trust the largest count seen so far.
        shares = max(max(0, s.metrics.shares) for s in snapshots if s.observed_at <= now) if any(
            s.observed_at <= now for s in snapshots) else 0
        age_min = max(self.min_age_minutes, (now - created_at).total_seconds() / 60)
        ratio = max(1.0, (self.horizon_hours * 60 / age_min) ** self.alpha)
        return float(shares) * ratio
