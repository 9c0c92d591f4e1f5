"""One brand on all five sources, each a local fake driven by its real client and built from the
configuration: every seeded post is stored exactly once across faults and a restart."""

from __future__ import annotations

from datetime import timedelta

import prawcore.sessions
import pytest

from monitor.clock import ManualClock
from monitor.collectors.build import build_collectors
from monitor.config import parse_config
from monitor.pipeline.collect import collect_and_store
from monitor.store.repository import Store
from tests.collecting import stored
from tests.fakes.bluesky import SEARCH as BLUESKY_SEARCH
from tests.fakes.bluesky import FakeBluesky
from tests.fakes.feeds import FakeFeeds
from tests.fakes.mastodon import FakeMastodon
from tests.fakes.reddit import FakeReddit
from tests.fakes.x import SEARCH as X_SEARCH
from tests.fakes.x import FakeX
from tests.support import BRAND, T0, config_dict

ENV = {"X_BEARER_TOKEN": "all-x-token", "REDDIT_CLIENT_ID": "all-reddit-id", "REDDIT_CLIENT_SECRET": "all-reddit-secret",
       "MASTODON_TOKEN": "all-mastodon-token", "BLUESKY_APP_PASSWORD": "all-bluesky-pass"}


@pytest.fixture
def fakes():
    clock = ManualClock(T0)
    apis = {
        "x": FakeX(clock, bearer_token=ENV["X_BEARER_TOKEN"]),
        "reddit": FakeReddit(clock, ENV["REDDIT_CLIENT_ID"], ENV["REDDIT_CLIENT_SECRET"]),
        "mastodon": FakeMastodon(clock, host="social.example", access_token=ENV["MASTODON_TOKEN"]),
        "bluesky": FakeBluesky(clock, handle="acme.bsky.social", app_password=ENV["BLUESKY_APP_PASSWORD"]),
        "news": FakeFeeds(clock),
    }
    apis["news"].feed("/rss")
    yield clock, apis
    for api in apis.values():
        api.close()


def configured(apis: dict) -> dict:
    brand = {"name": BRAND, "search_terms": {s: ["acme"] for s in ("x", "reddit", "bluesky", "news")}
             | {"mastodon": ["#acme", "acme"]},
             "own_accounts": {"x": ["acme_care"], "reddit": ["acme_official"], "mastodon": ["acme"],
                              "bluesky": ["acme.bsky.social"]}}
    return config_dict(brands=[brand], sources={
        "x": {"enabled": True, "base_url": apis["x"].url},
        "reddit": {"enabled": True, "base_url": apis["reddit"].url, "subreddits": ["acme"]},
        "mastodon": {"enabled": True, "instances": [{"url": apis["mastodon"].url, "access_token_env": "MASTODON_TOKEN"}]},
        "bluesky": {"enabled": True, "base_url": apis["bluesky"].url + "/xrpc", "handle": "acme.bsky.social"},
        # The hung feed below times out in half a second, not the default 30.
        "news": {"enabled": True, "timeout_seconds": 0.5, "feeds": [{"name": "site", "url": apis["news"].url + "/rss"}]},
    })


def seed(apis: dict, clock: ManualClock, round_: int, n: int) -> dict[str, set[str]]:
    """n posts naming the brand on every source; returns their ids as each source's collector stores them."""
    at = clock.now() - timedelta(seconds=30)
    posts: dict[str, set[str]] = {s: set() for s in apis}
    for i in range(n):
        text = f"acme round {round_} post {i}"
        stamp = at + timedelta(milliseconds=i)
        posts["x"].add(apis["x"].post(text, f"xuser{i}", stamp))
        posts["reddit"].add(apis["reddit"].submit("acme", text, at=stamp))
        posts["mastodon"].add(apis["mastodon"].post(f"#acme {text}", f"muser{i}", stamp))
        posts["bluesky"].add(apis["bluesky"].post(text, f"b{i}.bsky.social", stamp))
        posts["news"].add(apis["news"].publish("/rss", f"Acme {text}", at=stamp))
    return posts


def run_all(collectors: dict, store: Store, clock: ManualClock) -> None:
    for collector in collectors.values():
        while collect_and_store(collector, store, clock, {}).more:
            pass


def test_every_seeded_post_is_stored_once_across_faults_and_a_restart(fakes, tmp_path, monkeypatch):
    # prawcore sleeps before its retries; the retries stay, the sleeps go (the suite stays fast).
    monkeypatch.setattr(prawcore.sessions.FiniteRetryStrategy, "_sleep_seconds", lambda self: None)
    clock, apis = fakes
    config = parse_config(configured(apis), ENV)
    url = f"sqlite:///{tmp_path / 'all.db'}"
    store = Store.open(url)
    collectors = build_collectors(config, store, clock, ENV)
    assert {c.source.split(":")[0] for c in collectors.values()} == {"x", "reddit", "mastodon", "bluesky", "news"}

    seeded = seed(apis, clock, 1, 30)
    run_all(collectors, store, clock)

    clock.advance(minutes=1)
    for source, ids in seed(apis, clock, 2, 30).items():
        seeded[source] |= ids
    apis["x"].fail("503", path=X_SEARCH)
    apis["reddit"].fail("reset", times=3, path="/r/")  # praw retries twice itself
    apis["mastodon"].fail("truncated", path="/api/v1/timelines/")
    apis["bluesky"].fail("429", path=BLUESKY_SEARCH)
    apis["news"].fail("hang")
    run_all(collectors, store, clock)
    assert all(store.source_health(c.source, BRAND).failures == 1 for c in collectors.values())
    store.close()

    # A restart: a new store on the same database and collectors built afresh.
    store = Store.open(url)
    collectors = build_collectors(config, store, clock, ENV)
    clock.advance(minutes=6)  # past the back-off and Bluesky's rate-limit reset
    run_all(collectors, store, clock)
    clock.advance(minutes=1)
    for source, ids in seed(apis, clock, 3, 10).items():
        seeded[source] |= ids
    run_all(collectors, store, clock)

    rows = stored(store)
    assert store.count_mentions() == len(rows) == sum(len(ids) for ids in seeded.values()) == 5 * 70
    assert set(rows) == set().union(*seeded.values())
    assert all(store.source_health(c.source, BRAND).failures == 0 for c in collectors.values())
    store.close()

