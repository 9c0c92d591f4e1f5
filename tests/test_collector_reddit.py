"""The Reddit collector: praw against a local fake of Reddit's API, stored through the pipeline."""

from __future__ import annotations

import logging
from datetime import timedelta

import prawcore.sessions
import pytest

from monitor.clock import ManualClock
from monitor.collectors.base import SourceFault
from monitor.collectors.reddit import RedditCollector, parse_cursor, search_query
from monitor.models import Metrics
from monitor.store.repository import Store
from tests import collecting
from tests.collecting import stored
from tests.fakes.reddit import INFO_PATH, TOKEN_PATH, FakeReddit
from tests.support import BRAND, T0

OWN_ACCOUNT = "acme_official"
OWN = {"reddit": {OWN_ACCOUNT}}
SECRET = "reddit-secret-8c1d2e"


@pytest.fixture(autouse=True)
def no_retry_sleep(monkeypatch):
    """prawcore retries a 5xx, timeout or reset twice, sleeping 0-2 s and 2-4 s first. The retries
    stay (they are what is tested); the sleeps go, so the suite stays fast."""
    monkeypatch.setattr(prawcore.sessions.FiniteRetryStrategy, "_sleep_seconds", lambda self: None)


@pytest.fixture
def clock():
    return ManualClock(T0)


@pytest.fixture
def fake(clock):
    api = FakeReddit(clock, client_secret=SECRET)
    yield api
    api.close()


@pytest.fixture
def make_collector(fake, clock):
    fake.register(OWN_ACCOUNT)

    def make(subreddits=("thenetherlands", "acme"), terms=("acme",), own=(OWN_ACCOUNT,), timeout=5.0,
             secret=SECRET) -> RedditCollector:
        return RedditCollector(BRAND, list(terms), list(own), list(subreddits), fake.client_id, secret,
                               "escalation-monitor/test", clock, timeout=timeout, oauth_url=fake.url,
                               reddit_url=fake.url)

    return make


def run(collector: RedditCollector, store: Store, clock: ManualClock):
    return collecting.run(collector, store, clock, OWN)


def test_search_query_quotes_each_term():
    assert search_query(["acme", "acme fiber"]) == '"acme" OR "acme fiber"'


def test_collects_submissions_comments_and_the_brands_own_replies(fake, make_collector, sqlite_store, clock):
    post = fake.submit("thenetherlands", "Acme storing again?", "Third time this week", by="annoyed",
                       score=57, num_comments=0)
    elsewhere = fake.submit("cooking", "acme pans are great", by="chef")  # outside the subreddits
    chatter = fake.comment(post, "same here, no internet", by="neighbour", at=T0 + timedelta(seconds=30))
    naming = fake.comment(post, "ACME support was useless", by="neighbour", at=T0 + timedelta(seconds=40), score=4)
    reply = fake.comment(post, "Sorry! We are on it, DM us your postcode", by=OWN_ACCOUNT,
                         at=T0 + timedelta(minutes=2))

    run(make_collector(), sqlite_store, clock)

    rows = stored(sqlite_store)
    assert set(rows) == {post, naming, reply}  # the comment not naming the brand is left out
    assert chatter not in rows and elsewhere not in rows
    assert rows[post] == {
        "text": "Acme storing again?\n\nThird time this week", "handle": "annoyed", "author_id": "t2_annoyed",
        "followers": 0, "verified": False, "lang": None,
        "url": f"https://www.reddit.com/r/thenetherlands/comments/{post[3:]}/acme_storing_again/",
        "conversation_id": post, "in_reply_to": None, "is_brand_reply": False, "created_at": T0}
    assert rows[naming]["conversation_id"] == post and rows[naming]["in_reply_to"] == post
    assert rows[reply]["is_brand_reply"] and rows[reply]["in_reply_to"] == post
    post_id = next(m.id for m in sqlite_store.mentions(range(1, 10)) if m.external_id == post)
    assert sqlite_store.latest_metrics(post_id) == Metrics(likes=57, replies=3)

    search = fake.requests_to("/r/thenetherlands+acme/search/")[0]
    assert search.arg("q") == '"acme"' and search.arg("sort") == "new" and search.arg("restrict_sr") == "True"
    assert len(fake.requests_to(TOKEN_PATH)) == 1


