"""A fake Mastodon instance: hashtag timelines, v2 search, account lookup and statuses, status
lookup and the v2 instance description, with Mastodon's Status and Account entities and its id pagination.

Timelines answer newest first; `min_id` gives the statuses right after it (the page nearest to
it), `since_id` the newest ones after it, `max_id` older ones; `limit` is at most 40. A Link
header names the next (older) and prev (newer) pages. Every answer carries the X-RateLimit
headers of a 5-minute window of 300 calls. A post from another instance keeps its origin's URI
and gets a local id here, as federation does.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from monitor.clock import Clock
from tests.fakes.server import FakeApi, Reply, Request

WINDOW = timedelta(minutes=5)


class FakeMastodon(FakeApi):
    def __init__(self, clock: Clock, host: str = "mastodon.example", access_token: str = "test-mastodon-token"):
        self.clock = clock
        self.host = host
        self.access_token = access_token
        self.statuses: dict[int, dict] = {}  # local id -> Status entity
        self.accounts: dict[str, dict] = {}  # acct as this instance writes it -> Account entity
        self.deleted: set[int] = set()
        self.remaining = 300
        self._next_id = 113_500_000_000_000_000
        super().__init__()

    # --- seeding ------------------------------------------------------------------------------

    def account(self, acct: str, followers: int = 10) -> dict:
        """A local account ("name") or a remote one ("name@other.host")."""
        if acct not in self.accounts:
            username, _, host = acct.partition("@")
            host = host or self.host
            self.accounts[acct] = {
                "id": str(100 + len(self.accounts)), "username": username, "acct": acct,
                "display_name": username.title(), "url": f"https://{host}/@{username}", "bot": False,
                "followers_count": followers, "following_count": 3, "statuses_count": 40,
                "created_at": "2024-01-01T00:00:00.000Z", "note": "", "locked": False}
        return self.accounts[acct]

    def post(self, text: str, by: str, at: datetime | None = None, *, reply_to: str | None = None,
             language: str | None = "nl", origin_id: str | None = None, counts: dict | None = None,
             drop: tuple[str, ...] = ()) -> str:
        """A public status by `by` (acct); a remote author's post takes `origin_id`, the id its own
        instance gave it (the same post on two fakes shares it). Returns the status's URI."""
        account = self.account(by)
        local_id = self._new_id()
        username, _, host = by.partition("@")
        host = host or self.host
        uri = f"https://{host}/users/{username}/statuses/{origin_id or local_id}"
        parent = self.statuses.get(int(reply_to)) if reply_to else None
        tags = [{"name": t.lower(), "url": f"https://{self.host}/tags/{t.lower()}"} for t in re.findall(r"#(\w+)", text)]
        status = {
            "id": str(local_id), "uri": uri, "url": f"https://{host}/@{username}/{origin_id or local_id}",
            "created_at": _iso(at or self.clock.now()), "account": account,
            "content": f"<p>{text}</p>", "spoiler_text": "", "visibility": "public", "sensitive": False,
            "language": language, "in_reply_to_id": str(parent["id"]) if parent else None,
            "in_reply_to_account_id": parent["account"]["id"] if parent else None,
            "replies_count": 0, "reblogs_count": 0, "favourites_count": 0, "quotes_count": 0,
            "edited_at": None, "reblog": None, "mentions": [], "tags": tags, "emojis": [],
            "media_attachments": [], "card": None, "poll": None, **(counts or {}),
        }
        self.statuses[local_id] = {k: v for k, v in status.items() if k not in drop}
        return uri

    def local_id(self, uri: str) -> str:
        return next(s["id"] for s in self.statuses.values() if s["uri"] == uri)

    def delete(self, uri: str) -> None:
        self.deleted.add(int(self.local_id(uri)))

    def edit(self, uri: str, text: str) -> None:
        status = self.statuses[int(self.local_id(uri))]
        status.update(content=f"<p>{text}</p>", edited_at=_iso(self.clock.now()))

    def _new_id(self) -> int:
        self._next_id += 65536
        return self._next_id

    # --- answering --------------------------------------------------------------------------------

    def respond(self, request: Request) -> Reply:
        auth = request.headers.get("authorization")
        if auth is not None and auth != f"Bearer {self.access_token}":
            return Reply.json({"error": "The access token is invalid"}, 401)
        self.remaining = max(0, self.remaining - 1)
        reply = self._route(request, authenticated=auth is not None)
        reply.headers.update(self._limit_headers())
        return reply

    def _route(self, request: Request, authenticated: bool) -> Reply:
        path = request.path
        if path.rstrip("/") == "/api/v2/instance":  # Mastodon.py reads which timelines are public here
            public = {"local": "public", "remote": "public"}
            return Reply.json({"domain": self.host, "title": self.host, "version": "4.3.2",
                               "api_versions": {"mastodon": 2},
                               "configuration": {"timelines_access": {"live_feeds": public, "hashtag_feeds": public,
                                                                      "trending_link_feeds": public}}})
        if match := re.fullmatch(r"/api/v1/timelines/tag/([^/]+)", path):
            tag = match.group(1).lower()
            return self._timeline(request, [s for s in self._live() if tag in {t["name"] for t in s.get("tags", [])}])
        if path == "/api/v2/search":
            query = (request.arg("q") or "").lower()
            found = [s for s in self._live() if query in s.get("content", "").lower()] if authenticated else []
            return Reply.json({"accounts": [], "hashtags": [], "statuses": self._page(request, found)})
        if path == "/api/v1/accounts/lookup":
            account = self.accounts.get((request.arg("acct") or "").removesuffix(f"@{self.host}"))
            return Reply.json(account) if account else Reply.json({"error": "Record not found"}, 404)
        if match := re.fullmatch(r"/api/v1/accounts/(\d+)/statuses", path):
            return self._timeline(request, [s for s in self._live() if s["account"]["id"] == match.group(1)])
        if path == "/api/v1/statuses":
            ids = request.query.get("id[]", [])
            return Reply.json([self.statuses[int(i)] for i in ids if int(i) in self.statuses
                               and int(i) not in self.deleted])
        if match := re.fullmatch(r"/api/v1/statuses/(\d+)", path):
            status = self.statuses.get(int(match.group(1)))
            if status is None or int(match.group(1)) in self.deleted:
                return Reply.json({"error": "Record not found"}, 404)
            return Reply.json(status)
        return Reply.json({"error": "Record not found"}, 404)

    def rate_limited(self, request: Request) -> Reply:
        self.remaining = 0
        return Reply.json({"error": "Too many requests"}, 429, self._limit_headers())

    def _limit_headers(self) -> dict[str, str]:
        reset = self.clock.now() + WINDOW
        return {"X-RateLimit-Limit": "300", "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%M:%S.000Z")}

    def _live(self) -> list[dict]:
        return [s for i, s in sorted(self.statuses.items(), reverse=True) if i not in self.deleted]

    def _page(self, request: Request, statuses: list[dict]) -> list[dict]:
        """Newest first, filtered and cut as Mastodon does for max_id, since_id, min_id and limit."""
        limit = min(40, int(request.arg("limit", "20")))
        max_id, since_id, min_id = (int(request.arg(k) or 0) for k in ("max_id", "since_id", "min_id"))
        if max_id:
            statuses = [s for s in statuses if int(s["id"]) < max_id]
        if since_id:
            statuses = [s for s in statuses if int(s["id"]) > since_id]
        if min_id:
            # The page right after min_id: the oldest `limit` newer ones, still given newest first.
            return sorted((s for s in statuses if int(s["id"]) > min_id), key=lambda s: int(s["id"]))[:limit][::-1]
        return statuses[:limit]

    def _timeline(self, request: Request, statuses: list[dict]) -> Reply:
        page = self._page(request, statuses)
        headers = {}
        if page:
            base = f"{self.url}{request.path}"
            headers["Link"] = (f'<{base}?max_id={page[-1]["id"]}>; rel="next", '
                               f'<{base}?min_id={page[0]["id"]}>; rel="prev"')
        return Reply.json(page, headers=headers)


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
