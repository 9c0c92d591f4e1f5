"""Recalibration of the risk score from agents' feedback on alerts, and the precision they saw.

Platt scaling: a logistic regression on the logit of the raw risk, fitted on the last N
labelled alerts (useful = 1, false positive = 0). Only alerted posts get labels, so the fit
answers what the team cares about: of the posts we would alert on, how many are worth it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

from monitor.models import LabelledAlert

EPS = 1e-4  # keeps logit finite for probabilities of exactly 0 or 1


@dataclass(frozen=True, slots=True)
class FeedbackSummary:
    labelled: int  # labelled alerts looked at (the last N)
    useful: int
    calibrated: bool  # whether the risk score is recalibrated from them

    @property
    def precision(self) -> float | None:
        return self.useful / self.labelled if self.labelled else None

    def line(self) -> str:
        if not self.labelled:
            return "alert precision: no labelled alerts yet"
        state = "risk recalibrated from them" if self.calibrated else "too few to recalibrate the risk"
        return f"alert precision: {self.precision:.2f} on the last {self.labelled} labelled alerts ({state})"


def _logit(p: float) -> float:
    p = min(1 - EPS, max(EPS, p))
    return math.log(p / (1 - p))


@dataclass(frozen=True, slots=True)
class Recalibrator:
    """p -> sigmoid(slope * logit(p) + intercept); the identity until fitted."""

    slope: float = 1.0
    intercept: float = 0.0
    fitted: bool = False

    @classmethod
    def fit(cls, alerts: Sequence[LabelledAlert], min_labels: int) -> "Recalibrator":
        """Identity with fewer than `min_labels` post alerts or only one kind of label: nothing to learn.
        Storm alerts count for precision but not here: they have no risk score to recalibrate."""
        posts = [a for a in alerts if a.raw_probability is not None]
        if len(posts) < min_labels or len({a.useful for a in posts}) < 2:
            return cls()
        x = np.array([[_logit(a.raw_probability)] for a in posts])
        y = np.array([int(a.useful) for a in posts])
        model = LogisticRegression(C=1.0).fit(x, y)
        slope = float(model.coef_[0][0])
        if slope <= 0:
            return cls()  # labels that rank risk backwards are noise at this size: keep the raw score
        return cls(slope, float(model.intercept_[0]), True)

    def __call__(self, probability: float) -> float:
        if not self.fitted:
            return probability
        return 1 / (1 + math.exp(-(self.slope * _logit(probability) + self.intercept)))


def summarize(alerts: Sequence[LabelledAlert], min_labels: int) -> tuple[Recalibrator, FeedbackSummary]:
    recalibrator = Recalibrator.fit(alerts, min_labels)
    return recalibrator, FeedbackSummary(len(alerts), sum(a.useful for a in alerts), recalibrator.fitted)
