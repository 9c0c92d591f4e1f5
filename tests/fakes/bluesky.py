"""A fake Bluesky XRPC service (AppView behind a PDS): createSession, searchPosts and getPosts,
with app.bsky post views as the lexicons define them.

searchPosts answers latest first (by indexedAt), honours `since` (inclusive), `limit` (1-100)
and an opaque `cursor`, and understands `from:handle` and plain terms. With `require_login`,
search needs the session's access token, as Bluesky's search does for logged-out callers.
Answers carry `ratelimit-*` headers; a 429 names its reset time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import datetime, timedelta, timezone

from monitor.clock import Clock
from tests.fakes.server import FakeApi, Reply, Request

SEARCH = "/xrpc/app.bsky.feed.searchPosts"
GET_POSTS = "/xrpc/app.bsky.feed.getPosts"
LOGIN = "/xrpc/com.atproto.server.createSession"


class FakeBluesky(FakeApi):
    def __init__(self, clock: Clock, handle: str = "acme.bsky.social", app_password: str = "test-app-pass"):
        self.clock = clock
        self.handle = handle
        self.app_password = app_password
        self.require_login = False
        self.posts: dict[str, dict] = {}  # uri -> post view
        self.deleted: set[str] = set()
        self.sessions: set[str] = set()
        self._seq = 0
        super().__init__()

    # --- seeding ------------------------------------------------------------------------------

    def post(self, text: str, by: str, at: datetime | None = None, *, reply_to: str | None = None,
             langs: list[str] | None = None, counts: dict | None = None, indexed_late: timedelta = timedelta(),
             drop: tuple[str, ...] = (), drop_record: tuple[str, ...] = ()) -> str:
        """A post by handle `by`; returns its at:// URI."""
        self._seq += 1
        did = "did:plc:" + base64.b32encode(hashlib.sha256(by.encode()).digest()).decode().lower()[:24]
        uri = f"at://{did}/app.bsky.feed.post/{_tid(1_732_000_000_000_000 + self._seq)}"
        created = at or self.clock.now()
        record: dict = {"$type": "app.bsky.feed.post", "text": text, "createdAt": _iso(created),
                        "langs": langs if langs is not None else ["nl"]}
        if reply_to:
            parent = self.posts[reply_to]
            root = parent["record"].get("reply", {}).get("root") or {"uri": reply_to, "cid": parent["cid"]}
            record["reply"] = {"root": root, "parent": {"uri": reply_to, "cid": parent["cid"]}}
        view = {
            "uri": uri, "cid": "bafyrei" + base64.b32encode(uri.encode()).decode().lower().rstrip("=")[:52],
            "author": {"did": did, "handle": by, "displayName": by.split(".")[0].title(), "labels": [],
                       "createdAt": "2024-01-01T00:00:00.000Z"},
            "record": {k: v for k, v in record.items() if k not in drop_record},
            "replyCount": 0, "repostCount": 0, "likeCount": 0, "quoteCount": 0, "bookmarkCount": 0,
            "indexedAt": _iso(created + indexed_late), "labels": [], **(counts or {}),
        }
        self.posts[uri] = {k: v for k, v in view.items() if k not in drop}
        return uri

    def delete(self, uri: str) -> None:
        self.deleted.add(uri)

    # --- answering --------------------------------------------------------------------------------

    def respond(self, request: Request) -> Reply:
        if request.path == LOGIN:
            return self._login(request)
        auth = request.headers.get("authorization", "")
        logged_in = auth.startswith("Bearer ") and auth[7:] in self.sessions
        if auth and not logged_in:
            return Reply.json({"error": "InvalidToken", "message": "Bad token"}, 401)
        if request.path == SEARCH:
            if self.require_login and not logged_in:
                return Reply.json({"error": "Forbidden", "message": "search requires a logged-in session"}, 403)
            reply = self._search(request)
        elif request.path == GET_POSTS:
            uris = request.query.get("uris", [])
            if len(uris) > 25:
                return Reply.json({"error": "InvalidRequest", "message": "uris must not have more than 25 elements"},
                                  400)
            reply = Reply.json({"posts": [self.posts[u] for u in uris if u in self.posts and u not in self.deleted]})
        else:
            return Reply.json({"error": "MethodNotImplemented", "message": "Method Not Implemented"}, 501)
        reply.headers.update(self._limit_headers("2999"))
        return reply

    def rate_limited(self, request: Request) -> Reply:
        return Reply.json({"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}, 429,
                          self._limit_headers("0"))

    def _limit_headers(self, remaining: str) -> dict[str, str]:
        reset = int((self.clock.now() + timedelta(minutes=5)).timestamp())
        return {"ratelimit-limit": "3000", "ratelimit-remaining": remaining, "ratelimit-reset": str(reset),
                "ratelimit-policy": "3000;w=300"}

    def _login(self, request: Request) -> Reply:
        body = json.loads(request.body or b"{}")
        if body.get("identifier") != self.handle or body.get("password") != self.app_password:
            return Reply.json({"error": "AuthenticationRequired", "message": "Invalid identifier or password"}, 401)
        did = "did:plc:" + "b" * 24
        access = _jwt({"scope": "com.atproto.appPass", "sub": did, "iat": int(time.time()),
                       "exp": int(time.time()) + 7200, "aud": "did:web:fake.example"})
        self.sessions.add(access)
        return Reply.json({"accessJwt": access, "refreshJwt": _jwt({"scope": "com.atproto.refresh", "sub": did}),
                           "handle": self.handle, "did": did, "active": True})

    def _search(self, request: Request) -> Reply:
        query = (request.arg("q") or "").lower()
        limit = int(request.arg("limit", "25"))
        if not query or not 1 <= limit <= 100:
            return Reply.json({"error": "InvalidRequest", "message": "q is required, limit 1-100"}, 400)
        since = request.arg("since")
        matches = [p for u, p in self.posts.items() if u not in self.deleted and _matches(p, query)
                   and (since is None or p.get("indexedAt", "") >= since)]
        matches.sort(key=lambda p: (p.get("indexedAt", ""), p["uri"]), reverse=True)
        offset = int(request.arg("cursor") or 0)
        page = matches[offset:offset + limit]
        body: dict = {"posts": page, "hitsTotal": len(matches)}
        if offset + limit < len(matches):
            body["cursor"] = str(offset + limit)
        return Reply.json(body)


def _matches(post: dict, query: str) -> bool:
    if query.startswith("from:"):
        return post["author"]["handle"].lower() == query[5:]
    return query in post["record"].get("text", "").lower()


def _tid(number: int) -> str:
    """A record key as Bluesky writes them: 13 characters of sortable base32."""
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[(number >> (5 * i)) & 31] for i in reversed(range(13)))


def _jwt(payload: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'typ': 'at+jwt', 'alg': 'ES256K'})}.{part(payload)}.c2lnbmF0dXJl"


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
