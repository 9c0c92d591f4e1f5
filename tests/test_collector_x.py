"""The X collector: tweepy's Client against a local fake of the X API v2, stored through the pipeline."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from monitor.clock import ManualClock
from monitor.collectors.budget import ReadBudget
from monitor.collectors.x import XCollector, XCursor, build_query
from monitor.models import Metrics
from monitor.pipeline.collect import BACKOFF_FIRST
from monitor.store.repository import Store
from tests import collecting
from tests.collecting import stored
from tests.fakes.x import LOOKUP, SEARCH, FakeX
from tests.support import BRAND, OWN_HANDLE, T0

TOKEN = "test-bearer-token-5f2a9c"
OWN = {"x": {OWN_HANDLE}}


@pytest.fixture
def clock():
    return ManualClock(T0)


@pytest.fixture
def fake(clock):
    api = FakeX(clock, bearer_token=TOKEN)
    yield api
    api.close()


@pytest.fixture
def make_collector(fake, clock, sqlite_store):
    def make(store: Store = sqlite_store, budget: int = 100_000, pages_per_run: int = 10,
             timeout: float = 5.0) -> XCollector:
        return XCollector(BRAND, build_query(["acme", "@acme_care"], [OWN_HANDLE]), TOKEN,
                          ReadBudget(store, "x", budget, clock), clock, pages_per_run=pages_per_run,
                          timeout=timeout, base_url=fake.url)

    return make


def run(collector: XCollector, store: Store, clock: ManualClock):
    return collecting.run(collector, store, clock, OWN)


def drain(collector: XCollector, store: Store, clock: ManualClock) -> int:
    return collecting.drain(collector, store, clock, OWN)


def since_ids(fake: FakeX) -> list[str | None]:
    return [r.arg("since_id") for r in fake.requests_to(SEARCH)]


def test_query_has_terms_own_accounts_and_no_reposts():
    assert build_query(["acme", "acme fiber"], ["@acme_care"]) == '(acme OR "acme fiber" OR from:acme_care) -is:retweet'


def test_collects_normalised_mentions_and_the_brands_own_replies(fake, make_collector, sqlite_store, clock):
    fake.user("bigvoice", followers=250_000, verified=True)
    complaint = fake.post("acme internet down again", "bigvoice", lang="nl",
                          metrics={"retweet_count": 3, "like_count": 7, "quote_count": 1, "impression_count": 900})
    reply = fake.post("@bigvoice sorry, we are looking into it", OWN_HANDLE, T0 + timedelta(minutes=4),
                      reply_to=complaint)
    fake.post("unrelated chatter", "someone")
    und = fake.post("acme ?? !!", "someone", lang="und")
    media_only = fake.post("acme https://t.co/abc", "someone", lang="qme")

    run(make_collector(), sqlite_store, clock)

    rows = stored(sqlite_store)
    assert set(rows) == {complaint, reply, und, media_only}
    assert rows[complaint] == {
        "text": "acme internet down again", "handle": "bigvoice", "author_id": fake.tweets[int(complaint)]["author_id"],
        "followers": 250_000, "verified": True, "lang": "nl", "url": f"https://x.com/bigvoice/status/{complaint}",
        "conversation_id": complaint, "in_reply_to": None, "is_brand_reply": False, "created_at": T0}
    assert rows[reply]["is_brand_reply"] and rows[reply]["in_reply_to"] == complaint
    assert rows[reply]["conversation_id"] == complaint
    assert rows[und]["lang"] is None and rows[media_only]["lang"] is None  # X's "und", "qme": no language
    mention_id = next(m.id for m in sqlite_store.mentions(range(1, 10)) if m.external_id == complaint)
    assert sqlite_store.latest_metrics(mention_id) == Metrics(reposts=3, replies=0, likes=7, quotes=1, views=900)
    request = fake.requests_to(SEARCH)[0]
    assert request.arg("expansions") == "author_id"
    assert {"created_at", "public_metrics", "lang", "conversation_id", "referenced_tweets"} <= set(
        request.arg("tweet.fields").split(","))
    assert {"public_metrics", "verified"} <= set(request.arg("user.fields").split(","))
    assert request.arg("since_id") is None  # the first run takes what recent search still has


def test_a_tweet_cut_inside_an_emoji_is_stored_with_the_rest_of_its_page(fake, make_collector, sqlite_store, clock):
    # The body carries the half emoji as a lone "\\ud83d" escape, as X's truncated texts do.
    cut = fake.post("acme router down again \ud83d", "someone")
    whole = fake.post("acme fine today", "someone else")
    drain(make_collector(), sqlite_store, clock)
    texts = {key: row["text"] for key, row in stored(sqlite_store).items()}
    assert texts == {cut: "acme router down again \ufffd", whole: "acme fine today"}


def test_since_id_continues_across_restarts(fake, make_collector, sqlite_store, clock):
    first = [fake.post(f"acme post {i}", f"user{i}") for i in range(3)]
    run(make_collector(), sqlite_store, clock)
    assert json.loads(sqlite_store.cursor("x", BRAND)) == {"since_id": first[-1]}

    later = [fake.post(f"acme later {i}", f"user{i}") for i in range(2)]
    reopened = Store.open(str(sqlite_store.engine.url))  # a restart: new store, new collector
    try:
        clock.advance(minutes=1)
        report = run(make_collector(store=reopened), reopened, clock)
        assert len(report.new_ids) == 2 and report.seen_again == 0
        assert since_ids(fake) == [None, first[-1]]
        assert set(stored(reopened)) == set(first + later)
    finally:
        reopened.close()


def test_pagination_over_many_pages_and_posts_arriving_meanwhile(fake, make_collector, sqlite_store, clock):
    backlog = [fake.post(f"acme #{i}", f"user{i % 40}") for i in range(1000)]
    collector = make_collector(pages_per_run=3)

    first = run(collector, sqlite_store, clock)
    assert first.more and len(first.new_ids) == 300
    cursor = XCursor.parse(sqlite_store.cursor("x", BRAND))
    assert cursor.since_id is None and cursor.newest_id == backlog[-1] and cursor.next_token

    arrived = [fake.post(f"acme new {i}", "latecomer") for i in range(5)]  # while the backlog drains
    runs = drain(collector, sqlite_store, clock)
    assert sqlite_store.count_mentions() == 1000
    assert XCursor.parse(sqlite_store.cursor("x", BRAND)) == XCursor(since_id=backlog[-1])
    assert runs == 3  # 300 + 300 + 300 + 100 posts, the first run above included

    run(collector, sqlite_store, clock)
    assert sqlite_store.count_mentions() == 1005 and set(arrived) <= set(stored(sqlite_store))
    assert len(fake.requests_to(SEARCH)) == 11
    assert all(r.arg("max_results") == "100" for r in fake.requests_to(SEARCH))


def test_overlapping_pages_store_each_post_once(fake, make_collector, sqlite_store, clock):
    fake.overlap = True
    posts = [fake.post(f"acme overlap {i}", "someone") for i in range(250)]
    report = run(make_collector(), sqlite_store, clock)
    assert len(fake.requests_to(SEARCH)) == 3  # 100 + 100 (one repeated) + 52 (one repeated)
    assert len(report.new_ids) == 250 and set(stored(sqlite_store)) == set(posts)


def test_daily_read_budget_stops_collection_until_the_next_day(fake, make_collector, sqlite_store, clock):
    for i in range(400):
        fake.post(f"acme budget {i}", "someone")
    collector = make_collector(budget=250)

    run(collector, sqlite_store, clock)  # 2 pages of 100, then a page of 50 fits the budget left
    run(collector, sqlite_store, clock)
    assert sqlite_store.count_mentions() == 250
    assert sqlite_store.reads_on("x", T0.date().isoformat()) == 250
    health = sqlite_store.source_health("x", BRAND)
    midnight = datetime(2026, 11, 24, tzinfo=timezone.utc)
    assert health.paused_until == midnight and health.pause_reason == "daily read budget"

    requests_before = len(fake.requests)
    clock.advance(hours=3)
    run(collector, sqlite_store, clock)
    assert len(fake.requests) == requests_before  # no read spent while the budget is used up

    clock.set(midnight + timedelta(minutes=1))
    drain(collector, sqlite_store, clock)
    assert sqlite_store.count_mentions() == 400
    assert sqlite_store.reads_on("x", "2026-11-24") == 150


def test_429_skips_runs_until_the_rate_limit_resets(fake, make_collector, sqlite_store, clock, caplog):
    fake.post("acme first", "someone")
    collector = make_collector()
    run(collector, sqlite_store, clock)
    cursor = sqlite_store.cursor("x", BRAND)
    fake.post("acme second", "someone")
    fake.fail("429")

    with caplog.at_level(logging.WARNING):
        report = run(collector, sqlite_store, clock)
    assert report.new_ids == ()
    reset = fake.windows[SEARCH].reset
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "rate limit" in warnings[0] and reset.isoformat(timespec="seconds") in warnings[0]
    health = sqlite_store.source_health("x", BRAND)
    assert health.paused_until == reset and health.pause_reason == "rate limited"
    assert sqlite_store.cursor("x", BRAND) == cursor

    calls = len(fake.requests)
    clock.set(reset - timedelta(seconds=1))
    run(collector, sqlite_store, clock)
    assert len(fake.requests) == calls  # skipped without asking X

    clock.set(reset)
    run(collector, sqlite_store, clock)
    assert sqlite_store.count_mentions() == 2
    assert sqlite_store.source_health("x", BRAND).paused_until is None


def test_a_spent_window_pauses_before_x_refuses(fake, make_collector, sqlite_store, clock):
    fake.window_limit = 2
    for i in range(500):
        fake.post(f"acme window {i}", "someone")
    collector = make_collector()

    report = run(collector, sqlite_store, clock)
    assert len(report.new_ids) == 200 and not report.more  # the next page waits for the window
    health = sqlite_store.source_health("x", BRAND)
    assert health.pause_reason == "rate limited" and health.paused_until == fake.windows[SEARCH].reset
    assert all(r.path == SEARCH for r in fake.requests) and len(fake.requests) == 2  # no 429 provoked

    clock.set(health.paused_until)
    drain(collector, sqlite_store, clock)
    clock.set(sqlite_store.source_health("x", BRAND).paused_until)
    drain(collector, sqlite_store, clock)
    assert sqlite_store.count_mentions() == 500


@pytest.mark.parametrize("fault, kind, says", [
    ("500", "server_error", "500"),
    ("503", "server_error", "503"),
    ("not_json", "bad_response", "not valid JSON"),
    ("truncated", "bad_response", "not valid JSON"),
    ("reset", "connection", "ConnectionResetError"),
    ("hang", "timeout", "timed out"),
])
def test_fault_keeps_the_cursor_and_retries_after_back_off(fault, kind, says, fake, make_collector, sqlite_store,
                                                           clock, caplog):
    fake.post("acme before", "someone")
    # The timeout is what turns a hung server into a fault; only the hang test waits for it.
    collector = make_collector(timeout=0.5 if fault == "hang" else 5.0)
    run(collector, sqlite_store, clock)

    def inject():
        fake.post("acme during", "someone")
        fake.fail(fault)

    collecting.check_fault_and_recovery(collector, sqlite_store, clock, OWN, fake, caplog, inject, kind, says)
    assert TOKEN not in caplog.text


def test_back_off_grows_with_each_failure_in_a_row(fake, make_collector, sqlite_store, clock):
    collector = make_collector()
    fake.fail("503", times=3)
    gaps = []
    for _ in range(3):
        run(collector, sqlite_store, clock)
        health = sqlite_store.source_health("x", BRAND)
        gaps.append(health.paused_until - clock.now())
        clock.set(health.paused_until)
    assert gaps == [BACKOFF_FIRST, 2 * BACKOFF_FIRST, 4 * BACKOFF_FIRST]
    assert sqlite_store.source_health("x", BRAND).failures == 3


def test_fault_on_a_later_page_stores_nothing_of_the_run_and_loses_nothing(fake, make_collector, sqlite_store,
                                                                           clock):
    posts = [fake.post(f"acme paged {i}", "someone") for i in range(250)]
    collector = make_collector()
    fake.fail("500", path=SEARCH, after=1)

    run(collector, sqlite_store, clock)
    assert sqlite_store.count_mentions() == 0 and sqlite_store.cursor("x", BRAND) is None

    clock.advance(seconds=BACKOFF_FIRST.total_seconds())
    run(collector, sqlite_store, clock)
    assert set(stored(sqlite_store)) == set(posts)


def test_error_answers_never_show_the_bearer_token(fake, clock, sqlite_store, caplog):
    collector = XCollector(BRAND, build_query(["acme"], []), "wrong-token-9a8b7c", ReadBudget(sqlite_store, "x", 100, clock),
                           clock, base_url=fake.url)
    with caplog.at_level(logging.INFO):
        run(collector, sqlite_store, clock)
    health = sqlite_store.source_health("x", BRAND)
    assert "401" in health.last_error and "bearer token" in health.last_error
    assert "wrong-token-9a8b7c" not in health.last_error and "wrong-token-9a8b7c" not in caplog.text


def test_deleted_posts_are_left_out_and_an_edit_is_the_same_post(fake, make_collector, sqlite_store, clock):
    kept = fake.post("acme keeps this", "someone")
    gone = fake.post("acme regrets this", "someone")
    fake.delete(gone)
    collector = make_collector()
    run(collector, sqlite_store, clock)
    assert set(stored(sqlite_store)) == {kept}

    new_version = fake.edit(kept, "acme keeps this (edited)")
    clock.advance(minutes=1)
    report = run(collector, sqlite_store, clock)
    assert report.new_ids == () and report.seen_again == 1
    assert XCursor.parse(sqlite_store.cursor("x", BRAND)).since_id == new_version

    fake.delete(kept)
    updates = collector.refresh_metrics([kept, gone])
    assert updates == []


def test_missing_fields_get_defaults_and_posts_without_text_are_left_out(fake, make_collector, sqlite_store, clock,
                                                                         caplog):
    fake.user("ghost", drop=("public_metrics", "verified"))
    bare = fake.post("acme without extras", "ghost", drop=("public_metrics", "lang", "conversation_id"))
    fake.post("acme without a date", "someone", drop=("created_at",))
    orphan = fake.post("acme by a vanished author", "vanished")
    del fake.users[fake.tweets[int(orphan)]["author_id"]]

    with caplog.at_level(logging.WARNING):
        run(make_collector(), sqlite_store, clock)
    rows = stored(sqlite_store)
    assert set(rows) == {bare, orphan}
    assert rows[bare]["followers"] == 0 and rows[bare]["lang"] is None and rows[bare]["conversation_id"] is None
    assert rows[orphan]["handle"] == fake.tweets[int(orphan)]["author_id"]
    assert [r.getMessage() for r in caplog.records] == [
        "X returned 1 post(s) without id, text or created_at; left out"]


def test_refresh_metrics_looks_up_tweets_in_batches_of_100(fake, make_collector, sqlite_store, clock):
    posts = [fake.post(f"acme metrics {i}", "someone") for i in range(250)]
    collector = make_collector()
    fake.set_metrics(posts[7], retweet_count=12, like_count=40, reply_count=2)
    fake.delete(posts[9])

    clock.advance(minutes=5)
    updates = collector.refresh_metrics(posts)
    lookups = fake.requests_to(LOOKUP)
    assert [len(r.arg("ids").split(",")) for r in lookups] == [100, 100, 50]
    assert all(r.arg("tweet.fields") == "public_metrics" for r in lookups)
    by_id = {u.external_id: u for u in updates}
    assert len(by_id) == 249 and posts[9] not in by_id
    assert by_id[posts[7]].metrics == Metrics(reposts=12, replies=2, likes=40)
    assert by_id[posts[7]].observed_at == clock.now() and by_id[posts[7]].source == "x"
    assert sqlite_store.reads_on("x", T0.date().isoformat()) == 249


@pytest.mark.parametrize("fault", ["429", "503", "truncated"])
def test_refresh_metrics_fault_is_one_source_fault(fault, fake, make_collector, clock):
    from monitor.collectors.base import SourceFault

    post = fake.post("acme refresh", "someone")
    fake.fail(fault, path=LOOKUP)
    with pytest.raises(SourceFault) as caught:
        make_collector().refresh_metrics([post])
    assert caught.value.kind == {"429": "rate_limited", "503": "server_error", "truncated": "bad_response"}[fault]


def test_refresh_metrics_beyond_the_budget_is_refused(fake, make_collector, clock):
    from monitor.collectors.base import SourceFault

    posts = [fake.post(f"acme {i}", "someone") for i in range(20)]
    with pytest.raises(SourceFault) as caught:
        make_collector(budget=10).refresh_metrics(posts)
    assert caught.value.kind == "budget" and fake.requests_to(LOOKUP) == []
