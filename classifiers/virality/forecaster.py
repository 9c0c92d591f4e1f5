"""The project's virality forecaster: final shares and "will at least double" from the shares so far.

Unfitted (as shipped, and in the pipeline) it is a self-exciting process with SEISMIC's memory
kernel over the share counts alone: the shares to come are `scale` times the reshares that the
shares so far are still expected to trigger (`equal_degree_components`). It needs no follower
data, runs on count snapshots, keeps a stalled post where it is and grows a fast one.

Fitted on cascades of known final size, gradient-boosted trees learn the log growth still to
come, ln((1 + final) / (1 + seen)), from the features of `features` (the unfitted forecast among
them), and a classifier learns the probability that the final size is at least twice what is
seen. Each cascade is observed at many ages (2 min to 24 h) so one model serves every age; one
model pair is fitted per feature group the training data has, and a post is forecast by the
richest group it has data for. The fitted model learns its training population's sizes: fit it
on posts like those it will forecast.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

from classifiers.virality.features import GROUPS, features, group_of
from classifiers.virality.observation import MAX_SHARES, Observation, from_snapshots
from classifiers.virality.seismic import equal_degree_components
from monitor.models import Snapshot

TRAIN_AGES = tuple(float(a) for a in np.geomspace(120, 86_400, 16).round())


class ViralityForecaster:
    """scikit-learn style: parameters in the constructor, `fit(cascades)`, then `predict`."""

    def __init__(self, scale: float = 1.0, n_estimators: int = 100, max_depth: int = 2,
                 learning_rate: float = 0.075, subsample: float = 0.8, min_samples_leaf: int = 20,
                 double_threshold: float = 0.5, train_ages: Sequence[float] = TRAIN_AGES,
                 random_state: int = 0):
        self.scale = scale
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.min_samples_leaf = min_samples_leaf
        self.double_threshold = double_threshold
        self.train_ages = tuple(train_ages)
        self.random_state = random_state
        # group -> (log growth still to come, probability of at least doubling)
        self.models_: dict[str, tuple[GradientBoostingRegressor, GradientBoostingClassifier | bool]] = {}

    def _boosting(self, kind):
        return kind(n_estimators=self.n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate,
                    subsample=self.subsample, min_samples_leaf=self.min_samples_leaf,
                    random_state=self.random_state)

    def fit(self, cascades: Sequence, ages: Sequence[float] = ()) -> ViralityForecaster:
        """Fit on cascades observed at `train_ages` and at `ages` (those that will be asked)."""
        ages = sorted(set(self.train_ages) | {float(a) for a in ages})
        # A post with no share yet gives nothing to extrapolate from (`predict` keeps it at 0).
        rows = [(o, c.final) for c in cascades for o in (c.observe(a) for a in ages) if o.seen >= 1]
        if not rows:
            raise ValueError("no cascade has a share by the ages observed: nothing to fit")
        richest = min(GROUPS.index(group_of(o)) for o, _ in rows)
        seen = np.array([o.seen for o, _ in rows])
        final = np.maximum([f for _, f in rows], seen)
        growth = np.log1p(final) - np.log1p(seen)
        doubled = final >= 2 * seen
        self.models_ = {}
        for group in GROUPS[:richest + 1]:
            X = np.array([features(o, group) for o, _ in rows])
            regressor = self._boosting(GradientBoostingRegressor).fit(X, growth)
            # With one class only, that class is the answer whatever the features.
            classifier = (bool(doubled[0]) if doubled.all() or not doubled.any()
                          else self._boosting(GradientBoostingClassifier).fit(X, doubled))
            self.models_[group] = (regressor, classifier)
        return self

    def _fitted(self, observation: Observation):
        available = GROUPS.index(group_of(observation))
        group = next(g for g in reversed(GROUPS[:available + 1]) if g in self.models_)
        regressor, classifier = self.models_[group]
        return np.array([features(observation, group)]), regressor, classifier

    def predict(self, observation: Observation) -> float:
        """Forecast final shares: never below what is seen, never above `MAX_SHARES`."""
        seen = observation.seen
        if observation.removed or seen < 1:
            return float(seen)
        if self.models_:
            X, regressor, _ = self._fitted(observation)
            forecast = np.expm1(np.log1p(seen) + max(0.0, float(regressor.predict(X)[0])))
        else:
            forecast = seen + self.scale * equal_degree_components(observation)[0]
        return float(min(MAX_SHARES, max(seen, forecast)))

    def will_double(self, observation: Observation) -> bool:
        """Will the final size be at least twice what is seen? Fitted: the classifier's
        probability against `double_threshold`; unfitted: the forecast."""
        if observation.removed or observation.seen < 1:
            return False
        if not self.models_:
            return self.predict(observation) >= 2 * observation.seen
        X, _, classifier = self._fitted(observation)
        if isinstance(classifier, bool):
            return classifier
        return bool(classifier.predict_proba(X)[0, 1] >= self.double_threshold)

    def forecast(self, snapshots: Sequence[Snapshot], created_at: datetime, now: datetime,
                 author_followers: int | None = None) -> float:
        """Final shares of a post from its engagement snapshots (what the pipeline calls)."""
        return self.predict(from_snapshots(snapshots, created_at, now, author_followers))
