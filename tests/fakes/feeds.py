"""A fake news site: RSS 2.0 and Atom feeds with ETag and Last-Modified, answering 304 to a
conditional GET when nothing changed, as a well-behaved feed server does."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

from monitor.clock import Clock
from tests.fakes.server import FakeApi, Reply, Request


@dataclass
class Entry:
    title: str
    summary: str
    link: str | None
    guid: str | None
    published: datetime | None
    author: str | None = None


@dataclass
class Feed:
    kind: str  # "rss" or "atom"
    title: str
    language: str
    entries: list[Entry] = field(default_factory=list)  # newest first
    modified: datetime | None = None


class FakeFeeds(FakeApi):
    def __init__(self, clock: Clock):
        self.clock = clock
        self.feeds: dict[str, Feed] = {}
        self.retry_after = "120"
        super().__init__()

    def feed(self, path: str, kind: str = "rss", title: str = "Nieuws", language: str = "nl-NL") -> str:
        self.feeds[path] = Feed(kind, title, language, modified=self.clock.now())
        return self.url + path

    def publish(self, path: str, title: str, summary: str = "", *, link: str | None = "auto",
                guid: str | None = "auto", at: datetime | None = None, dated: bool = True,
                author: str | None = None) -> str:
        """A new entry at the top of the feed; returns its id as a reader sees it (guid, else link)."""
        feed = self.feeds[path]
        n = sum(len(f.entries) for f in self.feeds.values()) + 1
        link = f"https://news.example/{path.strip('/')}/{n}" if link == "auto" else link
        guid = f"urn:news-example:{n}" if guid == "auto" else guid
        at = at or self.clock.now()
        feed.entries.insert(0, Entry(title, summary, link, guid, at if dated else None, author))
        feed.modified = at
        return guid or link or ""

    def respond(self, request: Request) -> Reply:
        feed = self.feeds.get(request.path)
        if feed is None:
            return Reply(404, b"not found", {"Content-Type": "text/plain"})
        body = (_rss if feed.kind == "rss" else _atom)(feed).encode("utf-8")
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        modified = format_datetime(feed.modified, usegmt=True)
        headers = {"ETag": etag, "Last-Modified": modified}
        if request.headers.get("if-none-match") == etag:
            return Reply(304, b"", headers)
        content_type = "application/rss+xml" if feed.kind == "rss" else "application/atom+xml"
        return Reply(200, body, {"Content-Type": f"{content_type}; charset=utf-8", **headers})

    def rate_limited(self, request: Request) -> Reply:
        return Reply(429, b"Too Many Requests", {"Content-Type": "text/plain", "Retry-After": self.retry_after})


def _rss(feed: Feed) -> str:
    items = []
    for e in feed.entries:
        parts = [f"<title>{escape(e.title)}</title>", f"<description>{escape(e.summary)}</description>"]
        if e.link:
            parts.append(f"<link>{escape(e.link)}</link>")
        if e.guid:
            parts.append(f'<guid isPermaLink="false">{escape(e.guid)}</guid>')
        if e.published:
            parts.append(f"<pubDate>{format_datetime(e.published, usegmt=True)}</pubDate>")
        if e.author:
            parts.append(f"<dc:creator>{escape(e.author)}</dc:creator>")
        items.append("<item>" + "".join(parts) + "</item>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
            f"<title>{escape(feed.title)}</title><link>https://news.example/</link>"
            f"<description>{escape(feed.title)}</description><language>{feed.language}</language>"
            + "".join(items) + "</channel></rss>")


def _atom(feed: Feed) -> str:
    entries = []
    for e in feed.entries:
        parts = [f"<title>{escape(e.title)}</title>", f'<summary type="html">{escape(e.summary)}</summary>']
        if e.link:
            parts.append(f'<link rel="alternate" href="{escape(e.link)}"/>')
        if e.guid:
            parts.append(f"<id>{escape(e.guid)}</id>")
        if e.published:
            stamp = e.published.strftime("%Y-%m-%dT%H:%M:%SZ")
            parts.append(f"<published>{stamp}</published><updated>{stamp}</updated>")
        if e.author:
            parts.append(f"<author><name>{escape(e.author)}</name></author>")
        entries.append("<entry>" + "".join(parts) + "</entry>")
    updated = (feed.modified or datetime(2026, 1, 1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{feed.language}">'
            f"<title>{escape(feed.title)}</title><id>urn:news-example:feed</id><updated>{updated}</updated>"
            + "".join(entries) + "</feed>")
