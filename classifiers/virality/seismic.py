"""SEISMIC (Zhao, Erdogdu, He, Rajaraman, Leskovec, KDD 2015), as its authors' R package computes it.

A post's shares form a self-exciting point process: every share exposes the sharer's followers,
who reshare with probability p_t (the infectiousness) after a human reaction time drawn from the
memory kernel phi(s) = c for s <= s0 and c (s / s0)^-(1 + theta) after. p_t is estimated from the
shares in a triangular window before t divided by the kernel-weighted exposure; the final size is

    seen + alpha * p_t * sum_i n_i (1 - Phi(t - t_i)) / (1 - gamma * p_t * n_star)

(the shares to come from the exposure so far, amplified by the branching factor p_t * n_star of
later generations). A supercritical cascade (p_t * n_star >= 1 / gamma) has no finite forecast: the
package returns Inf. The package is alpha = gamma = 1; the paper calibrates alpha per observation
time on training cascades ("fitted scale"), which `fit` does.

Kernel constants are the package's defaults (theta 0.2314843, c 6.265725e-4, s0 300 s); the
paper's rounded figures are theta 0.242, c 6.49e-4. Both integrate to 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from classifiers.virality.observation import Observation
from classifiers.virality.timegrid import TimeGrid, fit_scale

THETA = 0.2314843
CUTOFF = 300.0
C = 0.0006265725


def memory_ccdf(s: np.ndarray, theta: float = THETA, cutoff: float = CUTOFF, c: float = C) -> np.ndarray:
    """P(reaction time > s): the share of a sharer's eventual reshares still to come s after."""
    s = np.maximum(np.asarray(s, dtype=float), 0.0)
    with np.errstate(divide="ignore"):
        tail = c * cutoff ** (1 + theta) / theta * np.power(np.maximum(s, cutoff), -theta)
    return np.where(s <= cutoff, 1 - c * s, tail)


def _linear(t1, t2, p, slope, c):
    """Integral from t1 to t2 of c * (slope * (u - p) + 1) du."""
    return c * ((t2 - t1) * (1 - slope * p) + slope * (t2 * t2 - t1 * t1) / 2)


def _power(t1, t2, p, share, slope, theta, cutoff, c):
    """Integral from t1 to t2 of c * ((u - share) / cutoff)^-(1 + theta) * (slope * (u - p) + 1) du."""
    a = 1 + slope * (share - p)

    def primitive(v):
        return slope * v ** (1 - theta) / (1 - theta) - a * v ** -theta / theta

    with np.errstate(divide="ignore", invalid="ignore"):
        return c * cutoff ** (1 + theta) * (primitive(t2 - share) - primitive(t1 - share))


def kernel_integral(p: float, shares: np.ndarray, slope: float, window: float,
                    theta: float = THETA, cutoff: float = CUTOFF, c: float = C) -> np.ndarray:
    """Each share's memory kernel integrated against the triangular weight ending at p.

    The five cases (share after p; within s0 of p; within the window; at its edge; before it)
    follow the package, including its limits of integration.
    """
    s = np.asarray(shares, dtype=float)
    out = np.zeros_like(s)
    near = (p > s) & (p <= s + cutoff)
    mid = (p > s + cutoff) & (p <= s + window)
    edge = (p > s + window) & (p <= s + window + cutoff)
    far = p > s + window + cutoff
    out[near] = _linear(s[near], p, p, slope, c)
    out[mid] = (_linear(s[mid], s[mid] + cutoff, p, slope, c)
                + _power(s[mid] + cutoff, p, p, s[mid], slope, theta, cutoff, c))
    out[edge] = (_linear(p - window, s[edge] + cutoff, p, slope, c)
                 + _power(s[edge] + cutoff, p, p, s[edge], slope, theta, cutoff, c))
    out[far] = _power(p - window, p, p, s[far], slope, theta, cutoff, c)
    return out


