"""Builds a storm-detection scenario from real data: support traffic as background, real
complaints injected as one storm (labelled `storm`), in the README's scenario format.

The first 5000 rows of the customer-support dump cluster in a few hours of one evening, and
the dump keeps whole threads together, so neighbouring rows share a topic. The background keeps
its real texts but is shuffled and spread over `days` with random (seeded) gaps: a steady
stream whose only surge is the injected one.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from monitor.tsv import TsvError, read_tsv

MIN_STORM_POSTS = 10  # the evaluation measures the delay from the 10th post


class StormScenarioError(ValueError):
    """Input data the builder cannot use; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class StormScenarioSpec:
    days: float = 2.0
    storm_term: str = "working"
    storm_posts: int = 30
    storm_minutes: float = 30.0
    storm_at_hours: float = 30.0  # after the start: the baseline has a day of history by then
    seed: int = 0
    start: datetime = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)


def _rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        return read_tsv(path, required)
    except TsvError as exc:
        raise StormScenarioError(str(exc)) from None


def _post(post_id: str, author_id: str, text: str, at: datetime, storm: str | None) -> dict:
    event = {"type": "post", "at": at.isoformat().replace("+00:00", "Z"), "source": "x", "id": post_id,
             "author": {"id": author_id, "handle": f"c{author_id}", "followers": 0, "verified": False},
             "text": text, "lang": "en", "conversation_id": post_id,
             "metrics": {"reposts": 0, "replies": 0, "likes": 0, "quotes": 0, "views": 0}}
    if storm is not None:
        event["storm"] = storm
    return event


def build_storm_scenario(support: Path, complaints: Path, spec: StormScenarioSpec) -> list[dict]:
    """Scenario events, ordered by time."""
    if spec.storm_posts < MIN_STORM_POSTS:
        raise StormScenarioError(f"storm posts: at least {MIN_STORM_POSTS} are needed, got {spec.storm_posts}")
    if not 0 <= spec.storm_at_hours < spec.days * 24:
        raise StormScenarioError(f"storm start: {spec.storm_at_hours} h is outside the {spec.days} days of traffic")
    rng = random.Random(spec.seed)
    inbound = [r for r in _rows(support, ("tweet_id", "author_id", "inbound", "text")) if r["inbound"] == "True"]
    if not inbound:
        raise StormScenarioError(f"{support}: no inbound (customer) tweets")
    rng.shuffle(inbound)
    gaps = [rng.expovariate(1.0) for _ in inbound]
    scale = spec.days * 86400 / sum(gaps)
    events, elapsed = [], 0.0
    for row, gap in zip(inbound, gaps):
        elapsed += gap * scale
        events.append(_post(f"bg-{row['tweet_id']}", row["author_id"], row["text"],
                            spec.start + timedelta(seconds=round(elapsed)), None))

    word = re.compile(rf"\b{re.escape(spec.storm_term)}\b", re.IGNORECASE)
    matching = [r for r in _rows(complaints, ("id", "text", "is_complaint"))
                if r["is_complaint"] == "1" and word.search(r["text"] or "")]
    if len(matching) < spec.storm_posts:
        raise StormScenarioError(f"{complaints}: only {len(matching)} complaints use {spec.storm_term!r}, "
                                 f"{spec.storm_posts} asked for")
    chosen = rng.sample(matching, spec.storm_posts)
    storm_start = spec.start + timedelta(hours=spec.storm_at_hours)
    offsets = sorted(rng.uniform(0, spec.storm_minutes * 60) for _ in chosen)
    events += [_post(f"storm-{row['id']}", f"s{row['id']}", row["text"], storm_start + timedelta(seconds=round(offset)),
                     spec.storm_term) for row, offset in zip(chosen, offsets)]
    return sorted(events, key=lambda e: e["at"])  # whole seconds: ISO strings sort by time


def jsonl(events: list[dict]) -> Iterator[str]:
    return (json.dumps(e, ensure_ascii=False) + "\n" for e in events)
