"""`eval cascades`: every forecaster scored on cascades of known final size, at several ages.

For each age and method: n, median APE (median of |forecast - final| / final), MALE (mean
|ln forecast - ln final|, sizes floored at 1 before the log), and precision and recall of "the
final size is at least twice what is seen now" (null where nothing was flagged, or nothing
doubled). Forecasts are clamped to [seen, MAX_SHARES] before scoring, so SEISMIC's infinite
forecast for a supercritical cascade counts as MAX_SHARES.

Calibrated parameters (Szabo-Huberman's growth, SEISMIC's scale, the project forecaster's model)
are the shipped ones (the project forecaster ships in its unfitted form, with a scale per age
fitted on Twitter15), or are fitted on the `fit`
cascades, or, with `folds`, on the other folds of the scored file itself, so that no cascade is
scored by a model fitted on it. Fitted, the project forecaster also learns the size distribution
of its training cascades: right when the scored cascades come from the same population.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from classifiers.virality.baselines import Naive, SzaboHuberman
from classifiers.virality.cascades import Cascade
from classifiers.virality.defaults import default_forecaster, default_szabo_huberman
from classifiers.virality.forecaster import ViralityForecaster
from classifiers.virality.observation import MAX_SHARES
from classifiers.virality.seismic import Seismic
from classifiers.virality.timegrid import log_size

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_ages(text: str) -> list[tuple[str, float]]:
    """"10m,30m,1h" -> [("10m", 600.0), ...]; a ValueError names a bad item."""
    ages = []
    for item in (part.strip() for part in text.split(",")):
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", item)
        if not match or float(match.group(1)) <= 0:
            raise ValueError(f"{item!r} is not an age such as 90s, 10m, 1h or 2d")
        ages.append((item, float(match.group(1)) * _UNITS[match.group(2)]))
    return ages


@dataclass(frozen=True, slots=True)
class Result:
    at: str
    method: str
    n: int
    median_ape: float
    male: float
    double_precision: float | None
    double_recall: float | None


def _fitted(cascades: Sequence[Cascade] | None, ages: Sequence[float]) -> dict:
    if cascades is None:
        return {"naive": Naive(), "szabo_huberman": default_szabo_huberman(), "seismic": Seismic(),
                "project": default_forecaster()}
    with_followers = all(Seismic.applies(c.observe(0.0)) for c in cascades)
    return {"naive": Naive(), "szabo_huberman": SzaboHuberman().fit(cascades, ages),
            "seismic": Seismic().fit(cascades, ages) if with_followers else Seismic(),
            "project": ViralityForecaster().fit(cascades, ages)}


def _forecast(method, observation) -> tuple[float, bool]:
    seen = observation.seen
    predicted = float(np.clip(method.predict(observation), seen, MAX_SHARES))
    # The peers flag by their forecast; the project forecaster has its own classifier.
    flags = method.will_double(observation) if hasattr(method, "will_double") else predicted >= 2 * seen
    return predicted, bool(flags)


def _score(at: str, method: str, rows: list[tuple[float, bool, float, float]]) -> Result:
    predicted, flagged, seen, final = (np.array(column) for column in zip(*rows))
    doubled = final >= 2 * seen
    hits = int(np.sum(flagged & doubled))
    return Result(
        at=at,
        method=method,
        n=len(rows),
        median_ape=round(float(np.median(np.abs(predicted - final) / np.maximum(final, 1))), 4),
        male=round(float(np.mean(np.abs(log_size(predicted) - log_size(final)))), 4),
        double_precision=round(hits / flagged.sum(), 4) if flagged.any() else None,
        double_recall=round(hits / doubled.sum(), 4) if doubled.any() else None,
    )


def evaluate(cascades: Sequence[Cascade], ages: Sequence[tuple[str, float]],
             fit: Sequence[Cascade] | None = None, folds: int | None = None, seed: int = 0) -> list[dict]:
    """One result per age and method; `fit` and `folds` are exclusive."""
    if fit is not None and folds is not None:
        raise ValueError("fit on other cascades or cross-validate, not both")
    if folds is not None and not 2 <= folds <= len(cascades):
        raise ValueError(f"folds must be between 2 and the number of cascades ({len(cascades)})")
    seconds = [a for _, a in ages]
    if folds is None:
        splits = [(np.arange(len(cascades)), fit)]
    else:
        order = np.random.default_rng(seed).permutation(len(cascades))
        splits = [(order[k::folds], [cascades[i] for i in np.sort(np.concatenate(
            [order[j::folds] for j in range(folds) if j != k]))]) for k in range(folds)]
    with_followers = all(Seismic.applies(c.observe(0.0)) for c in cascades)
    names = ["naive", "szabo_huberman"] + (["seismic"] if with_followers else []) + ["project"]
    rows: dict[tuple[str, str], list] = {(label, name): [] for label, _ in ages for name in names}
    for scored, training in splits:
        methods = _fitted(training, seconds)
        for label, age in ages:
            for i in scored:
                observation = cascades[i].observe(age)
                for name in names:
                    predicted, flagged = _forecast(methods[name], observation)
                    rows[(label, name)].append((predicted, flagged, observation.seen, cascades[i].final))
    return [asdict(_score(label, name, rows[(label, name)])) for label, _ in ages for name in names]
