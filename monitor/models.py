"""Typed records passed between pipeline stages.

Each stage takes and returns these, never ORM rows, so a stage can be tested alone
and the store can change without touching the stages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from classifiers.textnorm import well_formed


# Tags that name no language: undetermined, no linguistic content, several, not coded.
_NO_LANGUAGE = frozenset({"und", "zxx", "mul", "mis"})
# Withdrawn ISO 639-1 codes that X still sends.
_RENAMED = {"in": "id", "iw": "he", "ji": "yi"}


def language_code(tag: object) -> str | None:
    """A source's language tag as classifiers and routing read it: the lower-case language of a
    BCP 47 tag ("pt-BR" -> "pt", as Bluesky sends it; "NL" -> "nl"), or None for a tag that names
    no language: "und", and X's codes for a post of only media, hashtags, mentions or too short a
    text ("qme", "qht", "qam", "qst": ISO 639's private-use range qaa-qtz). Taken as they came,
    "pt-BR" got no Portuguese head and no Portuguese speaker, and "qme" no language identification."""
    if not isinstance(tag, str):
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    if not (2 <= len(primary) <= 3 and primary.isascii() and primary.isalpha()):
        return None
    if primary in _NO_LANGUAGE or "qaa" <= primary <= "qtz":
        return None
    return _RENAMED.get(primary, primary)


def _well_formed_fields(record) -> None:
    """Every str field of a frozen record made `well_formed`: these come from API bodies, and one
    malformed string failed its whole batch's insert (and so the collector's every retry)."""
    for name in record.__slots__:
        value = getattr(record, name)
        if isinstance(value, str):
            object.__setattr__(record, name, well_formed(value))


class Severity(str, enum.Enum):
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


class EscalationState(str, enum.Enum):
    open = "open"
    claimed = "claimed"
    waiting = "waiting"  # claimed, and waiting on another department (billing, legal, field service)
    resolved = "resolved"
    dismissed = "dismissed"


IN_HAND = (EscalationState.open, EscalationState.claimed, EscalationState.waiting)


@dataclass(frozen=True, slots=True)
class Author:
    id: str
    handle: str
    followers: int = 0
    verified: bool = False

    def __post_init__(self) -> None:
        _well_formed_fields(self)


@dataclass(frozen=True, slots=True)
class Metrics:
    """Public engagement counts of one post at one moment."""

    reposts: int = 0
    replies: int = 0
    likes: int = 0
    quotes: int = 0
    views: int = 0

    @property
    def shares(self) -> int:
        # What spreads a post: reposts and quotes both put it in front of new audiences.
        return self.reposts + self.quotes


@dataclass(frozen=True, slots=True)
class MentionIn:
    """A post as a collector normalised it, before it is stored."""

    source: str
    external_id: str
    brand: str
    author: Author
    text: str
    created_at: datetime
    lang: str | None = None
    url: str | None = None
    conversation_id: str | None = None
    in_reply_to: str | None = None
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        _well_formed_fields(self)
        object.__setattr__(self, "lang", language_code(self.lang))


@dataclass(frozen=True, slots=True)
class MetricsUpdate:
    """Engagement of an already collected post, observed at `observed_at`."""

    source: str
    external_id: str
    observed_at: datetime
    metrics: Metrics


@dataclass(frozen=True, slots=True)
class StoredMention:
    """A mention as the store holds it (id is the store's primary key)."""

    id: int
    source: str
    external_id: str
    brand: str
    author: Author
    text: str
    created_at: datetime
    lang: str | None
    url: str | None
    conversation_id: str | None
    in_reply_to: str | None
    is_brand_reply: bool


@dataclass(frozen=True, slots=True)
class TriggerMatch:
    """An escalation trigger found in a post, with the span that matched."""

    category: str  # press, legal, regulator, safety, churn, shaming
    term: str
    start: int
    end: int
    matched_text: str


@dataclass(frozen=True, slots=True)
class Classification:
    mention_id: int
    model: str
    model_version: str
    lang: str | None
    sentiment: str  # negative / neutral / positive
    sentiment_scores: dict[str, float]
    complaint: float  # probability that the post is a complaint
    triggers: tuple[TriggerMatch, ...] = ()

    @property
    def negative(self) -> float:
        return self.sentiment_scores.get("negative", 0.0)


@dataclass(frozen=True, slots=True)
class Snapshot:
    observed_at: datetime
    metrics: Metrics


@dataclass(frozen=True, slots=True)
class RiskFeatures:
    """Everything the risk score looks at for one mention, gathered from the store."""

    mention: StoredMention
    classification: Classification
    snapshots: tuple[Snapshot, ...]
    unanswered_contacts: int  # posts by this author in the window with no brand reply since
    storm_name: str | None
    now: datetime
    brand_velocity: float | None = None  # this brand's usual shares per hour per post; None: no history


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    mention_id: int
    probability: float
    severity: Severity | None  # None: below every alert threshold
    reasons: tuple[str, ...]
    forecast_shares: float
    assessed_at: datetime
    raw_probability: float | None = None  # before recalibration from feedback; None: not recalibrated

    @property
    def reason_line(self) -> str:
        return " · ".join(self.reasons)


@dataclass(frozen=True, slots=True)
class LabelledAlert:
    """An alert an agent marked useful or a false positive."""

    raw_probability: float | None  # the post's risk before recalibration; None for a storm
    useful: bool


@dataclass(frozen=True, slots=True)
class Owner:
    """The suggested owner of an escalation and why."""

    member: str | None  # team member name; None when no team is configured
    slack_user: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """What an agent sees: rendered by a notifier (console, Slack)."""

    escalation_id: int
    kind: str  # "new" or "update"
    brand: str
    severity: Severity
    title: str
    source: str
    author: Author | None
    text: str
    url: str | None
    reasons: tuple[str, ...]
    owner: Owner
    engagement: Metrics | None = None
    forecast_shares: float | None = None
    change: str | None = None  # for updates: what changed since the last message
    members: int = 1  # posts the escalation covers (storms, repeat contact)
