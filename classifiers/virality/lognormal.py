"""The fitted forecaster's parametric part: a log-normal final size, cut below at a floor.

Cascade data sets are rarely random samples of posts: the SEISMIC set holds only posts that
reached 2,000 retweets, Twitter15 only trees of at least about 50 shares. In such a set a post seen at 100
shares after an hour ends above the floor whatever its growth so far, and ordinary regression of
the growth learns that only in the mean. Here ln final is normal around ln seen + w . x, with a
spread that depends on the age, and truncated below at ln max(floor, seen), where the floor is the
smallest final size of the training cascades: a truncated regression, fitted by maximum likelihood.
A forecast is a quantile of that truncated distribution.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_ndtr, ndtr, ndtri

from classifiers.virality.timegrid import log_size

# The spread is modelled around an age of one hour: ln sigma = a + b ln(age / 1 h).
_HOUR = np.log(3600.0)


class TruncatedLogNormal:
    """scikit-learn style: `ridge` (on the standardised weights) in the constructor, then `fit`."""

    def __init__(self, ridge: float = 0.01):
        self.ridge = ridge
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.coef_: np.ndarray | None = None  # intercept, then one weight per feature
        self.spread_: np.ndarray | None = None  # ln sigma at 1 h, slope on ln(age / 1 h)
        self.log_floor_: float = -np.inf

    def _design(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float).reshape(len(X), -1)
        return np.column_stack([np.ones(len(X)), (X - self.mean_) / self.scale_])

    def _spread(self, age: np.ndarray) -> np.ndarray:
        return np.clip(self.spread_[0] + self.spread_[1] * (np.log(np.maximum(age, 1.0)) - _HOUR), -10.0, 10.0)

    def fit(self, X: np.ndarray, seen: np.ndarray, age: np.ndarray, final: np.ndarray) -> TruncatedLogNormal:
        X = np.asarray(X, dtype=float).reshape(len(final), -1)
        self.mean_ = X.mean(axis=0)
        # A constant feature (one age only, say) carries no information: weight it by nothing.
        self.scale_ = np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
        design = self._design(X)
        y = log_size(np.asarray(final, dtype=float))
        offset = log_size(np.asarray(seen, dtype=float))
        self.log_floor_ = float(y.min())
        low = np.maximum(self.log_floor_, offset)
        hours = np.log(np.maximum(age, 1.0)) - _HOUR
        k = design.shape[1]

        def loss(params):
            coef = params[:k]
            # Bounded so that the optimiser's trial steps cannot overflow.
            log_sigma = np.clip(params[k] + params[k + 1] * hours, -10.0, 10.0)
            sigma = np.exp(log_sigma)
            center = offset + design @ coef
            z = (y - center) / sigma
            # Normal density of y, renormalised by the mass above the floor.
            nll = 0.5 * z * z + log_sigma + log_ndtr((center - low) / sigma)
            return float(nll.mean() + self.ridge * np.sum(coef[1:] ** 2))

        start = np.zeros(k + 2)
        start[0], start[k] = float(np.mean(y - offset)), np.log(0.5)
        params = minimize(loss, start, method="L-BFGS-B").x
        self.coef_, self.spread_ = params[:k], params[k:]
        return self

    def quantile(self, X: np.ndarray, seen: np.ndarray, age: np.ndarray, q: float) -> np.ndarray:
        """The q-quantile of ln final, never below ln max(floor, seen)."""
        center = log_size(np.asarray(seen, dtype=float)) + self._design(X) @ self.coef_
        sigma = np.exp(self._spread(np.asarray(age, dtype=float)))
        low = np.maximum(self.log_floor_, log_size(np.asarray(seen, dtype=float)))
        # Counted from the top, so that a floor far above the center does not round to 1.
        above = ndtr((center - low) / sigma) * (1 - q)
        with np.errstate(divide="ignore"):
            value = center - sigma * ndtri(above)
        return np.where(above > 0, np.maximum(value, low), low)
