"""The fitted forecaster's features of an observed post, the same from event times and snapshots.

Features come in groups, each adding to the one before, by what the source tells:

- counts (every source): age; the growth still to come of SEISMIC with equal followers for all
  (`equal_degree_components`) and its infectiousness; how the shares spread over the observed
  window (the share of them in its last half, quarter, tenth and twentieth, as a log rate against
  the window's mean rate); how long the count has been still, in units of the mean gap between
  shares; and the size seen so far;
- author: the author's followers;
- followers (event sources that give each sharer's followers): the mean followers per sharer,
  SEISMIC's infectiousness and its expected direct reshares to come, the exposure share of the
  last quarter of the window, and the followers reached so far.

A few of them (`Features.core`: age, the self-exciting growth, the author's followers, the mean
followers per sharer) feed the parametric model (`lognormal`); the trees read them all.

The sizes (shares seen, followers reached) let a fitted model learn the size distribution of its
training cascades: right when the posts forecast come from the same population, as in
cross-validation, and wrong for a population selected otherwise (the SEISMIC set holds only
posts that reached 2,000 retweets, so a model fitted on it expects every post to get there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from classifiers.virality.observation import Observation
from classifiers.virality.seismic import Seismic, equal_degree_components

GROUPS = ("counts", "author", "followers")
RECENT = (0.5, 0.75, 0.9, 0.95)
_SEISMIC = Seismic()


@dataclass(frozen=True, slots=True)
class Features:
    core: list[float]  # the parametric model's
    shape: list[float]  # the trees' on top of `core`

    @property
    def all(self) -> list[float]:
        return self.core + self.shape


def group_of(observation: Observation) -> str:
    """The richest group the observation has data for."""
    if Seismic.applies(observation):
        return "followers"
    return "author" if observation.author_followers is not None else "counts"


def features(observation: Observation, group: str) -> Features:
    age = max(observation.age, 1.0)
    seen = observation.seen
    log_seen = np.log1p(seen)
    direct, rate = equal_degree_components(observation)
    core = [float(np.log(age)), float(np.log1p(seen + direct) - log_seen)]
    shape = [min(rate, 5.0)]
    for fraction in RECENT:
        recent = seen - observation.count_at(fraction * age)
        shape.append(float(np.log1p(recent) - log_seen - np.log(1 - fraction)))
    shape += [float(np.log1p(seen * (age - observation.last_rise()) / age)), float(log_seen)]
    if group in ("author", "followers"):
        core.append(float(np.log1p(observation.author_followers)))
    if group == "followers":
        _, direct, p_t = _SEISMIC.components(observation)
        followers = observation.followers
        total = float(followers.sum())
        recent = float(followers[observation.times >= 0.75 * age].sum())
        core.append(float(np.log1p(total / max(seen, 1.0))))
        shape += [float(np.log1p(direct) - log_seen), min(p_t * _SEISMIC.n_star, 2.0),
                  float(np.log1p(recent) - np.log1p(total)), float(np.log1p(total + observation.author_followers))]
    return Features(core, shape)
