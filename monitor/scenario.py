"""The scenario format: JSON lines of posts and later engagement, ordered by time.

A documented contract (README, "Scenario format"): the demo, the replay source and the
evaluations all read it. `expect` and `storm` are labels for summaries only; the pipeline
never sees them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from monitor.models import Author, MentionIn, Metrics, MetricsUpdate


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ScenarioMetrics(_Event):
    reposts: int = Field(0, ge=0)
    replies: int = Field(0, ge=0)
    likes: int = Field(0, ge=0)
    quotes: int = Field(0, ge=0)
    views: int = Field(0, ge=0)

    def to_metrics(self) -> Metrics:
        return Metrics(self.reposts, self.replies, self.likes, self.quotes, self.views)


class ScenarioAuthor(_Event):
    id: str
    handle: str
    followers: int = Field(0, ge=0)
    verified: bool = False


class PostEvent(_Event):
    type: Literal["post"]
    at: AwareDatetime
    source: str
    id: str
    author: ScenarioAuthor
    text: str
    lang: str | None = None
    url: str | None = None
    conversation_id: str | None = None
    in_reply_to: str | None = None
    metrics: ScenarioMetrics = Field(default_factory=ScenarioMetrics)
    expect: Literal["alert", "no_alert"] | None = None
    storm: str | None = None

    def to_mention(self, brand: str) -> MentionIn:
        return MentionIn(
            source=self.source, external_id=self.id, brand=brand,
            author=Author(self.author.id, self.author.handle, self.author.followers, self.author.verified),
            text=self.text, created_at=self.at, lang=self.lang, url=self.url,
            conversation_id=self.conversation_id or self.id, in_reply_to=self.in_reply_to,
            metrics=self.metrics.to_metrics(),
        )


class MetricsEvent(_Event):
    type: Literal["metrics"]
    at: AwareDatetime
    source: str
    id: str
    metrics: ScenarioMetrics

    def to_update(self) -> MetricsUpdate:
        return MetricsUpdate(self.source, self.id, self.at, self.metrics.to_metrics())


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class Scenario:
    posts: tuple[PostEvent, ...]
    metrics: tuple[MetricsEvent, ...]

    @property
    def start(self) -> datetime:
        return min(e.at for e in self.posts)

    @property
    def end(self) -> datetime:
        return max([e.at for e in self.posts] + [e.at for e in self.metrics])

    @classmethod
    def load(cls, path: Path) -> "Scenario":
        posts: list[PostEvent] = []
        metrics: list[MetricsEvent] = []
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"{path}: cannot read the scenario ({exc})") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                kind = raw.get("type") if isinstance(raw, dict) else None
                if kind == "post":
                    posts.append(PostEvent.model_validate(raw))
                elif kind == "metrics":
                    metrics.append(MetricsEvent.model_validate(raw))
                else:
                    raise ScenarioError(f"{path}:{number}: `type` must be \"post\" or \"metrics\"")
            except json.JSONDecodeError as exc:
                raise ScenarioError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ScenarioError(f"{path}:{number}: {where}: {first['msg']}") from None
        if not posts:
            raise ScenarioError(f"{path}: the scenario has no posts")
        # Tolerate files that are not quite in order: replay needs them sorted by time.
        return cls(tuple(sorted(posts, key=lambda e: e.at)), tuple(sorted(metrics, key=lambda e: e.at)))
