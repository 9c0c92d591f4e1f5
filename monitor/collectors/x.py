"""X (API v2) through tweepy: recent search since the last stored post, and metrics by tweet lookup."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import requests
import tweepy

from monitor.clock import Clock
from monitor.collectors.base import CollectResult, Pause, SourceFault
from monitor.collectors.budget import ReadBudget
from monitor.collectors.http import describe_network_error, mount
from monitor.models import Author, MentionIn, Metrics, MetricsUpdate

log = logging.getLogger(__name__)

X_API = "https://api.twitter.com"
TWEET_FIELDS = ["author_id", "created_at", "public_metrics", "lang", "conversation_id", "referenced_tweets",
                "edit_history_tweet_ids"]
USER_FIELDS = ["username", "public_metrics", "verified"]
PAGE_MAX = 100  # X's largest page, and the most ids one tweet lookup takes
PAGE_MIN = 10  # X refuses smaller pages
DEFAULT_RATE_WINDOW = timedelta(minutes=15)  # X's window, when a 429 names no reset time


@dataclass(frozen=True, slots=True)
class XCursor:
    """Where the search stands. `since_id`: every post up to it is stored. A search that spans
    several runs keeps `since_id` and walks back with `next_token`; `newest_id` (the newest post
    of that search) becomes `since_id` once the last page is stored."""

    since_id: str | None = None
    next_token: str | None = None
    newest_id: str | None = None

    @classmethod
    def parse(cls, raw: str | None) -> "XCursor":
        if not raw:
            return cls()
        data = json.loads(raw)
        return cls(data.get("since_id"), data.get("next_token"), data.get("newest_id"))

    def dump(self) -> str:
        return json.dumps({k: v for k, v in (("since_id", self.since_id), ("next_token", self.next_token),
                                             ("newest_id", self.newest_id)) if v is not None}, sort_keys=True)


def build_query(terms: Sequence[str], own_accounts: Sequence[str]) -> str:
    """Any of the terms, or a post by one of the brand's accounts (its replies time the response); no reposts."""
    parts = [f'"{t}"' if any(c.isspace() for c in t) else t for t in terms]
    parts += [f"from:{h.lstrip('@')}" for h in own_accounts]
    return f"({' OR '.join(parts)}) -is:retweet"


