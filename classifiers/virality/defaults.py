"""The shipped parameters (defaults.json), and the command that rebuilds them.

    python -m classifiers.virality.defaults [--data ../shared/data]

fits Szabo-Huberman's growth per age on `cascades/seismic_tideh_train.jsonl` and writes
defaults.json beside this file. The project forecaster ships unfitted: a model fitted on the
SEISMIC cascades (all of which reached 2,000 retweets) would forecast thousands of shares for
every post; see `forecaster`.
"""

from __future__ import annotations

import argparse
import json
from functools import lru_cache
from pathlib import Path

from classifiers.virality.baselines import SzaboHuberman
from classifiers.virality.cascades import load_cascades
from classifiers.virality.forecaster import TRAIN_AGES
from classifiers.virality.timegrid import TimeGrid

PATH = Path(__file__).with_name("defaults.json")
TRAINING_FILE = "cascades/seismic_tideh_train.jsonl"


@lru_cache(maxsize=1)
def _load() -> dict:
    return json.loads(PATH.read_text(encoding="utf-8"))


def default_szabo_huberman() -> SzaboHuberman:
    return SzaboHuberman(TimeGrid.from_dict(_load()["szabo_huberman"]))


def build(data: Path) -> dict:
    cascades = load_cascades(data / TRAINING_FILE)
    growth = SzaboHuberman().fit(cascades, TRAIN_AGES).r_by_age.to_dict()
    return {
        "trained_on": TRAINING_FILE,
        "command": "python -m classifiers.virality.defaults --data ../shared/data",
        "szabo_huberman": {key: [round(v, 6) for v in values] for key, values in growth.items()},
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
