"""A fake Reddit API: the client-credentials token, and Listing JSON for search, subreddit
comments, a user's comments and `/api/info`, paged with `after` as Reddit does.

Things are `t3` (submissions) and `t1` (comments) with the fields Reddit sends; a deleted thing
keeps its place with author and text "[deleted]", a removed one has `removed_by_category`.
Normal answers carry no `x-ratelimit-*` headers (prawcore would pace its calls on them with real
sleeps); a 429 carries them, with `x-ratelimit-reset` from `rate_reset_seconds`.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from urllib.parse import parse_qs

from monitor.clock import Clock
from tests.fakes.server import FakeApi, Reply, Request

TOKEN_PATH = "/api/v1/access_token"
INFO_PATH = "/api/info/"


class FakeReddit(FakeApi):
    def __init__(self, clock: Clock, client_id: str = "test-client-id", client_secret: str = "test-client-secret"):
        self.clock = clock
        self.client_id = client_id
        self.client_secret = client_secret
        self.things: dict[str, dict] = {}  # fullname -> data, in creation order
        self.tokens: set[str] = set()
        self.overlap = False  # each page repeats the last thing of the page before
        self.rate_reset_seconds = 600
        self.users: set[str] = set()  # accounts that exist: everyone who posted, and those `register`ed
        self._seq = 0
        super().__init__()

    # --- seeding ------------------------------------------------------------------------------

    def submit(self, subreddit: str, title: str, selftext: str = "", by: str = "someone", at: datetime | None = None,
               score: int = 1, num_comments: int = 0, drop: tuple[str, ...] = ()) -> str:
        base36 = self._id()
        data = {"id": base36, "name": f"t3_{base36}", "title": title, "selftext": selftext, "author": by,
                "author_fullname": f"t2_{by}", "subreddit": subreddit, "subreddit_name_prefixed": f"r/{subreddit}",
                "created_utc": (at or self.clock.now()).timestamp(), "score": score, "upvote_ratio": 1.0,
                "num_comments": num_comments, "num_crossposts": 0, "over_18": False, "is_self": True,
                "removed_by_category": None, "domain": f"self.{subreddit}",
                "permalink": f"/r/{subreddit}/comments/{base36}/{_slug(title)}/",
                "url": f"https://www.reddit.com/r/{subreddit}/comments/{base36}/{_slug(title)}/"}
        return self._add("t3", data, drop)

    def comment(self, parent: str, body: str, by: str = "someone", at: datetime | None = None, score: int = 1,
                drop: tuple[str, ...] = ()) -> str:
        parent_data = self.things[parent]
        link_id = parent if parent.startswith("t3_") else parent_data["link_id"]
        subreddit = parent_data["subreddit"]
        base36 = self._id()
        data = {"id": base36, "name": f"t1_{base36}", "body": body, "author": by, "author_fullname": f"t2_{by}",
                "link_id": link_id, "parent_id": parent, "subreddit": subreddit, "score": score,
                "created_utc": (at or self.clock.now()).timestamp(), "replies": "",
                "permalink": f"/r/{subreddit}/comments/{link_id[3:]}/comment/{base36}/"}
        self.things[link_id]["num_comments"] = self.things[link_id].get("num_comments", 0) + 1
        return self._add("t1", data, drop)

    def delete(self, fullname: str) -> None:
        """What Reddit shows for a thing its author deleted."""
        data = self.things[fullname]
        data.update(author="[deleted]", author_fullname=None)
        data["selftext" if fullname.startswith("t3_") else "body"] = "[deleted]"

    def remove(self, fullname: str) -> None:
        """What Reddit shows for a submission moderators removed."""
        self.things[fullname].update(selftext="[removed]", removed_by_category="moderator")

    def register(self, username: str) -> None:
        self.users.add(username)

    def _add(self, kind: str, data: dict, drop: tuple[str, ...]) -> str:
        self.users.add(data["author"])
        self.things[data["name"]] = {k: v for k, v in data.items() if k not in drop}
        return data["name"]

    def _id(self) -> str:
        self._seq += 1
        return _base36(46_000_000 + self._seq)

    # --- answering --------------------------------------------------------------------------------

    def respond(self, request: Request) -> Reply:
        if request.path == TOKEN_PATH:
            return self._token(request)
        auth = request.headers.get("authorization", "")
        if not auth.startswith("bearer ") or auth[7:] not in self.tokens:
            return Reply.json({"message": "Unauthorized", "error": 401}, 401,
                              {"www-authenticate": 'Bearer realm="reddit", error="invalid_token"'})
        if match := re.fullmatch(r"/r/([^/]+)/search/?", request.path):
            return self._listing(request, self._search(match.group(1).lower().split("+"), request))
        if match := re.fullmatch(r"/r/([^/]+)/comments/?", request.path):
            subs = match.group(1).lower().split("+")
            return self._listing(request, [t for t in self._newest("t1") if t["subreddit"].lower() in subs])
        if match := re.fullmatch(r"/user/([^/]+)/comments/?", request.path):
            if match.group(1) not in self.users:
                return Reply.json({"message": "Not Found", "error": 404}, 404)
            return self._listing(request, [t for t in self._newest("t1") if t["author"] == match.group(1)])
        if request.path == INFO_PATH:
            names = [n for n in (request.arg("id") or "").split(",") if n]
            if len(names) > 100:
                return Reply.json({"message": "Bad Request", "error": 400}, 400)
            return self._page([self.things[n] for n in names if n in self.things], None)
        return Reply.json({"message": "Not Found", "error": 404}, 404)

    def rate_limited(self, request: Request) -> Reply:
        return Reply.json({"message": "Too Many Requests", "error": 429}, 429, {
            "x-ratelimit-used": "100", "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": str(self.rate_reset_seconds)})

    def _token(self, request: Request) -> Reply:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        form = parse_qs(request.body.decode())
        if request.headers.get("authorization") != f"Basic {expected}":
            return Reply.json({"message": "Unauthorized", "error": 401}, 401)
        if form.get("grant_type") != ["client_credentials"]:
            return Reply.json({"error": "unsupported_grant_type"})
        token = f"fake-access-{len(self.tokens)}"
        self.tokens.add(token)
        return Reply.json({"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"})

    def _search(self, subs: list[str], request: Request) -> list[dict]:
        terms = [t.strip().strip('"').lower() for t in (request.arg("q") or "").split(" OR ") if t.strip()]
        everywhere = "all" in subs and request.arg("restrict_sr") in (None, "False", "false", "0", "")
        return [t for t in self._newest("t3") if (everywhere or t["subreddit"].lower() in subs)
                and any(term in f"{t.get('title', '')} {t.get('selftext', '')}".lower() for term in terms)]

    def _newest(self, kind: str) -> list[dict]:
        things = [t for name, t in self.things.items() if name.startswith(kind)]
        return sorted(things, key=lambda t: (t.get("created_utc", 0), t["name"]), reverse=True)

    def _listing(self, request: Request, things: list[dict]) -> Reply:
        limit = min(100, int(request.arg("limit", "25")))
        after = request.arg("after")
        if after:
            names = [t["name"] for t in things]
            if after not in names:
                return self._page([], None)
            start = names.index(after) + (0 if self.overlap else 1)
            things = things[start:]
        page = things[:limit]
        more = len(things) > limit
        return self._page(page, page[-1]["name"] if page and more else None)

    @staticmethod
    def _page(things: list[dict], after: str | None) -> Reply:
        children = [{"kind": t["name"][:2], "data": t} for t in things]
        return Reply.json({"kind": "Listing", "data": {"after": after, "dist": len(children), "modhash": None,
                                                       "geo_filter": "", "children": children, "before": None}})


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while number:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
    return out or "0"


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")[:50]
