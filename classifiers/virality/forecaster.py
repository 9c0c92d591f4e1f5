"""The project's virality forecaster: final shares and "will at least double" from the shares so far.

Unfitted (as shipped, and in the pipeline) it is a self-exciting process with SEISMIC's memory
kernel over the share counts alone: the shares to come are `scale_by_age` times the reshares that
the shares so far are still expected to trigger (`equal_degree_components`). It needs no follower
data, runs on count snapshots, keeps a stalled post where it is and grows a fast one. The shipped
scale per age (`defaults`) is fitted on the Twitter15 trees.

Fitted on cascades of known final size, each observed at many ages (2 min to 24 h) so that one
model serves every age and 60 cascades give a thousand rows, it has two parts per feature group:

- a truncated log-normal regression (`lognormal`) on a few features: it knows the smallest final
  size of its training cascades, which in a selected data set says more than anything seen early;
- boosted trees on all the features that correct its median in the log. How many rounds they get
  is chosen by cross-validation over the training cascades themselves (none on the 60 SEISMIC
  cascades, where they do not beat the parametric model; a hundred or more on 1,300 Twitter15
  trees, whose growth the few parametric features do not capture).

The forecast is the `quantile` of the corrected distribution. It is below the median (which
minimises `male`) because the relative error punishes an over-forecast more than an
under-forecast by the same factor, and the truncated distribution is skewed to the right.

A classifier on the same features gives the probability that the final size is at least twice
what is seen. One set of models is fitted per feature group the training data has, and a post is
forecast by the richest group it has data for. The fitted model learns its training population's
sizes: fit it on posts like those it will forecast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

from classifiers.virality.features import GROUPS, features, group_of
from classifiers.virality.lognormal import TruncatedLogNormal
from classifiers.virality.observation import MAX_SHARES, Observation, from_snapshots
from classifiers.virality.seismic import equal_degree_components
from classifiers.virality.timegrid import TimeGrid, log_size
from monitor.models import Snapshot

TRAIN_AGES = tuple(float(a) for a in np.geomspace(120, 86_400, 16).round())


@dataclass(frozen=True, slots=True)
class _Rows:
    """Observations of training cascades in one feature group, column-wise."""

    core: np.ndarray
    everything: np.ndarray
    seen: np.ndarray
    age: np.ndarray
    final: np.ndarray
    cascade: np.ndarray  # which training cascade each row observes

    def take(self, mask: np.ndarray) -> _Rows:
        return _Rows(self.core[mask], self.everything[mask], self.seen[mask], self.age[mask],
                     self.final[mask], self.cascade[mask])


@dataclass(frozen=True, slots=True)
class _GroupModel:
    parametric: TruncatedLogNormal
    correction: GradientBoostingRegressor | None  # None: the trees did not help in cross-validation
    doubles: GradientBoostingClassifier | bool  # a bool: the training data had one answer only


class ViralityForecaster:
    """scikit-learn style: parameters in the constructor, `fit(cascades)`, then `predict`."""

    def __init__(self, scale_by_age: TimeGrid | None = None, quantile: float = 0.4, max_rounds: int = 300,
                 inner_folds: int = 3, n_estimators: int = 100, max_depth: int = 2,
                 learning_rate: float = 0.075, subsample: float = 0.8, min_samples_leaf: int = 20,
                 double_threshold: float = 0.5, train_ages: Sequence[float] = TRAIN_AGES,
                 random_state: int = 0):
        self.scale_by_age = scale_by_age or TimeGrid([3600.0], [1.0])
        self.quantile = quantile
        self.max_rounds = max_rounds
        self.inner_folds = inner_folds
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.min_samples_leaf = min_samples_leaf
        self.double_threshold = double_threshold
        self.train_ages = tuple(train_ages)
        self.random_state = random_state
        self.models_: dict[str, _GroupModel] = {}
        self.rounds_: dict[str, int] = {}  # correction rounds chosen per group

    def _boosting(self, kind, n_estimators: int):
        return kind(n_estimators=n_estimators, max_depth=self.max_depth, learning_rate=self.learning_rate,
                    subsample=self.subsample, min_samples_leaf=self.min_samples_leaf,
                    random_state=self.random_state)

    @staticmethod
    def _tree_input(parametric: TruncatedLogNormal, rows: _Rows) -> tuple[np.ndarray, np.ndarray]:
        """(the parametric median of ln final, the trees' features: all, and that median's growth)."""
        median = parametric.quantile(rows.core, rows.seen, rows.age, 0.5)
        return median, np.column_stack([rows.everything, median - log_size(rows.seen)])

    def _parts(self, rows: _Rows, rounds: int) -> tuple[TruncatedLogNormal, GradientBoostingRegressor | None]:
        parametric = TruncatedLogNormal().fit(rows.core, rows.seen, rows.age, rows.final)
        if rounds == 0:
            return parametric, None
        median, X = self._tree_input(parametric, rows)
        correction = self._boosting(GradientBoostingRegressor, rounds).fit(X, log_size(rows.final) - median)
        return parametric, correction

    def _rounds(self, rows: _Rows) -> int:
        """The fewest correction rounds whose mean absolute log error on held-out cascades is within
        one standard error of the least (Breiman's one-standard-error rule): on a few dozen cascades
        the trees' gain is within the noise and the parametric model alone is the safer bet."""
        cascades = np.random.default_rng(self.random_state).permutation(np.unique(rows.cascade))
        if self.max_rounds == 0 or len(cascades) < 2 * self.inner_folds:
            return 0
        per_cascade = []  # stages x held-out cascades: the mean error over each cascade's rows
        for k in range(self.inner_folds):
            held_out = np.isin(rows.cascade, cascades[k::self.inner_folds])
            train, test = rows.take(~held_out), rows.take(held_out)
            parametric, correction = self._parts(train, self.max_rounds)
            median, X = self._tree_input(parametric, test)
            stages = [np.zeros(len(median)), *correction.staged_predict(X)]
            _, cascade = np.unique(test.cascade, return_inverse=True)
            rows_of = np.bincount(cascade)
            per_cascade.append([np.bincount(cascade, np.abs(median + stage - log_size(test.final))) / rows_of
                                for stage in stages])
        errors = np.concatenate(per_cascade, axis=1)
        mean = errors.mean(axis=1)
        best = int(np.argmin(mean))
        tolerance = errors[best].std() / np.sqrt(errors.shape[1])
        return int(np.argmax(mean <= mean[best] + tolerance))

    def fit(self, cascades: Sequence, ages: Sequence[float] = ()) -> ViralityForecaster:
        """Fit on cascades observed at `train_ages` and at `ages` (those that will be asked)."""
        ages = sorted(set(self.train_ages) | {float(a) for a in ages})
        # A post with no share yet gives nothing to extrapolate from (`predict` keeps it at 0).
        observed = [(i, o, c.final) for i, c in enumerate(cascades) for o in (c.observe(a) for a in ages)
                    if o.seen >= 1]
        if not observed:
            raise ValueError("no cascade has a share by the ages observed: nothing to fit")
        richest = min(GROUPS.index(group_of(o)) for _, o, _ in observed)
        seen = np.array([o.seen for _, o, _ in observed])
        final = np.maximum([f for _, _, f in observed], seen)
        doubled = final >= 2 * seen
        self.models_, self.rounds_ = {}, {}
        for group in GROUPS[:richest + 1]:
            rows_features = [features(o, group) for _, o, _ in observed]
            rows = _Rows(core=np.array([f.core for f in rows_features]),
                         everything=np.array([f.all for f in rows_features]), seen=seen,
                         age=np.array([o.age for _, o, _ in observed]), final=final,
                         cascade=np.array([i for i, _, _ in observed]))
            self.rounds_[group] = self._rounds(rows)
            parametric, correction = self._parts(rows, self.rounds_[group])
            # With one class only, that class is the answer whatever the features.
            doubles = (bool(doubled[0]) if doubled.all() or not doubled.any() else
                       self._boosting(GradientBoostingClassifier, self.n_estimators).fit(rows.everything, doubled))
            self.models_[group] = _GroupModel(parametric, correction, doubles)
        return self

    def _fitted(self, observation: Observation) -> tuple[_GroupModel, _Rows]:
        available = GROUPS.index(group_of(observation))
        group = next(g for g in reversed(GROUPS[:available + 1]) if g in self.models_)
        model = self.models_[group]
        row = features(observation, group)
        rows = _Rows(core=np.array([row.core]), everything=np.array([row.all]), seen=np.array([observation.seen]),
                     age=np.array([observation.age]), final=np.zeros(1), cascade=np.zeros(1))  # final: unknown
        return model, rows

    def predict(self, observation: Observation) -> float:
        """Forecast final shares: never below what is seen, never above `MAX_SHARES`."""
        seen = observation.seen
        if observation.removed or seen < 1:
            return float(seen)
        if self.models_:
            model, rows = self._fitted(observation)
            log_final = model.parametric.quantile(rows.core, rows.seen, rows.age, self.quantile)[0]
            if model.correction is not None:
                log_final += float(model.correction.predict(self._tree_input(model.parametric, rows)[1])[0])
            forecast = float(np.exp(min(log_final, np.log(MAX_SHARES))))
        else:
            forecast = seen + self.scale_by_age(observation.age) * equal_degree_components(observation)[0]
        return float(min(MAX_SHARES, max(seen, forecast)))

    def will_double(self, observation: Observation) -> bool:
        """Will the final size be at least twice what is seen? Fitted: the classifier's
        probability against `double_threshold`; unfitted: the forecast."""
        if observation.removed or observation.seen < 1:
            return False
        if not self.models_:
            return self.predict(observation) >= 2 * observation.seen
        model, rows = self._fitted(observation)
        if isinstance(model.doubles, bool):
            return model.doubles
        return bool(model.doubles.predict_proba(rows.everything)[0, 1] >= self.double_threshold)

    def forecast(self, snapshots: Sequence[Snapshot], created_at: datetime, now: datetime,
                 author_followers: int | None = None) -> float:
        """Final shares of a post from its engagement snapshots (what the pipeline calls)."""
        return self.predict(from_snapshots(snapshots, created_at, now, author_followers))
