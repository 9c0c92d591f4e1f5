"""Mastodon through Mastodon.py: hashtag timelines, full-text search and the brand's own accounts
on one instance, read forward from the last status seen with `min_id`."""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import requests
from mastodon import Mastodon
from mastodon.errors import (
    MastodonError,
    MastodonNetworkError,
    MastodonNotFoundError,
    MastodonRatelimitError,
    MastodonServerError,
    MastodonUnauthorizedError,
)

from monitor.clock import Clock
from monitor.collectors.base import CollectResult, SourceFault
from monitor.collectors.http import describe_network_error
from monitor.collectors.text import fit_id, plain_text
from monitor.models import Author, MentionIn, Metrics, MetricsUpdate

log = logging.getLogger(__name__)

PAGE = 40  # the most a timeline page holds
LOOKUP_BATCH = 20  # statuses asked for at once when re-polling
RATE_WINDOW = timedelta(minutes=5)  # Mastodon's rate-limit window: after it, the limit has reset
# Mastodon status URIs carry the origin's own id; re-polls go to that origin when it is configured.
STATUS_URI = re.compile(r"^https?://([^/]+)/users/[^/]+/statuses/(\d+)$")


def make_client(url: str, access_token: str | None, timeout: float) -> Mastodon:
    # "throw": a 429 is the collector's to handle; "wait" would sleep in a scheduler thread. A
    # stated version spares a /api/v1/instance call per client, whose failure sends Mastodon.py's
    # version check into endless recursion; every call used here exists since Mastodon 4.3.
    return Mastodon(api_base_url=url, access_token=access_token, request_timeout=timeout,
                    ratelimit_method="throw", version_check_mode="created", mastodon_version="4.3.0",
                    user_agent="escalation-monitor/0.1")


