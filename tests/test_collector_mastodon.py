"""The Mastodon collector: Mastodon.py against local fake instances, stored through the pipeline."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from monitor.clock import ManualClock
from monitor.collectors.base import SourceFault
from monitor.collectors.mastodon import RATE_WINDOW, MastodonCollector, make_client
from monitor.models import Metrics
from monitor.store.repository import Store
from tests import collecting
from tests.collecting import stored
from tests.fakes.mastodon import FakeMastodon
from tests.support import BRAND, T0

TOKEN = "mastodon-token-3e4f5a"
OWN = "acme"


@pytest.fixture
def clock():
    return ManualClock(T0)


@pytest.fixture
def fake(clock):
    instance = FakeMastodon(clock, host="social.example", access_token=TOKEN)
    yield instance
    instance.close()


@pytest.fixture
def make_collector(fake, clock):
    def make(instance: FakeMastodon = fake, token: str | None = TOKEN, terms=("#acme", "acme storing"),
             own=(OWN,), timeout: float = 5.0, pages_per_run: int = 5, peers=None) -> MastodonCollector:
        client = make_client(instance.url, token, timeout)
        return MastodonCollector(BRAND, client, list(terms), list(own), clock, peers=peers,
                                 pages_per_run=pages_per_run)

    return make


def own_accounts(host: str) -> dict[str, set[str]]:
    return {"mastodon": {f"{OWN}@{host}"}}


def run(collector: MastodonCollector, store: Store, clock: ManualClock):
    return collecting.run(collector, store, clock, own_accounts("127.0.0.1"))


def test_hashtags_search_and_the_brands_own_replies(fake, make_collector, sqlite_store, clock):
    fake.account(OWN)
    complaint = fake.post("Weer eens geen internet #Acme", "boos@other.example", T0 - timedelta(hours=2))
    searched = fake.post("acme storing in heel Utrecht", "buurman", T0 - timedelta(minutes=30), language="nl")
    fake.post("Lekker weer vandaag", "buurman")
    collector = make_collector()
    run(collector, sqlite_store, clock)  # the first run starts at each stream's newest page

    reply = fake.post("@boos@other.example sorry, we kijken ernaar", OWN, T0 + timedelta(minutes=1),
                      reply_to=fake.local_id(complaint))
    clock.advance(minutes=2)
    report = run(collector, sqlite_store, clock)
    assert len(report.new_ids) == 1

    rows = stored(sqlite_store)
    assert set(rows) == {complaint, searched, reply}
    assert rows[complaint] | {"created_at": None} == {
        "text": "Weer eens geen internet #Acme", "handle": "boos@other.example", "author_id": "boos@other.example",
        "followers": 10, "verified": False, "lang": "nl", "url": "https://other.example/@boos/" + complaint.split("/")[-1],
        "conversation_id": None, "in_reply_to": None, "is_brand_reply": False, "created_at": None}
    assert rows[searched]["handle"] == f"buurman@{collector.host}"
    assert rows[reply]["in_reply_to"] == complaint  # the parent's URI, looked up once for a brand reply
    assert [r.path for r in fake.requests if r.path.startswith("/api/v1/statuses/")] == [
        f"/api/v1/statuses/{fake.local_id(complaint)}"]
    searches = [r for r in fake.requests if r.path == "/api/v2/search"]
    assert searches and all(r.headers["authorization"] == f"Bearer {TOKEN}" and r.arg("type") == "statuses"
                            for r in searches)


def test_without_a_token_only_hashtags_are_read(fake, make_collector, sqlite_store, clock):
    tagged = fake.post("#acme down", "a")
    fake.post("acme storing", "b")
    run(make_collector(token=None, own=()), sqlite_store, clock)
    assert set(stored(sqlite_store)) == {tagged}
    assert {r.path for r in fake.requests} == {"/api/v2/instance/", "/api/v1/timelines/tag/acme"}
    assert all("authorization" not in r.headers for r in fake.requests)


def test_pages_forward_from_the_last_status_across_restarts(fake, make_collector, sqlite_store, clock):
    first = fake.post("#acme first", "a")
    run(make_collector(own=()), sqlite_store, clock)
    # The search found nothing yet, so it has no mark: its first find starts from its newest page.
    assert json.loads(sqlite_store.cursor(make_collector().source, BRAND)) == {"#acme": fake.local_id(first)}

    burst = [fake.post(f"#acme burst {i}", f"user{i}") for i in range(130)]
    reopened = Store.open(str(sqlite_store.engine.url))
    try:
        collector = make_collector(terms=("#acme",), own=(), pages_per_run=2)
        runs = collecting.drain(collector, reopened, clock, own_accounts("x"))
        assert runs == 2  # 2 pages of 40, then 40 + 10
        assert set(stored(reopened)) == {first, *burst}
        min_ids = [int(r.arg("min_id")) for r in fake.requests if r.arg("min_id")]
        assert min_ids == sorted(min_ids) and len(min_ids) == 4
    finally:
        reopened.close()


def test_a_post_seen_on_two_instances_is_one_mention(fake, make_collector, sqlite_store, clock):
    other = FakeMastodon(clock, host="other.example", access_token=TOKEN)
    try:
        fake.post("#acme local chatter", "a")
        shared_here = fake.post("#acme federated complaint", "boos@far.example", origin_id="777")
        shared_there = other.post("#acme federated complaint", "boos@far.example", origin_id="777")
        assert shared_here == shared_there
        run(make_collector(own=()), sqlite_store, clock)
        report = run(make_collector(instance=other, own=()), sqlite_store, clock)
        assert report.new_ids == () and report.seen_again == 1
        assert sqlite_store.count_mentions() == 2
    finally:
        other.close()


def test_refresh_metrics_asks_each_configured_origin_in_batches(fake, make_collector, clock):
    other = FakeMastodon(clock, host="other.example", access_token=TOKEN)
    try:
        here = [fake.post(f"#acme {i}", "a") for i in range(45)]
        fake.statuses[int(fake.local_id(here[0]))].update(favourites_count=9, reblogs_count=4, replies_count=2)
        fake.delete(here[1])
        there = other.post("#acme elsewhere", "b", counts={"favourites_count": 3})
        unknown = "https://unconfigured.example/users/c/statuses/1"
        # The statuses' URIs name the fakes' hosts; the fakes themselves listen on 127.0.0.1.
        peers = {fake.host: make_client(fake.url, None, 5), other.host: make_client(other.url, None, 5)}
        collector = make_collector(peers=peers)

        clock.advance(minutes=3)
        updates = {u.external_id: u for u in collector.refresh_metrics([*here, there, unknown])}
        assert [len(r.query["id[]"]) for r in fake.requests if r.path == "/api/v1/statuses"] == [20, 20, 5]
        assert len(updates) == 45 and here[1] not in updates and unknown not in updates
        assert updates[here[0]].metrics == Metrics(reposts=4, replies=2, likes=9)
        assert updates[there].metrics == Metrics(likes=3) and updates[there].observed_at == clock.now()
    finally:
        other.close()


def test_deleted_posts_are_left_out_and_an_edit_is_the_same_post(fake, make_collector, sqlite_store, clock):
    kept = fake.post("#acme kept", "a")
    gone = fake.post("#acme gone", "a")
    fake.delete(gone)
    collector = make_collector(own=(), peers={fake.host: make_client(fake.url, None, 5)})
    run(collector, sqlite_store, clock)
    assert set(stored(sqlite_store)) == {kept}
    fake.edit(kept, "#acme kept (edited)")
    assert [u.external_id for u in collector.refresh_metrics([kept, gone])] == [kept]


def test_boosts_and_statuses_without_uri_or_time_are_left_out(fake, make_collector, sqlite_store, clock, caplog):
    fake.post("#acme no time", "a", drop=("created_at",))
    boosted = fake.post("#acme original", "b")
    boost = fake.post("#acme original", "c")
    fake.statuses[int(fake.local_id(boost))]["reblog"] = fake.statuses[int(fake.local_id(boosted))]
    bare = fake.post("#acme bare", "d", language=None, drop=("url", "replies_count"))
    with caplog.at_level(logging.WARNING):
        run(make_collector(own=()), sqlite_store, clock)
    rows = stored(sqlite_store)
    assert set(rows) == {boosted, bare}
    assert rows[bare]["url"] == bare and rows[bare]["lang"] is None
    assert [r.getMessage() for r in caplog.records] == [
        "Mastodon 127.0.0.1 returned 1 status(es) without uri or created_at; left out"]


@pytest.mark.parametrize("fault, kind, says", [
    ("500", "server_error", "500"),
    ("503", "server_error", "503"),
    ("not_json", "bad_response", "not valid JSON"),
    ("truncated", "bad_response", "not valid JSON"),
    ("reset", "connection", "connection failed"),
    ("hang", "timeout", "timed out"),
])
def test_fault_keeps_the_cursor_and_retries_after_back_off(fault, kind, says, fake, make_collector, sqlite_store,
                                                           clock, caplog):
    fake.post("#acme before", "a")
    collector = make_collector(own=(), timeout=0.5 if fault == "hang" else 5.0)
    run(collector, sqlite_store, clock)

    def inject():
        fake.post("#acme during", "a")
        fake.fail(fault, path="/api/v1/timelines/")

    collecting.check_fault_and_recovery(collector, sqlite_store, clock, own_accounts("127.0.0.1"), fake, caplog,
                                        inject, kind, says)


def test_429_pauses_for_the_rate_limit_window(fake, make_collector, sqlite_store, clock):
    fake.post("#acme", "a")
    collector = make_collector(own=())
    fake.fail("429", path="/api/v1/timelines/")
    collecting.check_rate_limit_pause(collector, sqlite_store, clock, own_accounts("127.0.0.1"), fake,
                                      T0 + RATE_WINDOW)


def test_a_refused_token_is_one_line_without_the_token(fake, make_collector, sqlite_store, clock, caplog):
    with caplog.at_level(logging.DEBUG):
        run(make_collector(token="wrong-token-0a9b8c", own=()), sqlite_store, clock)
    health = sqlite_store.source_health(f"mastodon:{fake.url.removeprefix('http://')}", BRAND)
    assert health.last_error.startswith("Mastodon 127.0.0.1 refused the access token (401)")
    assert "wrong-token-0a9b8c" not in caplog.text


def test_refresh_fault_is_one_source_fault(fake, make_collector):
    uri = fake.post("#acme", "a")
    fake.fail("503", path="/api/v1/statuses")
    with pytest.raises(SourceFault) as caught:
        make_collector(peers={fake.host: make_client(fake.url, None, 5)}).refresh_metrics([uri])
    assert caught.value.kind == "server_error"

