"""News sites and blogs: one RSS or Atom feed, fetched with requests (conditional GET) and read by feedparser."""

from __future__ import annotations

import calendar
import io
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import feedparser
import requests

from monitor.clock import Clock
from monitor.collectors.base import CollectResult, SourceFault
from monitor.collectors.http import capped_session, describe_network_error
from monitor.collectors.text import fit_id, plain_text
from monitor.models import Author, MentionIn, MetricsUpdate

log = logging.getLogger(__name__)

SEEN_KEPT = 500  # entry ids remembered; more than any feed carries at once
DEFAULT_RETRY = timedelta(minutes=15)  # a 429 without Retry-After
USER_AGENT = f"escalation-monitor/0.1 feedparser/{feedparser.__version__}"


class NewsCollector:
    """One feed for one brand. The cursor holds the feed's ETag and Last-Modified (for a 304 when
    nothing changed) and the ids of entries already read, so an entry is read once."""

    sources = frozenset({"news"})

    def __init__(self, brand: str, name: str, url: str, terms: Sequence[str], clock: Clock, *,
                 timeout: float = 30.0):
        self.brand = brand
        self.source = f"news:{name}"
        self.url = url
        self.terms = [t.lower() for t in terms]
        self.clock = clock
        self.session = capped_session(timeout)

    def collect(self, cursor: str | None) -> CollectResult:
        state = json.loads(cursor) if cursor else {}
        headers = {"User-Agent": USER_AGENT}
        if state.get("etag"):
            headers["If-None-Match"] = state["etag"]
        if state.get("modified"):
            headers["If-Modified-Since"] = state["modified"]
        try:
            response = self.session.get(self.url, headers=headers)
        except requests.RequestException as exc:
            raise SourceFault("timeout" if isinstance(exc, requests.Timeout) else "connection",
                              f"feed {self.source} {describe_network_error(exc)}") from None
        if response.status_code == 304:
            return CollectResult((), cursor)
        self._check_status(response)
        feed = feedparser.parse(io.BytesIO(response.content),  # bytes, never a URL or path to open
                                response_headers={k.lower(): v for k, v in response.headers.items()}
                                | {"content-location": self.url})
        malformed = bool(feed.bozo) or not feed.version
        # In a broken (say, truncated) feed the last entry may be cut short: only those before it
        # are read. The validators are not kept, so the next run fetches the whole feed again.
        entries = feed.entries[:-1] if malformed else feed.entries
        if malformed and not entries:
            raise SourceFault("bad_response", f"feed {self.source} is not a readable RSS or Atom feed "
                                              f"({_bozo(feed)})")
        if malformed:
            log.warning("feed %s is malformed (%s); read the %d complete entries before the fault", self.source,
                        _bozo(feed), len(entries))
        seen = state.get("seen", [])
        known = set(seen)
        lang = feed.feed.get("language")
        mentions, ids, unusable = [], [], 0
        for entry in entries:
            entry_id = _entry_id(entry)
            if entry_id is None:
                unusable += 1
                continue
            ids.append(entry_id)
            if entry_id in known or not self._names_brand(entry):
                continue
            mentions.append(self._mention(entry, entry_id, feed, lang))
        if unusable:
            log.warning("feed %s has %d entries without id or link; left out", self.source, unusable)
        new_state = {"seen": (ids + [i for i in seen if i not in set(ids)])[:SEEN_KEPT]}
        if not malformed:
            new_state |= {k: v for k, v in (("etag", response.headers.get("ETag")),
                                            ("modified", response.headers.get("Last-Modified"))) if v}
        return CollectResult(tuple(mentions), json.dumps(new_state))

    def refresh_metrics(self, external_ids: Sequence[str]) -> list[MetricsUpdate]:
        return []  # feeds publish no engagement counts: watching a news item ends at once

    def _check_status(self, response: requests.Response) -> None:
        status = response.status_code
        if status == 429:
            until = self.clock.now() + _retry_after(response.headers.get("Retry-After"), self.clock)
            raise SourceFault("rate_limited", f"feed {self.source} answered 429; retry after "
                                              f"{until.isoformat(timespec='seconds')}", until)
        if status >= 500:
            raise SourceFault("server_error", f"feed {self.source} answered {status} (server error)")
        if status != 200:
            raise SourceFault("bad_request", f"feed {self.source} answered {status}")

    def _names_brand(self, entry) -> bool:
        text = f"{entry.get('title', '')} {entry.get('summary', '')}".lower()
        return any(t in text for t in self.terms)

    def _mention(self, entry, entry_id: str, feed, lang: str | None) -> MentionIn:
        publisher = (entry.get("source") or {}).get("title") or feed.feed.get("title") or self.source
        author = entry.get("author") or publisher
        text = "\n\n".join(p for p in (plain_text(entry.get("title")), plain_text(entry.get("summary"))) if p)
        parsed = entry.get("published_parsed") or entry.get("updated_parsed")
        created = (datetime.fromtimestamp(calendar.timegm(parsed), timezone.utc) if parsed
                   else self.clock.now())  # an undated entry counts from when it was read
        return MentionIn(source="news", external_id=entry_id, brand=self.brand,
                         author=Author(publisher, str(author)), text=text, created_at=created, lang=lang,
                         url=entry.get("link"))


def _entry_id(entry) -> str | None:
    raw = entry.get("id") or entry.get("link")
    return fit_id(raw) if raw else None  # Google News ids are long URLs


def _bozo(feed) -> str:
    exc = feed.get("bozo_exception")
    return f"{type(exc).__name__}: {str(exc)[:120]}" if exc else "no RSS or Atom root element"


def _retry_after(value: str | None, clock: Clock) -> timedelta:
    """Retry-After is seconds or an HTTP date."""
    if not value:
        return DEFAULT_RETRY
    try:
        return timedelta(seconds=max(1, int(value)))
    except ValueError:
        pass
    try:
        return max(timedelta(seconds=1), parsedate_to_datetime(value) - clock.now())
    except (TypeError, ValueError):
        return DEFAULT_RETRY
