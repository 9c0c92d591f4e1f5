"""The project forecaster's features of an observed post, the same from event times and snapshots.

Features come in groups, each adding to the one before, by what the source tells:

- counts (every source): age; how the shares spread over the observed window (the share of
  them in its last half, quarter, tenth and twentieth, as a log rate against the window's mean
  rate); how long the count has been still, in units of the mean gap between shares; the growth
  and infectiousness of SEISMIC with equal followers for all (`equal_degree_components`); and
  the size seen so far;
- author: the author's followers;
- followers (event sources that give each sharer's followers): SEISMIC's infectiousness and its
  expected direct reshares to come, the mean followers per sharer, the exposure share of the
  last quarter of the window, and the followers reached so far.

The sizes (shares seen, followers reached) let a fitted model learn the size distribution of its
training cascades: right when the posts forecast come from the same population, as in
cross-validation, and wrong for a population selected otherwise (the SEISMIC set holds only
posts that reached 2,000 retweets, so a model fitted on it expects every post to get there).
"""

from __future__ import annotations

import numpy as np

from classifiers.virality.observation import Observation
from classifiers.virality.seismic import Seismic, equal_degree_components

GROUPS = ("counts", "author", "followers")
RECENT = (0.5, 0.75, 0.9, 0.95)
_SEISMIC = Seismic()


def group_of(observation: Observation) -> str:
    """The richest group the observation has data for."""
    if Seismic.applies(observation):
        return "followers"
    return "author" if observation.author_followers is not None else "counts"


def features(observation: Observation, group: str) -> list[float]:
    age = max(observation.age, 1.0)
    seen = observation.seen
    log_seen = np.log1p(seen)
    row = [float(np.log(age))]
    for fraction in RECENT:
        recent = seen - observation.count_at(fraction * age)
        row.append(float(np.log1p(recent) - log_seen - np.log(1 - fraction)))
    row.append(float(np.log1p(seen * (age - observation.last_rise()) / age)))
    direct, rate = equal_degree_components(observation)
    row += [float(np.log1p(seen + direct) - log_seen), min(rate, 5.0), float(log_seen)]
    if group in ("author", "followers"):
        row.append(float(np.log1p(observation.author_followers)))
    if group == "followers":
        _, direct, p_t = _SEISMIC.components(observation)
        followers = observation.followers
        total = float(followers.sum())
        recent = float(followers[observation.times >= 0.75 * age].sum())
        row += [float(np.log1p(direct) - log_seen), min(p_t * _SEISMIC.n_star, 2.0),
                float(np.log1p(total / max(seen, 1.0))), float(np.log1p(recent) - np.log1p(total)),
                float(np.log1p(total + observation.author_followers))]
    return row
