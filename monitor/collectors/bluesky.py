"""Bluesky through atproto: `searchPosts` (latest first) per term and for the brand's own
accounts, and `getPosts` for metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone

from atproto import Client
from atproto_client.exceptions import (
    BadRequestError,
    InvokeTimeoutError,
    ModelError,
    NetworkError,
    RateLimitExceededError,
    RequestErrorBase,
    UnauthorizedError,
)
from atproto_client.request import Request
from atproto_core.exceptions import AtProtocolError

from monitor.clock import Clock
from monitor.collectors.base import CollectResult, SourceFault
from monitor.collectors.text import fit_id
from monitor.models import Author, MentionIn, Metrics, MetricsUpdate

log = logging.getLogger(__name__)

PAGE = 100  # searchPosts' largest page
LOOKUP_BATCH = 25  # getPosts' most uris
FIRST_LOOKBACK = timedelta(days=1)  # how far back a stream's first run reads
DEFAULT_RATE_WINDOW = timedelta(minutes=5)  # a 429 that names no reset time


@dataclass(frozen=True, slots=True)
class StreamState:
    """Where one search stands. `since`: every post indexed before it, and `seen` at it, is
    stored. A search spanning several runs keeps `since` and pages on with `cursor`; its newest
    post (`newest`, `newest_seen`) becomes `since` when its last page is stored."""

    since: str | None = None
    seen: tuple[str, ...] = ()
    cursor: str | None = None
    newest: str | None = None
    newest_seen: tuple[str, ...] = ()


class BlueskyCollector:
    source = "bluesky"
    sources = frozenset({"bluesky"})

    def __init__(self, brand: str, terms: Sequence[str], own_accounts: Sequence[str], clock: Clock, *,
                 base_url: str, login: tuple[str, str] | None = None, timeout: float = 30.0,
                 pages_per_run: int = 5):
        self.brand = brand
        # A term is a search; an own account is searched with from:, its replies time the response.
        self.queries = [*terms, *(f"from:{a.lstrip('@')}" for a in own_accounts)]
        self.clock = clock
        self.login = login  # (handle, app password); the public AppView needs none
        self.pages_per_run = pages_per_run
        self.client = Client(base_url, request=Request(timeout=timeout))
        self._logged_in = False

    def collect(self, cursor: str | None) -> CollectResult:
        states = {q: StreamState(**{k: tuple(v) if isinstance(v, list) else v for k, v in s.items()})
                  for q, s in (json.loads(cursor) if cursor else {}).items()}
        mentions: list[MentionIn] = []
        more = False
        try:
            self._log_in()
            for query in self.queries:
                found, states[query] = self._search(query, states.get(query, StreamState()))
                mentions += found
                more = more or states[query].cursor is not None
        except (AtProtocolError, ValueError) as exc:
            raise _fault(exc, "searchPosts", self.clock) from None
        return CollectResult(tuple(mentions), json.dumps({q: asdict(s) for q, s in states.items()}, sort_keys=True),
                             more=more)

    def _log_in(self) -> None:
        if self.login and not self._logged_in:
            # No profile lookup: it is one more call the collector has no use for.
            self.client.login(*self.login, fetch_bsky_profile=False)
            self._logged_in = True

    def _search(self, query: str, state: StreamState) -> tuple[list[MentionIn], StreamState]:
        since = state.since or _iso(self.clock.now() - FIRST_LOOKBACK)
        seen_at_since = set(state.seen)
        cursor, newest, newest_seen = state.cursor, state.newest, state.newest_seen
        mentions = []
        for _ in range(self.pages_per_run):
            page = self.client.app.bsky.feed.search_posts(
                params={"q": query, "sort": "latest", "since": since, "limit": PAGE, "cursor": cursor})
            for post in page.posts:
                if post.indexed_at == state.since and post.uri in seen_at_since:
                    continue  # stored by an earlier run: `since` is inclusive
                if newest is None or _after(post.indexed_at, newest):
                    newest, newest_seen = post.indexed_at, (post.uri,)
                elif post.indexed_at == newest:
                    newest_seen = (*newest_seen, post.uri)
                mentions.append(_mention(post, self.brand))
            cursor = page.cursor if page.posts else None
            if cursor is None:
                break
        if cursor is not None:
            return mentions, replace(state, cursor=cursor, newest=newest, newest_seen=newest_seen)
        if newest is None:
            return mentions, StreamState(since, state.seen)
        return mentions, StreamState(newest, newest_seen)

    def refresh_metrics(self, external_ids: Sequence[str]) -> list[MetricsUpdate]:
        uris = [u for u in dict.fromkeys(external_ids) if u.startswith("at://")]
        updates = []
        try:
            self._log_in()
            for i in range(0, len(uris), LOOKUP_BATCH):
                # Deleted posts are simply not in the answer.
                response = self.client.app.bsky.feed.get_posts(params={"uris": uris[i:i + LOOKUP_BATCH]})
                now = self.clock.now()
                updates += [MetricsUpdate("bluesky", fit_id(p.uri), now, _metrics(p)) for p in response.posts]
        except (AtProtocolError, ValueError) as exc:
            raise _fault(exc, "getPosts", self.clock) from None
        return updates


def _mention(post, brand: str) -> MentionIn:
    record = post.record
    reply = getattr(record, "reply", None)
    handle = post.author.handle
    langs = getattr(record, "langs", None) or []
    created = _parse(getattr(record, "created_at", None)) or _parse(post.indexed_at)
    return MentionIn(
        source="bluesky", external_id=fit_id(post.uri), brand=brand,
        author=Author(post.author.did, handle),  # post views carry no follower counts
        text=str(getattr(record, "text", "") or ""), created_at=created, lang=langs[0] if langs else None,
        url=f"https://bsky.app/profile/{handle}/post/{post.uri.rsplit('/', 1)[-1]}",
        conversation_id=fit_id(reply.root.uri) if reply else fit_id(post.uri),
        in_reply_to=fit_id(reply.parent.uri) if reply else None, metrics=_metrics(post),
    )


def _metrics(post) -> Metrics:
    return Metrics(reposts=post.repost_count or 0, replies=post.reply_count or 0, likes=post.like_count or 0,
                   quotes=post.quote_count or 0)


def _parse(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value).astimezone(timezone.utc) if value else None
    except ValueError:
        return None


def _after(a: str, b: str) -> bool:
    pa, pb = _parse(a), _parse(b)
    return pa is not None and pb is not None and pa > pb


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _model_problem(exc: ModelError) -> str:
    """The field and the complaint from pydantic's multi-line report, without the post's content."""
    lines = str(exc).splitlines()
    if len(lines) >= 3:
        return f"{lines[1].strip()}: {lines[2].strip().split(' [type=')[0]}"
    return " ".join(str(exc).split())[:160]


def _fault(exc: Exception, endpoint: str, clock: Clock) -> SourceFault:
    """One line naming what went wrong; never the app password or the session tokens."""
    status = exc.response.status_code if isinstance(exc, RequestErrorBase) and exc.response else None
    if isinstance(exc, RateLimitExceededError):
        now = clock.now()
        until = exc.reset_at if exc.reset_at and exc.reset_at > now else now + DEFAULT_RATE_WINDOW
        return SourceFault("rate_limited", f"Bluesky rate limit reached on {endpoint} (429); resets at "
                                           f"{until.isoformat(timespec='seconds')}", until)
    if isinstance(exc, UnauthorizedError):
        return SourceFault("auth", f"Bluesky {endpoint} refused the login ({status}); check the handle and "
                                   "the app password in the environment")
    if isinstance(exc, InvokeTimeoutError):
        return SourceFault("timeout", f"Bluesky {endpoint} timed out")
    if status is not None and status >= 500:
        return SourceFault("server_error", f"Bluesky {endpoint} failed with {status} (server error)")
    if isinstance(exc, NetworkError):
        cause = exc.__cause__
        return SourceFault("connection", f"Bluesky {endpoint} connection failed ({type(cause).__name__})")
    if isinstance(exc, BadRequestError) or status is not None:
        return SourceFault("bad_request", f"Bluesky {endpoint} answered {status}")
    if isinstance(exc, ModelError):
        return SourceFault("bad_response", f"Bluesky {endpoint} answered with posts the atproto models reject "
                                           f"({_model_problem(exc)})")
    return SourceFault("bad_response", f"Bluesky {endpoint} answered with a body that is not valid JSON "
                                       "(truncated or not JSON)")
