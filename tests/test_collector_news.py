"""The news-feed collector: requests and feedparser against a local fake news site."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from monitor.clock import ManualClock
from monitor.collectors.news import NewsCollector
from monitor.store.repository import Store
from tests import collecting
from tests.collecting import stored
from tests.fakes.feeds import FakeFeeds
from tests.support import BRAND, T0

SOURCE = "news:site"


@pytest.fixture
def clock():
    return ManualClock(T0)


@pytest.fixture
def fake(clock):
    site = FakeFeeds(clock)
    yield site
    site.close()


@pytest.fixture
def make_collector(fake, clock):
    def make(kind: str = "rss", timeout: float = 5.0) -> NewsCollector:
        if "/feed.xml" not in fake.feeds:
            fake.feed("/feed.xml", kind=kind, title="Dagblad")
        return NewsCollector(BRAND, "site", fake.url + "/feed.xml", ["acme", "acme fiber"], clock, timeout=timeout)

    return make


def run(collector: NewsCollector, store: Store, clock: ManualClock):
    return collecting.run(collector, store, clock, {})


@pytest.mark.parametrize("kind", ["rss", "atom"])
def test_entries_naming_the_brand_are_collected_as_plain_text(kind, fake, make_collector, sqlite_store, clock):
    collector = make_collector(kind)
    storing = fake.publish("/feed.xml", "Storing bij Acme", "<p>Klanten van <b>Acme</b> zitten &amp; wachten</p>",
                           at=T0 - timedelta(minutes=20), author="Redactie")
    fake.publish("/feed.xml", "Weerbericht", "Zon en wolken", at=T0 - timedelta(minutes=10))

    run(collector, sqlite_store, clock)

    rows = stored(sqlite_store)
    assert list(rows) == [storing]
    assert rows[storing] | {"url": None} == {
        "text": "Storing bij Acme\n\nKlanten van Acme zitten & wachten", "handle": "Redactie",
        "author_id": "Dagblad", "followers": 0, "verified": False, "lang": "nl", "url": None,
        "conversation_id": None, "in_reply_to": None, "is_brand_reply": False,
        "created_at": T0 - timedelta(minutes=20)}
    assert rows[storing]["url"].startswith("https://news.example/feed.xml/")
    assert collector.refresh_metrics([storing]) == []  # feeds carry no engagement


def test_unchanged_feed_is_a_304_and_new_entries_are_read_once_across_restarts(fake, make_collector,
                                                                                sqlite_store, clock):
    collector = make_collector()
    first = fake.publish("/feed.xml", "Acme verhoogt prijzen")
    run(collector, sqlite_store, clock)
    etag = json.loads(sqlite_store.cursor(SOURCE, BRAND))["etag"]

    clock.advance(minutes=10)
    report = run(make_collector(), sqlite_store, clock)
    assert report.new_ids == () and fake.requests[-1].headers["if-none-match"] == etag

    second = fake.publish("/feed.xml", "Acme fiber in Utrecht", at=clock.now())
    reopened = Store.open(str(sqlite_store.engine.url))
    try:
        report = run(make_collector(), reopened, clock)
        assert len(report.new_ids) == 1 and report.seen_again == 0  # the first entry is not read again
        assert set(stored(reopened)) == {first, second}
    finally:
        reopened.close()


def test_undated_entries_count_from_when_they_were_read_and_entries_without_id_are_left_out(
        fake, make_collector, sqlite_store, clock, caplog):
    collector = make_collector()
    undated = fake.publish("/feed.xml", "Acme zonder datum", dated=False)
    fake.publish("/feed.xml", "Acme zonder id", link=None, guid=None)
    long_link = "https://news.example/" + "a" * 200
    hashed = fake.publish("/feed.xml", "Acme met lange link", link=long_link, guid=None)
    with caplog.at_level(logging.WARNING):
        run(collector, sqlite_store, clock)
    rows = stored(sqlite_store)
    assert rows[undated]["created_at"] == T0
    assert hashed == long_link and long_link not in rows and len(rows) == 2
    assert [r.getMessage() for r in caplog.records] == ["feed news:site has 1 entries without id or link; left out"]


def test_a_truncated_feed_yields_what_came_and_the_rest_next_run(fake, make_collector, sqlite_store, clock, caplog):
    collector = make_collector()
    entries = [fake.publish("/feed.xml", f"Acme bericht {i}", "x" * 200, at=T0 + timedelta(minutes=i))
               for i in range(10)]
    fake.fail("truncated")
    with caplog.at_level(logging.WARNING):
        run(collector, sqlite_store, clock)
    got = set(stored(sqlite_store))
    assert 0 < len(got) < 10 and got <= set(entries)
    assert len(caplog.records) == 1 and "malformed" in caplog.records[0].getMessage()
    assert "etag" not in json.loads(sqlite_store.cursor(SOURCE, BRAND))

    run(collector, sqlite_store, clock)
    assert "if-none-match" not in fake.requests[-1].headers
    assert set(stored(sqlite_store)) == set(entries)


@pytest.mark.parametrize("fault, kind, says", [
    ("500", "server_error", "500"),
    ("503", "server_error", "503"),
    ("not_json", "bad_response", "not a readable RSS or Atom feed"),
    ("reset", "connection", "connection failed"),
    ("hang", "timeout", "timed out"),
])
def test_fault_keeps_the_cursor_and_retries_after_back_off(fault, kind, says, fake, make_collector, sqlite_store,
                                                           clock, caplog):
    collector = make_collector(timeout=0.5 if fault == "hang" else 5.0)
    fake.publish("/feed.xml", "Acme eerst")
    run(collector, sqlite_store, clock)

    def inject():
        fake.publish("/feed.xml", "Acme daarna")
        fake.fail(fault)

    collecting.check_fault_and_recovery(collector, sqlite_store, clock, {}, fake, caplog, inject, kind, says)


def test_429_pauses_for_retry_after(fake, make_collector, sqlite_store, clock):
    collector = make_collector()
    fake.publish("/feed.xml", "Acme")
    fake.fail("429")
    collecting.check_rate_limit_pause(collector, sqlite_store, clock, {}, fake, T0 + timedelta(seconds=120))


def test_a_long_id_with_a_lone_surrogate_is_hashed_like_any_other():
    from monitor.collectors.text import MAX_ID_LENGTH, fit_id

    raw = "https://news.example/" + "a" * MAX_ID_LENGTH + "\ud83d"  # a JSON body's cut-off emoji escape
    assert fit_id(raw).startswith("sha256:") and fit_id(raw) != fit_id(raw[:-1])