class XCollector:
    source = "x"
    sources = frozenset({"x"})

    def __init__(self, brand: str, query: str, bearer_token: str, budget: ReadBudget, clock: Clock, *,
                 pages_per_run: int = 10, timeout: float = 30.0, base_url: str | None = None):
        self.brand = brand
        self.query = query
        self.budget = budget
        self.clock = clock
        self.pages_per_run = pages_per_run
        # wait_on_rate_limit would sleep up to 15 minutes inside a scheduler thread: never.
        self.client = tweepy.Client(bearer_token, return_type=requests.Response, wait_on_rate_limit=False)
        mount(self.client.session, X_API, timeout, base_url)

    def collect(self, cursor: str | None) -> CollectResult:
        state = XCursor.parse(cursor)
        left = self.budget.remaining()
        if left < PAGE_MIN:
            return CollectResult((), cursor, pause=Pause(self.budget.resets_at(), "daily read budget"))
        page_size = min(PAGE_MAX, left)
        pages = tweepy.Paginator(
            self.client.search_recent_tweets, self.query, since_id=state.since_id, max_results=page_size,
            expansions=["author_id"], tweet_fields=TWEET_FIELDS, user_fields=USER_FIELDS,
            limit=min(self.pages_per_run, left // page_size), pagination_token=state.next_token,
        )
        mentions: list[MentionIn] = []
        newest, next_token, pause = state.newest_id, state.next_token, None
        try:
            for response in pages:
                body = _body(response, "search")
                tweets, users, meta = _page(body)
                self.budget.spend(len(tweets))
                mentions += self._normalise(tweets, users)
                newest = newest or meta.get("newest_id")
                next_token = meta.get("next_token")
                pause = self._window_spent(response)
                if pause or not next_token:
                    break
        except (tweepy.TweepyException, requests.RequestException, ValueError, AttributeError) as exc:
            raise _fault(exc, "search", self.clock) from None
        if next_token:
            new = XCursor(state.since_id, next_token, newest)
        else:
            new = XCursor(newest or state.since_id)
        if pause is None and next_token and self.budget.remaining() < PAGE_MIN:
            pause = Pause(self.budget.resets_at(), "daily read budget")
        return CollectResult(tuple(mentions), new.dump(), more=bool(next_token), pause=pause)

    def refresh_metrics(self, external_ids: Sequence[str]) -> list[MetricsUpdate]:
        ids = list(dict.fromkeys(external_ids))
        if self.budget.remaining() < len(ids):
            raise SourceFault("budget", f"X daily read budget left {self.budget.remaining()} posts, "
                                        f"{len(ids)} to re-poll", self.budget.resets_at())
        updates: list[MetricsUpdate] = []
        try:
            for i in range(0, len(ids), PAGE_MAX):
                response = self.client.get_tweets(ids[i:i + PAGE_MAX], tweet_fields=["public_metrics"])
                tweets, _, _ = _page(_body(response, "tweet lookup"))
                self.budget.spend(len(tweets))
                now = self.clock.now()
                # Deleted or hidden posts come back under `errors`, not `data`: they are left out.
                updates += [MetricsUpdate("x", str(t["id"]), now, _metrics(t)) for t in tweets if "id" in t]
        except (tweepy.TweepyException, requests.RequestException, ValueError) as exc:
            raise _fault(exc, "tweet lookup", self.clock) from None
        return updates

    def _normalise(self, tweets: list[dict], users: dict[str, dict]) -> list[MentionIn]:
        mentions = []
        incomplete = 0
        for tweet in tweets:
            mention = _mention(tweet, users, self.brand)
            if mention is None:
                incomplete += 1
            else:
                mentions.append(mention)
        if incomplete:
            log.warning("X returned %d post(s) without id, text or created_at; left out", incomplete)
        return mentions

    def _window_spent(self, response: requests.Response) -> Pause | None:
        """X says how many calls the window has left; at zero, stop before the next call is refused."""
        if response.headers.get("x-rate-limit-remaining") != "0":
            return None
        return Pause(_reset_time(response.headers.get("x-rate-limit-reset"), self.clock), "rate limited")


def _body(response: requests.Response, endpoint: str) -> dict:
    body = response.json()
    if not isinstance(body, dict):
        raise _BadShape(f"X {endpoint} answered with JSON that is not an object")
    return body


def _page(body: dict) -> tuple[list[dict], dict[str, dict], dict]:
    tweets = body.get("data", [])
    users = body.get("includes", {}).get("users", []) if isinstance(body.get("includes"), dict) else []
    meta = body.get("meta", {})
    if not isinstance(tweets, list) or not isinstance(users, list) or not isinstance(meta, dict):
        raise _BadShape("X answered with `data`, `includes.users` or `meta` of the wrong type")
    tweets = [t for t in tweets if isinstance(t, dict)]
    return tweets, {str(u["id"]): u for u in users if isinstance(u, dict) and "id" in u}, meta


def _mention(tweet: dict, users: dict[str, dict], brand: str) -> MentionIn | None:
    try:
        tweet_id, text = str(tweet["id"]), str(tweet["text"])
        created_at = datetime.fromisoformat(tweet["created_at"])
    except (KeyError, TypeError, ValueError):
        return None
    author_id = str(tweet.get("author_id") or "")
    user = users.get(author_id, {})
    handle = str(user.get("username") or author_id or "unknown")
    followers = user.get("public_metrics", {}).get("followers_count", 0) if isinstance(user.get("public_metrics"), dict) else 0
    # An edit is a new tweet id; the first id of the edit history keeps the post one mention.
    history = tweet.get("edit_history_tweet_ids")
    external_id = str(history[0]) if isinstance(history, list) and history else tweet_id
    replied_to = next((str(r.get("id")) for r in tweet.get("referenced_tweets") or []
                       if isinstance(r, dict) and r.get("type") == "replied_to"), None)
    return MentionIn(
        source="x", external_id=external_id, brand=brand,
        author=Author(author_id or handle, handle, _int(followers), bool(user.get("verified", False))),
        text=text, created_at=created_at.astimezone(timezone.utc),
        lang=tweet.get("lang"),  # "und" (X could not tell) and its "qme"-style codes become None in MentionIn
        url=f"https://x.com/{handle}/status/{tweet_id}",
        conversation_id=str(tweet["conversation_id"]) if tweet.get("conversation_id") else None,
        in_reply_to=replied_to, metrics=_metrics(tweet),
    )


def _metrics(tweet: dict) -> Metrics:
    m = tweet.get("public_metrics")
    if not isinstance(m, dict):
        return Metrics()
    return Metrics(reposts=_int(m.get("retweet_count")), replies=_int(m.get("reply_count")),
                   likes=_int(m.get("like_count")), quotes=_int(m.get("quote_count")),
                   views=_int(m.get("impression_count")))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _reset_time(header: str | int | None, clock: Clock) -> datetime:
    try:
        return datetime.fromtimestamp(int(header), timezone.utc)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return clock.now() + DEFAULT_RATE_WINDOW


class _BadShape(ValueError):
    pass


def _fault(exc: Exception, endpoint: str, clock: Clock) -> SourceFault:
    """One line naming what went wrong; never the request's headers (they carry the bearer token)."""
    if isinstance(exc, tweepy.TooManyRequests):
        until = _reset_time(exc.reset_time, clock)
        return SourceFault("rate_limited", f"X rate limit reached on {endpoint} (429); resets at "
                                           f"{until.isoformat(timespec='seconds')}", until)
    if isinstance(exc, tweepy.TwitterServerError):
        return SourceFault("server_error", f"X {endpoint} failed with {exc.response.status_code} (server error)")
    if isinstance(exc, (tweepy.Unauthorized, tweepy.Forbidden)):
        return SourceFault("auth", f"X {endpoint} refused the bearer token ({exc.response.status_code}); "
                                   "check the token in the environment")
    if isinstance(exc, tweepy.HTTPException):
        return SourceFault("bad_request", f"X {endpoint} answered {exc.response.status_code}: "
                                          f"{'; '.join(map(str, exc.api_messages))[:200]}")
    if isinstance(exc, _BadShape):
        return SourceFault("bad_response", str(exc))
    if isinstance(exc, ValueError):  # requests' JSONDecodeError is also a RequestException: test it first
        return SourceFault("bad_response", f"X {endpoint} answered with a body that is not valid JSON "
                                           f"(truncated or not JSON: {str(exc)[:80]})")
    if isinstance(exc, AttributeError):  # tweepy's Paginator reads `meta` from whatever JSON came back
        return SourceFault("bad_response", f"X {endpoint} answered with JSON that is not an object")
    return SourceFault("timeout" if isinstance(exc, requests.Timeout) else "connection",
                       f"X {endpoint} {describe_network_error(exc)}")
