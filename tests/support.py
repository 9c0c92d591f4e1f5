"""Plain helpers for the tests: constants, config documents, mentions and scenario events."""

from __future__ import annotations

import copy
import gzip
import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from monitor.config import Config, parse_config
from monitor.models import Author, MentionIn, Metrics

BRAND = "Acme"
OWN_HANDLE = "acme_care"
# A Monday morning, well clear of DST changes.
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)

# Texts the bundled lexicon classifier reads clearly.
LEGAL_THREAT = ("@acme_care third outage this week, absolutely terrible service, worst provider ever. "
                "My lawyer will hear about this")
PRESS_AND_LEGAL_THREAT = ("@acme_care internet down again, worst service ever, I am taking legal action "
                          "and contacting the press")
# Ordinary posts: no trigger, nothing to alert on. The first one is a question, which a lexicon model
# may read as a mild complaint; CALM is chatter that reads as neither negative nor a complaint.
NEUTRAL_CHATTER = [
    "Anyone know if Acme supports port forwarding on the standard router?",
    "Lovely weather today, going for a walk after work",
    "Voor wie het zich afvraagt: Acme levert de router gewoon met wifi 6",
    "Just moved house, the Acme technician is coming on Thursday",
]
CALM = "Lovely weather today, going for a walk after work"


# --- configuration ----------------------------------------------------------------------------

def _merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def config_dict(**overrides: Any) -> dict:
    """A raw configuration document with one brand, Acme (own X account acme_care)."""
    base = {
        "timezone": "Europe/Amsterdam",
        "brands": [{
            "name": BRAND,
            "languages": ["nl", "en"],
            "own_accounts": {"x": [OWN_HANDLE]},
            "search_terms": {"x": ["acme", "@acme_care", "#acme"]},
            "slack_channel": "#webcare-acme",
        }],
    }
    return _merge(base, overrides)


def build_config(**overrides: Any) -> Config:
    return parse_config(config_dict(**overrides), environ={})


def build_mention(external_id: str, text: str = "Acme is fine I guess", *, at: datetime = T0, source: str = "x",
                  author_id: str | None = None, handle: str | None = None, followers: int = 100,
                  verified: bool = False, lang: str | None = None, conversation_id: str | None = None,
                  in_reply_to: str | None = None, metrics: Metrics | None = None) -> MentionIn:
    author_id = author_id or f"u-{external_id}"
    return MentionIn(
        source=source, external_id=external_id, brand=BRAND,
        author=Author(author_id, handle or f"user_{author_id}", followers, verified),
        text=text, created_at=at, lang=lang, url=f"https://x.example/{external_id}",
        conversation_id=conversation_id or external_id, in_reply_to=in_reply_to,
        metrics=metrics or Metrics(),
    )


# --- scenarios --------------------------------------------------------------------------------

def scenario_post(post_id: str, text: str, at: datetime, *, source: str = "x", author_id: str | None = None,
                  handle: str | None = None, followers: int = 100, lang: str | None = None,
                  expect: str | None = None, in_reply_to: str | None = None,
                  metrics: dict | None = None) -> dict:
    author_id = author_id or f"a{post_id}"
    event: dict[str, Any] = {
        "type": "post", "at": at.isoformat().replace("+00:00", "Z"), "source": source, "id": post_id,
        "author": {"id": author_id, "handle": handle or f"user{author_id}", "followers": followers,
                   "verified": False},
        "text": text, "lang": lang, "url": f"https://x.example/{post_id}", "conversation_id": post_id,
        "in_reply_to": in_reply_to, "metrics": metrics or {"reposts": 0, "replies": 0, "likes": 0, "quotes": 0,
                                                           "views": 10},
    }
    if expect is not None:
        event["expect"] = expect
    return event


def write_scenario(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")
    return path


def small_threat_scenario(start: datetime) -> list[dict]:
    """Two legal threats by different customers among neutral chatter, a minute apart."""
    events = [scenario_post("p1", NEUTRAL_CHATTER[0], start, expect="no_alert"),
              scenario_post("p2", LEGAL_THREAT, start + timedelta(minutes=1), expect="alert"),
              scenario_post("p3", NEUTRAL_CHATTER[1], start + timedelta(minutes=2), expect="no_alert"),
              scenario_post("p4", PRESS_AND_LEGAL_THREAT, start + timedelta(minutes=3), expect="alert"),
              scenario_post("p5", NEUTRAL_CHATTER[2], start + timedelta(minutes=4), lang="nl", expect="no_alert")]
    return events


# --- model files ------------------------------------------------------------------------------

def rewrite_model_file(path: Path, change: Callable[[dict], None]) -> None:
    """Edits a head's gzipped JSON in place, to spoil it."""
    data = json.loads(gzip.open(path).read())
    change(data)
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