def test_all_is_searched_without_reading_its_comment_firehose(fake, make_collector, sqlite_store, clock):
    post = fake.submit("cooking", "acme pans are great", by="chef")
    fake.comment(post, "acme indeed", by="other", at=T0 + timedelta(seconds=1))
    local = fake.submit("thenetherlands", "weer storing", by="local", at=T0 + timedelta(seconds=2))
    answer = fake.comment(local, "bij acme ook", by="other", at=T0 + timedelta(seconds=3))
    run(make_collector(subreddits=("thenetherlands", "all"), own=()), sqlite_store, clock)
    assert set(stored(sqlite_store)) == {post, answer}
    assert len(fake.requests_to("/r/all/search/")) == 1 and len(fake.requests_to("/r/thenetherlands/comments/")) == 1
    assert [r.path for r in fake.requests if "/comments/" in r.path] == ["/r/thenetherlands/comments/"]


def test_cursor_continues_across_restarts(fake, make_collector, sqlite_store, clock):
    first = fake.submit("acme", "acme one", at=T0)
    run(make_collector(), sqlite_store, clock)
    marks = parse_cursor(sqlite_store.cursor("reddit", BRAND))
    assert marks["search"].created_utc == T0.timestamp() and marks["search"].ids == (first,)

    clock.advance(minutes=5)
    second = fake.submit("acme", "acme two", at=clock.now())
    same_second = fake.submit("acme", "acme three", at=T0)  # indexed late, stamped with the old second
    reopened = Store.open(str(sqlite_store.engine.url))
    try:
        report = run(make_collector(), reopened, clock)
        assert report.seen_again == 0 and len(report.new_ids) == 2
        assert set(stored(reopened)) == {first, second, same_second}
    finally:
        reopened.close()


def test_pagination_over_many_pages_with_overlap_stores_each_once(fake, make_collector, sqlite_store, clock):
    fake.overlap = True
    posts = [fake.submit("acme", f"acme #{i}", at=T0 + timedelta(seconds=i)) for i in range(450)]
    report = run(make_collector(own=()), sqlite_store, clock)
    searches = fake.requests_to("/r/thenetherlands+acme/search/")
    assert len(searches) == 5 and searches[1].arg("after") == posts[-100]
    assert len(report.new_ids) == 450 and set(stored(sqlite_store)) == set(posts)

    clock.advance(minutes=1)
    again = run(make_collector(own=()), sqlite_store, clock)
    assert again.new_ids == () and again.seen_again == 0
    assert len(fake.requests_to("/r/thenetherlands+acme/search/")) == 6  # one page reaches the mark


def test_deleted_and_removed_posts_are_left_out(fake, make_collector, sqlite_store, clock):
    kept = fake.submit("acme", "acme kept")
    deleted = fake.submit("acme", "acme deleted", at=T0 + timedelta(seconds=1))
    removed = fake.submit("acme", "acme removed", at=T0 + timedelta(seconds=2))
    fake.delete(deleted)
    fake.remove(removed)
    collector = make_collector()
    run(collector, sqlite_store, clock)
    assert set(stored(sqlite_store)) == {kept}

    fake.delete(kept)
    assert collector.refresh_metrics([kept, deleted]) == []


def test_missing_fields_get_defaults_and_items_without_a_time_are_left_out(fake, make_collector, sqlite_store,
                                                                          clock, caplog):
    bare = fake.submit("acme", "acme bare", drop=("permalink", "score", "num_comments", "num_crossposts",
                                                  "author_fullname"))
    fake.submit("acme", "acme timeless", at=T0 + timedelta(seconds=1), drop=("created_utc",))
    with caplog.at_level(logging.WARNING):
        run(make_collector(), sqlite_store, clock)
    rows = stored(sqlite_store)
    assert set(rows) == {bare}
    assert rows[bare]["url"] is None and rows[bare]["author_id"] == "someone"
    assert [r.getMessage() for r in caplog.records] == ["Reddit returned 1 item(s) without id or created_utc; left out"]
    assert [r.path for r in fake.requests if r.path.startswith("/comments/")] == []  # praw fetched nothing more