class MastodonCollector:
    """One instance for one brand. Terms starting with # are hashtag timelines (public); other
    terms are full-text searches, which need an access token. Posts are stored under their URI,
    which is the same on every instance, so a post seen on two instances is one mention."""

    sources = frozenset({"mastodon"})

    def __init__(self, brand: str, client: Mastodon, terms: Sequence[str], own_accounts: Sequence[str],
                 clock: Clock, *, peers: Mapping[str, Mastodon] | None = None, pages_per_run: int = 5):
        self.brand = brand
        self.client = client
        address = urlsplit(client.api_base_url)
        self.host = address.hostname or address.netloc
        self.source = f"mastodon:{address.netloc}"
        self.hashtags = [t[1:] for t in terms if t.startswith("#")]
        self.searches = [t for t in terms if not t.startswith("#")] if client.access_token else []
        self.own_accounts = [a.lstrip("@") for a in own_accounts]
        self._own_handles = {self._full_handle(a) for a in self.own_accounts}
        self.clock = clock
        # Every configured instance by host, for re-polling posts collected through another one.
        self.peers = dict(peers or {}) | {self.host: client}
        self.pages_per_run = pages_per_run
        self._account_ids: dict[str, str | None] = {}

    def collect(self, cursor: str | None) -> CollectResult:
        marks: dict[str, str] = json.loads(cursor) if cursor else {}
        mentions: list[MentionIn] = []
        more = False
        try:
            for key, fetch in self._streams():
                statuses, marks_at, full = self._read(fetch, marks.get(key))
                if marks_at:
                    marks[key] = marks_at
                mentions += self._normalise(statuses)
                more = more or full
        except (MastodonError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise _fault(exc, self.host, self.clock) from None
        return CollectResult(tuple(mentions), json.dumps(marks, sort_keys=True), more=more)

    def _streams(self) -> Iterator[tuple[str, Callable[[str | None], list]]]:
        for tag in self.hashtags:
            yield f"#{tag}", lambda min_id, t=tag: self.client.timeline_hashtag(t, min_id=min_id, limit=PAGE)
        for term in self.searches:
            yield f"search:{term}", lambda min_id, q=term: self.client.search_v2(
                q, result_type="statuses", min_id=min_id, limit=PAGE, resolve=False,
                exclude_unreviewed=False).get("statuses", [])
        for acct in self.own_accounts:
            account_id = self._account_id(acct)
            if account_id is not None:
                yield f"account:{acct}", lambda min_id, a=account_id: self.client.account_statuses(
                    a, min_id=min_id, limit=PAGE, exclude_reblogs=True)

    def _account_id(self, acct: str) -> str | None:
        if acct not in self._account_ids:
            try:
                self._account_ids[acct] = str(self.client.account_lookup(acct)["id"])
            except MastodonNotFoundError:
                log.warning("Mastodon account %s is unknown on %s; its posts are not collected", acct, self.host)
                self._account_ids[acct] = None
        return self._account_ids[acct]

    def _read(self, fetch: Callable[[str | None], list], min_id: str | None) -> tuple[list[dict], str | None, bool]:
        """Pages forward from `min_id`: each page holds the statuses right after the newest one read."""
        statuses: list[dict] = []
        newest = min_id
        for _ in range(self.pages_per_run):
            page = [s for s in fetch(newest) if isinstance(s, dict) and s.get("id") is not None]
            if not page:
                return statuses, newest, False
            statuses += page
            newest = str(max((int(s["id"]) for s in page)))
            if min_id is None or len(page) < PAGE:
                return statuses, newest, False  # caught up (a first run starts at the newest page)
        return statuses, newest, True

    def _normalise(self, statuses: list[dict]) -> list[MentionIn]:
        by_local_id = {str(s["id"]): s.get("uri") for s in statuses}
        mentions, incomplete = [], 0
        for status in statuses:
            if status.get("reblog"):
                continue  # a boost is not a new post
            mention = self._mention(status, by_local_id)
            if mention is None:
                incomplete += 1
            else:
                mentions.append(mention)
        if incomplete:
            log.warning("Mastodon %s returned %d status(es) without uri or created_at; left out", self.host,
                        incomplete)
        return mentions

    def _mention(self, status: dict, by_local_id: dict[str, str | None]) -> MentionIn | None:
        created = _datetime(status.get("created_at"))
        if not status.get("uri") or created is None:
            return None
        account = status.get("account") or {}
        handle = self._full_handle(str(account.get("acct") or "unknown"))
        parent = status.get("in_reply_to_id")
        replied_to = None
        if parent is not None:
            replied_to = by_local_id.get(str(parent))
            if replied_to is None and handle in self._own_handles:
                replied_to = self._parent_uri(str(parent))  # a brand reply: worth one lookup
        text = plain_text(status.get("content"))
        if status.get("spoiler_text"):
            text = f"{status['spoiler_text']}\n\n{text}"
        return MentionIn(
            source="mastodon", external_id=fit_id(status["uri"]), brand=self.brand,
            author=Author(handle, handle, _count(account, "followers_count"), False),
            text=text, created_at=created, lang=status.get("language") or None,
            url=status.get("url") or status["uri"], conversation_id=None,
            in_reply_to=fit_id(replied_to) if replied_to else None, metrics=_metrics(status),
        )

    def _full_handle(self, acct: str) -> str:
        return acct if "@" in acct else f"{acct}@{self.host}"  # the instance writes its own accounts bare

    def _parent_uri(self, local_id: str) -> str | None:
        try:
            return self.client.status(local_id).get("uri")
        except MastodonNotFoundError:
            return None

    def refresh_metrics(self, external_ids: Sequence[str]) -> list[MetricsUpdate]:
        by_host: dict[str, list[str]] = defaultdict(list)
        for uri in external_ids:
            match = STATUS_URI.match(uri)
            if match and match.group(1) in self.peers:
                by_host[match.group(1)].append(match.group(2))
        # Posts from instances not configured here cannot be asked for: their watch ends.
        updates = []
        try:
            for host, ids in by_host.items():
                for i in range(0, len(ids), LOOKUP_BATCH):
                    now = self.clock.now()
                    updates += [MetricsUpdate("mastodon", fit_id(s["uri"]), now, _metrics(s))
                                for s in self.peers[host].statuses(ids[i:i + LOOKUP_BATCH])
                                if isinstance(s, dict) and s.get("uri")]
        except (MastodonError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise _fault(exc, self.host, self.clock) from None
        return updates


def _metrics(status: dict) -> Metrics:
    return Metrics(reposts=_count(status, "reblogs_count"), replies=_count(status, "replies_count"),
                   likes=_count(status, "favourites_count"), quotes=_count(status, "quotes_count"))


def _count(record: dict, key: str) -> int:
    value = record.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).astimezone(timezone.utc)
        except ValueError:
            return None
    return None


def _fault(exc: Exception, host: str, clock: Clock) -> SourceFault:
    """One line naming what went wrong; never the access token (Mastodon.py's errors hold none)."""
    if isinstance(exc, MastodonRatelimitError):
        until = clock.now() + RATE_WINDOW
        return SourceFault("rate_limited", f"Mastodon {host} rate limit reached (429); retry after "
                                           f"{until.isoformat(timespec='seconds')}", until)
    if isinstance(exc, MastodonServerError):
        return SourceFault("server_error", f"Mastodon {host} failed with {exc.args[1]} (server error)")
    if isinstance(exc, MastodonUnauthorizedError):
        return SourceFault("auth", f"Mastodon {host} refused the access token (401); check it in the environment")
    if isinstance(exc, MastodonNetworkError):
        cause = exc.__context__ or exc  # Mastodon.py re-raises the requests error as its own
        return SourceFault("timeout" if isinstance(cause, requests.Timeout) else "connection",
                           f"Mastodon {host} {describe_network_error(cause)}")
    if "Could not parse response as JSON" in str(exc):
        return SourceFault("bad_response", f"Mastodon {host} answered with a body that is not valid JSON "
                                           "(truncated or not JSON)")
    if isinstance(exc, MastodonError) and len(exc.args) > 1 and isinstance(exc.args[1], int):
        return SourceFault("bad_request", f"Mastodon {host} answered {exc.args[1]}")
    return SourceFault("bad_response", f"Mastodon {host} answered with JSON of an unexpected shape "
                                       f"({type(exc).__name__})")
