"""Share cascades with known final size, read from JSON lines, for fitting and evaluation.

Two formats (see ../shared/data/README.md):

- events: `{"id", "final_retweets", "events": [[seconds_since_post, followers], ...]}`; the first
  event is the post itself at t = 0 with its author's followers, `final_retweets` excludes it.
- delays: `{"id", "delays_min": [...]}`; minutes of every share of a tree; the root is the first
  delay (0) and the final size is the number of delays (root included).

Sizes are counted as the file counts them (events: shares without the post; delays: nodes of the
tree with the root), for what is seen and for the final size alike.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classifiers.virality.observation import Observation, from_events


class CascadeFileError(ValueError):
    """A cascade file that cannot be read; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Cascade:
    id: str
    times: np.ndarray  # seconds since the post of every counted share, sorted
    final: int
    followers: np.ndarray | None = None  # of each sharer, aligned with `times`
    author_followers: float | None = None

    def observe(self, age: float) -> Observation:
        return from_events(self.times, age, self.followers, self.author_followers)


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a number, got {value!r}")
    return float(value)


def _from_events(row: dict) -> Cascade:
    events = row["events"]
    if not isinstance(events, list) or not events:
        raise ValueError("'events' must be a non-empty list of [seconds, followers]")
    pairs = []
    for event in events:
        if not isinstance(event, list) or len(event) != 2:
            raise ValueError(f"an event must be [seconds, followers], got {event!r}")
        pairs.append((_number(event[0], "an event's time"), _number(event[1], "an event's followers")))
    root, shares = pairs[0], sorted(pairs[1:], key=lambda p: p[0])
    final = int(_number(row["final_retweets"], "'final_retweets'"))
    if final < len(shares):
        raise ValueError(f"'final_retweets' {final} is below the {len(shares)} retweets listed")
    return Cascade(
        id=str(row.get("id", "")),
        times=np.array([t - root[0] for t, _ in shares], dtype=float).reshape(-1),
        final=final,
        followers=np.array([f for _, f in shares], dtype=float).reshape(-1),
        author_followers=root[1],
    )


def _from_delays(row: dict) -> Cascade:
    delays = row["delays_min"]
    if not isinstance(delays, list) or not delays:
        raise ValueError("'delays_min' must be a non-empty list of minutes")
    minutes = sorted(_number(d, "a delay") for d in delays)
    return Cascade(id=str(row.get("id", "")), times=np.array(minutes) * 60.0, final=len(minutes))


def load_cascades(path: Path) -> list[Cascade]:
    """Every cascade of a JSON lines file; blank lines are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CascadeFileError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise CascadeFileError(f"cannot read {path}: {exc.strerror}") from None
    cascades = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("a line must be a JSON object")
            if "events" in row:
                cascades.append(_from_events(row))
            elif "delays_min" in row:
                cascades.append(_from_delays(row))
            else:
                raise ValueError("expected an 'events' or a 'delays_min' field")
        except json.JSONDecodeError as exc:
            raise CascadeFileError(f"{path} line {number}: not JSON ({exc.msg})") from None
        except KeyError as exc:
            raise CascadeFileError(f"{path} line {number}: missing field {exc}") from None
        except ValueError as exc:
            raise CascadeFileError(f"{path} line {number}: {exc}") from None
    if not cascades:
        raise CascadeFileError(f"{path} has no cascades")
    return cascades
