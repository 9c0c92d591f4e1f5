"""The shipped parameters (defaults.json), and the command that rebuilds them.

    python -m classifiers.virality.defaults [--data ../shared/data]

fits Szabo-Huberman's growth per age on `cascades/seismic_tideh_train.jsonl`, and the scale per
age of the project forecaster's unfitted form (the self-exciting process over counts, what the
pipeline runs) on `cascades/twitter15_trees.jsonl`, and writes defaults.json beside this file.

The scale comes from Twitter15 because those trees are counts only, as X gives, and were kept
from about 50 shares: much nearer the posts the pipeline watches than the SEISMIC cascades, all
of which reached 2,000 retweets (fitted there the scale is 2 to 4 at 10 minutes to 2 hours,
against about 1 on Twitter15). The boosted, truncated model of the fitted forecaster is not
shipped: it learns its training set's sizes and would forecast at least 2,000 shares for every post.
"""

from __future__ import annotations

import argparse
import json
from functools import lru_cache
from pathlib import Path

from classifiers.virality.baselines import SzaboHuberman
from classifiers.virality.cascades import load_cascades
from classifiers.virality.forecaster import TRAIN_AGES, ViralityForecaster
from classifiers.virality.seismic import equal_degree_components
from classifiers.virality.timegrid import TimeGrid, fit_scale

PATH = Path(__file__).with_name("defaults.json")
TRAINING_FILE = "cascades/seismic_tideh_train.jsonl"
COUNTS_FILE = "cascades/twitter15_trees.jsonl"


@lru_cache(maxsize=1)
def _load() -> dict:
    return json.loads(PATH.read_text(encoding="utf-8"))


def default_szabo_huberman() -> SzaboHuberman:
    return SzaboHuberman(TimeGrid.from_dict(_load()["szabo_huberman"]))


def default_forecaster() -> ViralityForecaster:
    return ViralityForecaster(scale_by_age=TimeGrid.from_dict(_load()["project_scale"]))


def _scale_by_age(cascades) -> TimeGrid:
    """Per age, the scale with the least mean absolute log error (`fit_scale`)."""
    scales = []
    for age in TRAIN_AGES:
        observations = [c.observe(age) for c in cascades]
        scales.append(fit_scale([o.seen for o in observations],
                                [equal_degree_components(o)[0] for o in observations],
                                [c.final for c in cascades], default=1.0))
    return TimeGrid(TRAIN_AGES, scales)


def _rounded(grid: TimeGrid) -> dict:
    return {key: [round(v, 6) for v in values] for key, values in grid.to_dict().items()}


def build(data: Path) -> dict:
    growth = SzaboHuberman().fit(load_cascades(data / TRAINING_FILE), TRAIN_AGES).r_by_age
    return {
        "trained_on": {"szabo_huberman": TRAINING_FILE, "project_scale": COUNTS_FILE},
        "command": "python -m classifiers.virality.defaults --data ../shared/data",
        "szabo_huberman": _rounded(growth),
        "project_scale": _rounded(_scale_by_age(load_cascades(data / COUNTS_FILE))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"),
                        help="folder holding cascades/ (default: ../shared/data)")
    args = parser.parse_args()
    PATH.write_text(json.dumps(build(args.data), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {PATH}")


if __name__ == "__main__":
    main()
