"""A fake X API v2: recent search and tweet lookup, shaped like the documented responses.

Search answers newest first, honours `since_id`, `max_results` (10-100) and `next_token`, and
puts the authors under `includes.users`; `meta` carries `newest_id`, `oldest_id`, `result_count`
and `next_token`. Every answer has the `x-rate-limit-*` headers of a 15-minute window per
endpoint; a spent window answers 429. Tweet lookup takes at most 100 ids and reports missing
(deleted) tweets under `errors`. Edits make a new tweet id with `edit_history_tweet_ids`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from monitor.clock import Clock
from tests.fakes.server import FakeApi, Reply, Request

SEARCH = "/2/tweets/search/recent"
LOOKUP = "/2/tweets"
WINDOW = timedelta(minutes=15)
FIRST_ID = 1_862_000_000_000_000_000


@dataclass
class Window:
    limit: int
    remaining: int
    reset: datetime


class FakeX(FakeApi):
    def __init__(self, clock: Clock, bearer_token: str = "test-bearer-token", window_limit: int = 450):
        self.clock = clock
        self.bearer_token = bearer_token
        self.window_limit = window_limit
        self.tweets: dict[int, dict] = {}  # id -> the full tweet object, as X would render every field
        self.users: dict[str, dict] = {}  # id -> user object
        self.deleted: set[int] = set()
        self.superseded: set[int] = set()  # edited: search shows the newest version only
        self.overlap = False  # each page repeats the last post of the page before
        self.windows: dict[str, Window] = {}
        self._next_id = FIRST_ID
        super().__init__()

    # --- seeding ------------------------------------------------------------------------------

    def user(self, username: str, followers: int = 100, verified: bool = False, drop: tuple[str, ...] = ()) -> str:
        user_id = str(1000 + len(self.users))
        user = {"id": user_id, "name": username.title(), "username": username, "verified": verified,
                "public_metrics": {"followers_count": followers, "following_count": 10, "tweet_count": 50,
                                   "listed_count": 1}}
        self.users[user_id] = {k: v for k, v in user.items() if k not in drop}
        return user_id

    def post(self, text: str, by: str, at: datetime | None = None, *, reply_to: str | None = None,
             lang: str = "en", metrics: dict | None = None, drop: tuple[str, ...] = ()) -> str:
        """A new tweet by the user named `by` (created on first use); returns its id."""
        author = next((u for u in self.users.values() if u.get("username") == by), None)
        author_id = author["id"] if author else self.user(by)
        tweet_id = self._new_id()
        parent = self.tweets.get(int(reply_to)) if reply_to else None
        tweet = {
            "id": str(tweet_id), "text": text, "edit_history_tweet_ids": [str(tweet_id)], "author_id": author_id,
            "created_at": _iso(at or self.clock.now()), "lang": lang,
            "conversation_id": parent["conversation_id"] if parent else str(tweet_id),
            "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 0, "quote_count": 0,
                               "bookmark_count": 0, "impression_count": 0, **(metrics or {})},
        }
        if reply_to:
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": reply_to}]
            tweet["in_reply_to_user_id"] = parent["author_id"] if parent else "0"
        self.tweets[tweet_id] = {k: v for k, v in tweet.items() if k not in drop}
        return str(tweet_id)

    def delete(self, tweet_id: str) -> None:
        self.deleted.add(int(tweet_id))

    def edit(self, tweet_id: str, text: str) -> str:
        """A new version with its own id; the edit history lists every version, oldest first."""
        old = self.tweets[int(tweet_id)]
        new_id = self._new_id()
        history = [*old["edit_history_tweet_ids"], str(new_id)]
        self.tweets[new_id] = {**old, "id": str(new_id), "text": text, "edit_history_tweet_ids": history}
        for version in history[:-1]:
            self.tweets[int(version)]["edit_history_tweet_ids"] = history
            self.superseded.add(int(version))
        return str(new_id)

    def set_metrics(self, tweet_id: str, **counts: int) -> None:
        self.tweets[int(tweet_id)]["public_metrics"].update(counts)

    def _new_id(self) -> int:
        self._next_id += 4096  # snowflakes grow with time; the gap is arbitrary
        return self._next_id

    # --- answering --------------------------------------------------------------------------------

    def respond(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.bearer_token}":
            return Reply.json({"title": "Unauthorized", "type": "about:blank", "status": 401,
                               "detail": "Unauthorized"}, 401)
        window = self._window(request.path)
        if window.remaining <= 0:
            return self.rate_limited(request)
        window.remaining -= 1
        if request.path == SEARCH:
            reply = self._search(request)
        elif request.path == LOOKUP:
            reply = self._lookup(request)
        else:
            reply = Reply.json({"title": "Not Found Error", "status": 404}, 404)
        reply.headers.update(self._limit_headers(window))
        return reply

    def rate_limited(self, request: Request) -> Reply:
        window = self._window(request.path)
        window.remaining = 0
        return Reply.json({"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                           "status": 429}, 429, self._limit_headers(window))

    def _window(self, path: str) -> Window:
        now = self.clock.now()
        window = self.windows.get(path)
        if window is None or now >= window.reset:
            window = self.windows[path] = Window(self.window_limit, self.window_limit, now + WINDOW)
        return window

    @staticmethod
    def _limit_headers(window: Window) -> dict[str, str]:
        return {"x-rate-limit-limit": str(window.limit), "x-rate-limit-remaining": str(max(0, window.remaining)),
                "x-rate-limit-reset": str(int(window.reset.timestamp()))}

    def _search(self, request: Request) -> Reply:
        query = request.arg("query")
        max_results = int(request.arg("max_results", "10"))
        if not query or not 10 <= max_results <= 100:
            return _invalid("query is required and max_results must be between 10 and 100")
        since_id = int(request.arg("since_id", "0"))
        until = _decode_token(request.arg("next_token"))
        if request.arg("next_token") and until is None:
            return _invalid("The `next_token` query parameter value is not valid")
        wanted = _Query(query)
        matches = sorted((t for i, t in self.tweets.items()
                          if i > since_id and i not in self.deleted and i not in self.superseded
                          and wanted.matches(t, self.users.get(t.get("author_id", "")))),
                         key=lambda t: int(t["id"]), reverse=True)
        if until is not None:
            matches = [t for t in matches if int(t["id"]) < until]
        page, rest = matches[:max_results], matches[max_results:]
        if not page:
            return Reply.json({"meta": {"result_count": 0}})
        meta = {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"], "result_count": len(page)}
        if rest:
            oldest = int(page[-1]["id"])
            meta["next_token"] = _encode_token(oldest + 1 if self.overlap else oldest)
        return Reply.json({"data": [self._render(t, request) for t in page],
                           "includes": {"users": self._authors(page, request)}, "meta": meta})

    def _lookup(self, request: Request) -> Reply:
        ids = [i for i in (request.arg("ids") or "").split(",") if i]
        if not 1 <= len(ids) <= 100:
            return Reply.json({"errors": [{"parameters": {"ids": ids}, "message": "ids: size must be between 1 and 100"}],
                               "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                               "type": "https://api.twitter.com/2/problems/invalid-request"}, 400)
        found = [self.tweets[int(i)] for i in ids if int(i) in self.tweets and int(i) not in self.deleted]
        missing = [i for i in ids if int(i) not in self.tweets or int(i) in self.deleted]
        body: dict = {}
        if found:
            body["data"] = [self._render(t, request) for t in found]
        if missing:
            body["errors"] = [{"value": i, "detail": f"Could not find tweet with ids: [{i}].", "title": "Not Found Error",
                               "resource_type": "tweet", "parameter": "ids", "resource_id": i,
                               "type": "https://api.twitter.com/2/problems/resource-not-found"} for i in missing]
        return Reply.json(body)

    def _render(self, tweet: dict, request: Request) -> dict:
        """Only the default fields and those asked for, as X does."""
        fields = {"id", "text", "edit_history_tweet_ids", *_csv(request.arg("tweet.fields"))}
        return {k: v for k, v in tweet.items() if k in fields}

    def _authors(self, page: list[dict], request: Request) -> list[dict]:
        if "author_id" not in _csv(request.arg("expansions")):
            return []
        fields = {"id", "name", "username", *_csv(request.arg("user.fields"))}
        ids = dict.fromkeys(t.get("author_id") for t in page)
        return [{k: v for k, v in self.users[i].items() if k in fields} for i in ids if i in self.users]


class _Query:
    """The subset of X's query language the collector writes: terms, "phrases" and from:user joined
    by OR, in parentheses, and -is:retweet."""

    def __init__(self, query: str):
        inner = query.replace("-is:retweet", "").strip().removeprefix("(").removesuffix(")")
        self.parts = [p.strip().strip('"').lower() for p in inner.split(" OR ") if p.strip()]

    def matches(self, tweet: dict, user: dict | None) -> bool:
        text = tweet.get("text", "").lower()
        username = (user or {}).get("username", "").lower()
        return any(username == p[5:] if p.startswith("from:") else re.search(re.escape(p), text) is not None
                   for p in self.parts)


def _invalid(detail: str) -> Reply:
    return Reply.json({"errors": [{"message": detail}], "title": "Invalid Request", "detail": detail,
                       "type": "https://api.twitter.com/2/problems/invalid-request"}, 400)


def _encode_token(until_id: int) -> str:
    return base64.b32encode(str(until_id).encode()).decode().rstrip("=").lower()


def _decode_token(token: str | None) -> int | None:
    if not token:
        return None
    try:
        return int(base64.b32decode(token.upper() + "=" * (-len(token) % 8)).decode())
    except ValueError:
        return None


def _csv(value: str | None) -> list[str]:
    return [v for v in (value or "").split(",") if v]


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
