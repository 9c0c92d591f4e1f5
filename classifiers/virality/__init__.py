"""Virality forecasting: a post's final shares from its shares so far.

`default_forecaster().forecast(snapshots, created_at, now, author_followers)` (`defaults`: the
shipped parameters) is what the pipeline calls. The reference peers (naive, Szabo-Huberman,
SEISMIC) and `eval cascades` (`evaluate`) live beside it.
"""

from classifiers.virality.forecaster import ViralityForecaster

__all__ = ["ViralityForecaster"]