def test_refresh_metrics_through_api_info_in_batches_of_100(fake, make_collector, sqlite_store, clock):
    posts = [fake.submit("acme", f"acme {i}", at=T0 + timedelta(seconds=i)) for i in range(150)]
    fake.things[posts[3]].update(score=99, num_comments=12, num_crossposts=2)
    clock.advance(minutes=5)
    updates = make_collector().refresh_metrics(posts)
    assert [len(r.arg("id").split(",")) for r in fake.requests_to(INFO_PATH)] == [100, 50]
    by_id = {u.external_id: u for u in updates}
    assert len(by_id) == 150
    assert by_id[posts[3]].metrics == Metrics(reposts=2, replies=12, likes=99)
    assert by_id[posts[3]].observed_at == clock.now() and by_id[posts[3]].source == "reddit"


def test_a_single_5xx_is_absorbed_by_praws_retry(fake, make_collector, sqlite_store, clock):
    post = fake.submit("acme", "acme after a hiccup")
    fake.fail("503", path="/r/")
    run(make_collector(), sqlite_store, clock)
    assert set(stored(sqlite_store)) == {post} and sqlite_store.source_health("reddit", BRAND).failures == 0


# praw retries 5xx, resets and timeouts twice itself: those faults are injected three times.
@pytest.mark.parametrize("fault, times, kind, says", [
    ("500", 3, "server_error", "500"),
    ("503", 3, "server_error", "503"),
    ("not_json", 1, "bad_response", "not valid JSON"),
    ("truncated", 1, "bad_response", "not valid JSON"),
    ("reset", 3, "connection", "connection failed"),
    ("hang", 3, "timeout", "timed out"),
])
def test_fault_keeps_the_cursor_and_retries_after_back_off(fault, times, kind, says, fake, make_collector,
                                                           sqlite_store, clock, caplog):
    fake.submit("acme", "acme before")
    collector = make_collector(timeout=0.5 if fault == "hang" else 5.0)
    run(collector, sqlite_store, clock)

    def inject():
        fake.submit("acme", "acme during", at=T0 + timedelta(seconds=5))
        fake.fail(fault, times=times, path="/r/")

    collecting.check_fault_and_recovery(collector, sqlite_store, clock, OWN, fake, caplog, inject, kind, says)


def test_429_pauses_the_source_until_reddit_says(fake, make_collector, sqlite_store, clock):
    fake.rate_reset_seconds = 1  # prawcore itself waits this long (really) before its next call
    collector = make_collector()
    fake.submit("acme", "acme rate limited")
    fake.fail("429", path="/r/")
    collecting.check_rate_limit_pause(collector, sqlite_store, clock, OWN, fake, T0 + timedelta(seconds=1))


def test_wrong_credentials_are_one_clear_line_without_the_secret(fake, make_collector, sqlite_store, clock, caplog):
    with caplog.at_level(logging.DEBUG):
        run(make_collector(secret="not-the-secret-4d5e"), sqlite_store, clock)
    health = sqlite_store.source_health("reddit", BRAND)
    assert health.last_error.startswith("Reddit refused the client credentials")
    assert "not-the-secret-4d5e" not in caplog.text and SECRET not in caplog.text


def test_refresh_fault_is_one_source_fault(fake, make_collector):
    post = fake.submit("acme", "acme")
    fake.fail("truncated", path=INFO_PATH, times=3)
    with pytest.raises(SourceFault) as caught:
        make_collector().refresh_metrics([post])
    assert caught.value.kind == "bad_response"


def test_an_own_account_that_does_not_exist_stops_nothing_else(fake, make_collector, sqlite_store, clock, caplog):
    post = fake.submit("acme", "acme still collected")
    collector = make_collector(own=("acme_typo",))
    with caplog.at_level(logging.WARNING):
        run(collector, sqlite_store, clock)
        run(collector, sqlite_store, clock)
    assert set(stored(sqlite_store)) == {post}
    assert [r.getMessage() for r in caplog.records] == [
        "Reddit account acme_typo does not exist; its comments are not collected"]  # once, not every run
    assert len([r for r in fake.requests if r.path.startswith("/user/acme_typo/")]) == 1