def infectiousness(times: np.ndarray, degrees: np.ndarray, p: float, max_window: float = 7200.0,
                   min_window: float = 300.0, min_count: int = 5, theta: float = THETA,
                   cutoff: float = CUTOFF, c: float = C, weights: np.ndarray | None = None) -> float:
    """p_t at time p from share times and followers, the post itself first (t = 0).

    The triangular window is p / 2 wide, kept between min_window and max_window; when it holds
    fewer than min_count shares it stretches back to the min_count-th share before p. `weights`
    (default 1) lets one entry stand for several shares at the same time.
    """
    order = np.argsort(times, kind="stable")
    times = np.asarray(times, dtype=float)[order]
    degrees = np.asarray(degrees, dtype=float)[order]
    weights = np.ones_like(times) if weights is None else np.asarray(weights, dtype=float)[order]
    before = times[times < p]
    if before.size == 0:
        return 0.0
    window = min(max(p / 2, min_window), max_window)
    slope = 1 / window
    if np.count_nonzero(before >= p - window) < min_count:
        first = before[max(before.size - min_count, 1) - 1]
        window = p - first
        slope = 1 / window
    exposure = float(np.sum(weights * degrees * kernel_integral(p, times, slope, window, theta, cutoff, c)))
    reshares, counts = times[1:], weights[1:]
    inside = (reshares >= p - window) & (reshares < p)
    weighted = float(np.sum(counts[inside] * (slope * (reshares[inside] - p) + 1)))
    if weighted == 0 or exposure <= 0:
        return 0.0
    return weighted / exposure


def equal_degree_components(observation: Observation) -> tuple[float, float]:
    """SEISMIC's (expected direct reshares to come, infectiousness) when nothing is known about
    followers: every node, the post included, is given the same followers, which then cancel out.

    This is a self-exciting process with SEISMIC's memory kernel over the share counts alone, so
    it also runs on count snapshots; its infectiousness is per node rather than per follower.
    """
    shares, weights = observation.share_times()
    times = np.concatenate(([0.0], shares))
    weights = np.concatenate(([1.0], weights))
    rate = infectiousness(times, np.ones_like(times), observation.age, weights=weights)
    return rate * float(np.sum(weights * memory_ccdf(observation.age - times))), rate


class Seismic:
    """SEISMIC forecaster; needs each sharer's followers (event sources only)."""

    def __init__(self, n_star: float = 100.0, gamma: float = 1.0, alpha: float = 1.0,
                 theta: float = THETA, cutoff: float = CUTOFF, c: float = C,
                 max_window: float = 7200.0, min_window: float = 300.0, min_count: int = 5):
        self.n_star = n_star
        self.gamma = gamma
        self.alpha = alpha
        self.theta = theta
        self.cutoff = cutoff
        self.c = c
        self.max_window = max_window
        self.min_window = min_window
        self.min_count = min_count
        self.alpha_by_age_: TimeGrid | None = None

    @staticmethod
    def applies(observation: Observation) -> bool:
        return observation.followers is not None and observation.author_followers is not None

    def components(self, observation: Observation) -> tuple[float, float, float]:
        """(seen, expected direct reshares to come p_t * sum n_i (1 - Phi), p_t)."""
        times = np.concatenate(([0.0], observation.times))
        degrees = np.concatenate(([observation.author_followers], observation.followers))
        age = observation.age
        p_t = infectiousness(times, degrees, age, self.max_window, self.min_window, self.min_count,
                             self.theta, self.cutoff, self.c)
        shown = times <= age
        direct = p_t * float(np.sum(degrees[shown] * memory_ccdf(age - times[shown], self.theta,
                                                                 self.cutoff, self.c)))
        return float(np.count_nonzero(shown) - 1), direct, p_t

    def _alpha(self, age: float) -> float:
        return self.alpha if self.alpha_by_age_ is None else self.alpha_by_age_(age)

    def predict(self, observation: Observation) -> float:
        seen, direct, p_t = self.components(observation)
        branching = self.gamma * p_t * self.n_star
        if branching >= 1:
            return float("inf")
        return seen + self._alpha(observation.age) * direct / (1 - branching)

    def fit(self, cascades: Sequence, ages: Sequence[float]) -> Seismic:
        """alpha per observation age: the scale that minimises the mean absolute log error."""
        alphas = []
        for age in ages:
            rows = [(self.components(c.observe(age)), c.final) for c in cascades]
            rows = [(seen, direct / (1 - self.gamma * p * self.n_star), final)
                    for (seen, direct, p), final in rows if self.gamma * p * self.n_star < 1]
            alphas.append(fit_scale([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                                    default=self.alpha))
        self.alpha_by_age_ = TimeGrid(ages, alphas)
        return self
