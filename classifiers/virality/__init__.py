"""Virality forecasting: a post's final shares from its shares so far.

`ViralityForecaster().forecast(snapshots, created_at, now, author_followers)` is what the
pipeline calls. The reference peers (naive, Szabo-Huberman, SEISMIC) and `eval cascades`
(`evaluate`) live beside it.
"""

from classifiers.virality.forecaster import ViralityForecaster

__all__ = ["ViralityForecaster"]
