"""The reference forecasters that need no follower data: naive and Szabo-Huberman."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from classifiers.virality.observation import Observation
from classifiers.virality.timegrid import TimeGrid, log_size


class Naive:
    """The final size is what is seen now."""

    def predict(self, observation: Observation) -> float:
        return observation.seen


class SzaboHuberman:
    """Szabo & Huberman (CACM 2010): ln final = ln seen(t) + r(t).

    r(t) is the mean log growth from age t to the end over training cascades, fitted per
    observation age. Without a fit it uses `r_by_age` (the shipped defaults pass values fitted on
    the SEISMIC training cascades).
    """

    def __init__(self, r_by_age: TimeGrid | None = None):
        self.r_by_age = r_by_age or TimeGrid([3600.0], [0.0])

    def predict(self, observation: Observation) -> float:
        return float(np.exp(log_size(observation.seen) + self.r_by_age(observation.age)))

    def fit(self, cascades: Sequence, ages: Sequence[float]) -> SzaboHuberman:
        growth = [float(np.mean([log_size(c.final) - log_size(c.observe(age).seen) for c in cascades]))
                  for age in ages]
        self.r_by_age = TimeGrid(ages, growth)
        return self
