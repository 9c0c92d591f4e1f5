"""Reddit through praw (read-only, client credentials): search, new comments, the brand's own
comments, and `/api/info` for metrics."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import praw
import prawcore
import requests
from praw.models import Comment, Submission

from monitor.clock import Clock
from monitor.collectors.base import CollectResult, SourceFault
from monitor.collectors.http import capped_session, describe_network_error
from monitor.models import Author, MentionIn, Metrics, MetricsUpdate

log = logging.getLogger(__name__)

GONE = {"[deleted]", "[removed]"}
DEFAULT_RATE_WINDOW = timedelta(minutes=10)  # Reddit's window, when a 429 says nothing


@dataclass(frozen=True, slots=True)
class Mark:
    """The newest post seen in one listing: its time, and the ids seen at that same second."""

    created_utc: float
    ids: tuple[str, ...]


def parse_cursor(raw: str | None) -> dict[str, Mark]:
    """Cursor: listing name -> mark. Each listing is read newest first down to its mark."""
    if not raw:
        return {}
    return {name: Mark(m["t"], tuple(m["ids"])) for name, m in json.loads(raw).items()}


def dump_cursor(marks: dict[str, Mark]) -> str:
    return json.dumps({name: {"t": m.created_utc, "ids": list(m.ids)} for name, m in sorted(marks.items())})


def search_query(terms: Sequence[str]) -> str:
    return " OR ".join(f'"{t}"' for t in terms)


class RedditCollector:
    source = "reddit"
    sources = frozenset({"reddit"})

    def __init__(self, brand: str, terms: Sequence[str], own_accounts: Sequence[str], subreddits: Sequence[str],
                 client_id: str, client_secret: str, user_agent: str, clock: Clock, *, timeout: float = 30.0,
                 oauth_url: str | None = None, reddit_url: str | None = None):
        self.brand = brand
        self.terms = [t.lower() for t in terms]
        self.own_accounts = [a.removeprefix("u/").lstrip("@") for a in own_accounts]
        named = [s.removeprefix("r/") for s in subreddits if s.lower() not in ("all", "r/all")]
        # Search covers r/all when it is listed; comments are read as they come from the named
        # subreddits only (r/all's comments are a firehose).
        self.search_in = "all" if len(named) < len(subreddits) else "+".join(named)
        self.comments_in = "+".join(named) or None
        self.clock = clock
        self._missing_accounts: set[str] = set()
        urls = {k: v for k, v in (("oauth_url", oauth_url), ("reddit_url", reddit_url)) if v}
        # Client credentials make praw read-only; no update check phones home at start-up. praw's
        # own `timeout` setting does not reach prawcore's requests: the session caps it instead.
        self.reddit = praw.Reddit(client_id=client_id, client_secret=client_secret, user_agent=user_agent,
                                  check_for_updates=False, requestor_kwargs={"session": capped_session(timeout)},
                                  **urls)

    def _listings(self) -> Iterator[tuple[str, Callable[[], Iterable], bool]]:
        """(name, listing, only posts naming a term). praw pages each listing with `after`."""
        if self.terms:
            query = search_query(self.terms)
            yield "search", lambda: self.reddit.subreddit(self.search_in).search(
                query, sort="new", time_filter="week", limit=None), False
            if self.comments_in:  # search finds submissions only
                yield "comments", lambda: self.reddit.subreddit(self.comments_in).comments(limit=None), True
        for account in self.own_accounts:
            if account in self._missing_accounts:
                continue
            yield f"own:{account}", lambda a=account: self.reddit.redditor(a).comments.new(limit=None), False

    def collect(self, cursor: str | None) -> CollectResult:
        marks = parse_cursor(cursor)
        mentions: list[MentionIn] = []
        try:
            for name, listing, filtered in self._listings():
                try:
                    found, mark = self._read(listing(), marks.get(name), filtered)
                except prawcore.NotFound:
                    if not name.startswith("own:"):
                        raise
                    # A misspelt or deleted own account must not stop the brand's other listings;
                    # it is not asked for again until a restart.
                    log.warning("Reddit account %s does not exist; its comments are not collected", name[4:])
                    self._missing_accounts.add(name[4:])
                    continue
                mentions += found
                if mark is not None:
                    marks[name] = mark
        except _ERRORS as exc:
            raise _fault(exc, "listing", self.clock) from None
        return CollectResult(tuple(mentions), dump_cursor(marks))

    def _read(self, listing: Iterable, mark: Mark | None, filtered: bool) -> tuple[list[MentionIn], Mark | None]:
        mentions, newest, skipped = [], mark, 0
        for item in listing:
            data = vars(item)  # never getattr: a missing attribute would make praw fetch the post again
            created, fullname = data.get("created_utc"), _fullname(item)
            if not isinstance(created, (int, float)) or fullname is None:
                skipped += 1
                continue
            if mark is not None and created < mark.created_utc:
                break  # newest first: the rest is older than what is stored
            if mark is not None and created == mark.created_utc and fullname in mark.ids:
                continue
            if newest is None or created > newest.created_utc:
                newest = Mark(created, (fullname,))
            elif created == newest.created_utc:
                newest = Mark(created, (*newest.ids, fullname))
            mention = _mention(item, data, fullname, self.brand)
            if mention is not None and (not filtered or any(t in mention.text.lower() for t in self.terms)):
                mentions.append(mention)
        if skipped:
            log.warning("Reddit returned %d item(s) without id or created_utc; left out", skipped)
        return mentions, newest

    def refresh_metrics(self, external_ids: Sequence[str]) -> list[MetricsUpdate]:
        updates = []
        try:
            for item in self.reddit.info(fullnames=list(external_ids)):  # praw asks 100 per request
                data, fullname = vars(item), _fullname(item)
                if fullname is not None and not _gone(item, data):
                    updates.append(MetricsUpdate("reddit", fullname, self.clock.now(), _metrics(item, data)))
        except _ERRORS as exc:
            raise _fault(exc, "/api/info", self.clock) from None
        return updates


def _fullname(item: object) -> str | None:
    data = vars(item)
    if isinstance(data.get("name"), str) and data["name"][:3] in ("t1_", "t3_"):
        return data["name"]
    if isinstance(data.get("id"), str):
        return ("t3_" if isinstance(item, Submission) else "t1_") + data["id"]
    return None


def _gone(item: object, data: dict) -> bool:
    """Deleted by its author or removed by moderators: not a mention any more."""
    text = data.get("selftext" if isinstance(item, Submission) else "body")
    return data.get("author") is None or text in GONE or bool(data.get("removed_by_category"))


def _mention(item: object, data: dict, fullname: str, brand: str) -> MentionIn | None:
    if _gone(item, data):
        return None
    author = data["author"]
    handle = vars(author).get("name") or "unknown"
    if isinstance(item, Submission):
        text = "\n\n".join(p for p in (data.get("title"), data.get("selftext")) if isinstance(p, str) and p)
        conversation, parent = fullname, None
    elif isinstance(item, Comment):
        text = data.get("body") if isinstance(data.get("body"), str) else ""
        conversation, parent = data.get("link_id"), data.get("parent_id")
    else:
        return None
    permalink = data.get("permalink")
    return MentionIn(
        source="reddit", external_id=fullname, brand=brand,
        author=Author(str(data.get("author_fullname") or handle), handle),  # listings carry no follower counts
        text=text, created_at=datetime.fromtimestamp(data["created_utc"], timezone.utc),
        url=f"https://www.reddit.com{permalink}" if isinstance(permalink, str) else None,
        conversation_id=conversation, in_reply_to=parent, metrics=_metrics(item, data),
    )


def _metrics(item: object, data: dict) -> Metrics:
    def count(key: str) -> int:
        value = data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    # Score stands in for likes; crossposts are Reddit's reposts.
    if isinstance(item, Submission):
        return Metrics(reposts=count("num_crossposts"), replies=count("num_comments"), likes=count("score"))
    return Metrics(likes=count("score"))


# What praw and prawcore raise for an unreachable, failing or confused API; a praw object built
# from JSON of the wrong shape fails with the plain errors.
_ERRORS = (prawcore.PrawcoreException, praw.exceptions.PRAWException, ValueError, AttributeError, TypeError,
           KeyError)


def _fault(exc: Exception, endpoint: str, clock: Clock) -> SourceFault:
    """One line naming what went wrong; never the credentials or the access token."""
    if isinstance(exc, prawcore.TooManyRequests):
        until = clock.now() + _retry_after(exc.response.headers)
        return SourceFault("rate_limited", f"Reddit rate limit reached on {endpoint} (429); retry after "
                                           f"{until.isoformat(timespec='seconds')}", until)
    if isinstance(exc, prawcore.ResponseException) and exc.response.status_code >= 500:
        return SourceFault("server_error", f"Reddit {endpoint} failed with {exc.response.status_code} (server "
                                           "error)")
    if isinstance(exc, (prawcore.OAuthException, prawcore.InvalidToken, prawcore.Forbidden)) or (
            isinstance(exc, prawcore.ResponseException) and exc.response.status_code == 401):
        return SourceFault("auth", f"Reddit refused the client credentials ({type(exc).__name__}); check them "
                                   "in the environment")
    if isinstance(exc, prawcore.BadJSON) or isinstance(exc, ValueError) and not isinstance(exc, prawcore.PrawcoreException):
        return SourceFault("bad_response", f"Reddit {endpoint} answered with a body that is not valid JSON "
                                           "(truncated or not JSON)")
    if isinstance(exc, prawcore.RequestException):
        original = exc.original_exception
        kind = "timeout" if isinstance(original, requests.Timeout) else "connection"
        return SourceFault(kind, f"Reddit {endpoint} {describe_network_error(original)}")
    if isinstance(exc, prawcore.ResponseException):
        return SourceFault("bad_request", f"Reddit {endpoint} answered {exc.response.status_code}")
    return SourceFault("bad_response", f"Reddit {endpoint} answered with JSON praw could not read "
                                       f"({type(exc).__name__})")


def _retry_after(headers) -> timedelta:
    for name in ("retry-after", "x-ratelimit-reset"):  # both in seconds
        try:
            return timedelta(seconds=max(1.0, float(headers[name])))
        except (KeyError, TypeError, ValueError):
            continue
    return DEFAULT_RATE_WINDOW
