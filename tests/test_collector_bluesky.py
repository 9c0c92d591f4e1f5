"""The Bluesky collector: atproto's Client against a local fake XRPC service, stored through the pipeline."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from monitor.clock import ManualClock
from monitor.collectors.base import SourceFault
from monitor.collectors.bluesky import FIRST_LOOKBACK, BlueskyCollector
from monitor.models import Metrics
from monitor.store.repository import Store
from tests import collecting
from tests.collecting import stored
from tests.fakes.bluesky import GET_POSTS, LOGIN, SEARCH, FakeBluesky
from tests.support import BRAND, T0

HANDLE = "acme.bsky.social"
PASSWORD = "app-pass-1a2b-3c4d"
OWN = {"bluesky": {HANDLE}}


@pytest.fixture
def clock():
    return ManualClock(T0)


@pytest.fixture
def fake(clock):
    service = FakeBluesky(clock, handle=HANDLE, app_password=PASSWORD)
    yield service
    service.close()


@pytest.fixture
def make_collector(fake, clock):
    def make(terms=("acme",), own=(HANDLE,), login=(HANDLE, PASSWORD), timeout: float = 5.0,
             pages_per_run: int = 5) -> BlueskyCollector:
        return BlueskyCollector(BRAND, list(terms), list(own), clock, base_url=fake.url + "/xrpc", login=login,
                                timeout=timeout, pages_per_run=pages_per_run)

    return make


def run(collector: BlueskyCollector, store: Store, clock: ManualClock):
    return collecting.run(collector, store, clock, OWN)


def test_search_and_the_brands_own_replies_after_logging_in(fake, make_collector, sqlite_store, clock):
    fake.require_login = True
    complaint = fake.post("Acme laat me al drie dagen zonder internet", "boos.bsky.social",
                          T0 - timedelta(hours=3), counts={"likeCount": 12, "repostCount": 3, "replyCount": 1})
    reply = fake.post("Wat vervelend! Stuur ons een DM", HANDLE, T0 - timedelta(hours=2), reply_to=complaint,
                      langs=["nl-NL", "en"])
    fake.post("Mooi weer vandaag", "buur.bsky.social")

    run(make_collector(), sqlite_store, clock)

    rows = stored(sqlite_store)
    assert set(rows) == {complaint, reply}
    rkey = complaint.rsplit("/", 1)[-1]
    assert rows[complaint] == {
        "text": "Acme laat me al drie dagen zonder internet", "handle": "boos.bsky.social",
        "author_id": fake.posts[complaint]["author"]["did"], "followers": 0, "verified": False, "lang": "nl",
        "url": f"https://bsky.app/profile/boos.bsky.social/post/{rkey}", "conversation_id": complaint,
        "in_reply_to": None, "is_brand_reply": False, "created_at": T0 - timedelta(hours=3)}
    assert rows[reply]["is_brand_reply"] and rows[reply]["in_reply_to"] == complaint
    assert rows[reply]["lang"] == "nl"  # the language of its BCP 47 tag: Dutch heads, Dutch speakers
    assert rows[reply]["conversation_id"] == complaint
    mention_id = next(m.id for m in sqlite_store.mentions(range(1, 5)) if m.external_id == complaint)
    assert sqlite_store.latest_metrics(mention_id) == Metrics(reposts=3, replies=1, likes=12)
    assert len(fake.requests_to(LOGIN)) == 1
    searches = fake.requests_to(SEARCH)
    assert [r.arg("q") for r in searches] == ["acme", f"from:{HANDLE}"]
    assert all(r.arg("sort") == "latest" and r.arg("since") == "2026-11-22T10:00:00.000Z" for r in searches)


def test_since_continues_across_restarts_without_reading_a_post_twice(fake, make_collector, sqlite_store, clock):
    first = fake.post("acme een", "a.bsky.social", T0 - timedelta(minutes=5))
    run(make_collector(own=()), sqlite_store, clock)
    state = json.loads(sqlite_store.cursor("bluesky", BRAND))["acme"]
    assert state["since"] == "2026-11-23T09:55:00.000Z" and state["seen"] == [first]

    same_moment = fake.post("acme twee", "b.bsky.social", T0 - timedelta(minutes=5))
    later = fake.post("acme drie", "c.bsky.social", T0 + timedelta(minutes=1))
    clock.advance(minutes=2)
    reopened = Store.open(str(sqlite_store.engine.url))
    try:
        report = run(make_collector(own=()), reopened, clock)
        assert len(report.new_ids) == 2 and report.seen_again == 0
        assert set(stored(reopened)) == {first, same_moment, later}
        assert fake.requests_to(SEARCH)[-1].arg("since") == "2026-11-23T09:55:00.000Z"
    finally:
        reopened.close()


def test_a_long_search_pages_on_over_several_runs(fake, make_collector, sqlite_store, clock):
    posts = [fake.post(f"acme #{i}", f"u{i}.bsky.social", T0 - timedelta(minutes=500 - i)) for i in range(450)]
    collector = make_collector(own=(), pages_per_run=2)
    first = run(collector, sqlite_store, clock)
    assert first.more and len(first.new_ids) == 200
    assert json.loads(sqlite_store.cursor("bluesky", BRAND))["acme"]["cursor"] == "200"

    arrived = fake.post("acme nieuw", "late.bsky.social", T0 + timedelta(seconds=1))  # while the backlog drains
    runs = collecting.drain(collector, sqlite_store, clock, OWN)
    assert runs == 2 and set(stored(sqlite_store)) == set(posts)
    run(collector, sqlite_store, clock)
    assert set(stored(sqlite_store)) == {*posts, arrived}
    assert all(r.arg("limit") == "100" for r in fake.requests_to(SEARCH))


def test_first_run_reads_one_day_back(fake, make_collector, sqlite_store, clock):
    fake.post("acme oud", "a.bsky.social", T0 - FIRST_LOOKBACK - timedelta(minutes=1))
    recent = fake.post("acme recent", "b.bsky.social", T0 - FIRST_LOOKBACK + timedelta(minutes=1))
    run(make_collector(own=()), sqlite_store, clock)
    assert set(stored(sqlite_store)) == {recent}


def test_refresh_metrics_in_batches_of_25_leaves_deleted_posts_out(fake, make_collector, clock):
    posts = [fake.post(f"acme {i}", "a.bsky.social") for i in range(30)]
    fake.posts[posts[0]].update(likeCount=40, repostCount=5, quoteCount=2)
    fake.delete(posts[1])
    clock.advance(minutes=4)
    updates = {u.external_id: u for u in make_collector().refresh_metrics(posts)}
    assert [len(r.query["uris"]) for r in fake.requests_to(GET_POSTS)] == [25, 5]
    assert len(updates) == 29 and posts[1] not in updates
    assert updates[posts[0]].metrics == Metrics(reposts=5, likes=40, quotes=2)
    assert updates[posts[0]].observed_at == clock.now()


def test_optional_fields_missing_get_defaults(fake, make_collector, sqlite_store, clock):
    bare = fake.post("acme kaal", "a.bsky.social", drop=("likeCount", "replyCount", "repostCount", "quoteCount"),
                     drop_record=("langs",))
    run(make_collector(own=()), sqlite_store, clock)
    assert stored(sqlite_store)[bare]["lang"] is None


def test_a_post_without_required_fields_is_one_clear_fault(fake, make_collector, sqlite_store, clock):
    fake.post("acme zonder auteur", "a.bsky.social", drop=("author",))
    run(make_collector(own=()), sqlite_store, clock)
    health = sqlite_store.source_health("bluesky", BRAND)
    assert health.last_error == ("Bluesky searchPosts answered with posts the atproto models reject "
                                 "(posts.0.author: Field required)")
    assert sqlite_store.cursor("bluesky", BRAND) is None


@pytest.mark.parametrize("fault, kind, says", [
    ("500", "server_error", "500"),
    ("503", "server_error", "503"),
    ("not_json", "bad_response", "atproto models reject"),
    ("truncated", "bad_response", "not valid JSON"),
    ("reset", "connection", "connection failed"),
    ("hang", "timeout", "timed out"),
])
def test_fault_keeps_the_cursor_and_retries_after_back_off(fault, kind, says, fake, make_collector, sqlite_store,
                                                           clock, caplog):
    collector = make_collector(own=(), timeout=0.5 if fault == "hang" else 5.0)
    fake.post("acme voor", "a.bsky.social", T0 - timedelta(minutes=2))
    run(collector, sqlite_store, clock)

    def inject():
        fake.post("acme tijdens", "a.bsky.social", T0 - timedelta(minutes=1))
        fake.fail(fault, path=SEARCH)

    collecting.check_fault_and_recovery(collector, sqlite_store, clock, OWN, fake, caplog, inject, kind, says)


def test_429_pauses_until_the_named_reset(fake, make_collector, sqlite_store, clock):
    fake.post("acme", "a.bsky.social", T0 - timedelta(minutes=1))
    collector = make_collector(own=())
    fake.fail("429", path=SEARCH)
    collecting.check_rate_limit_pause(collector, sqlite_store, clock, OWN, fake, T0 + timedelta(minutes=5))


def test_a_refused_login_is_one_line_without_the_password(fake, make_collector, sqlite_store, clock, caplog):
    with caplog.at_level(logging.DEBUG):
        run(make_collector(login=(HANDLE, "wrong-pass-9z8y")), sqlite_store, clock)
    health = sqlite_store.source_health("bluesky", BRAND)
    assert health.last_error.startswith("Bluesky searchPosts refused the login (401)")
    assert "wrong-pass-9z8y" not in caplog.text and "wrong-pass-9z8y" not in health.last_error


def test_refresh_fault_is_one_source_fault(fake, make_collector):
    uri = fake.post("acme", "a.bsky.social")
    fake.fail("503", path=GET_POSTS)
    with pytest.raises(SourceFault) as caught:
        make_collector().refresh_metrics([uri])
    assert caught.value.kind == "server_error"
