"""Source health across the system: `status`, the daemon's jobs around a failing source, the
engagement re-poll around a failing source, and the configured X collector end to end."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
import yaml
from typer.testing import CliRunner

from monitor.cli import app
from monitor.clock import ManualClock, SystemClock
from monitor.collectors.base import SourceFault
from monitor.collectors.budget import ReadBudget
from monitor.collectors.replay import ReplayCollector
from monitor.collectors.x import XCollector, build_query
from monitor.config import EngagementConfig, parse_config
from monitor.daemon import Daemon
from monitor.models import Metrics
from monitor.notifiers.console import ConsoleNotifier
from monitor.pipeline import Pipeline
from monitor.pipeline.engagement import repoll_due
from monitor.scenario import Scenario
from monitor.source_status import source_statuses
from monitor.store.repository import Store
from tests.fakes.x import SEARCH, FakeX
from tests.support import BRAND, OWN_HANDLE, T0, build_config, build_mention, config_dict, scenario_post

TOKEN = "status-test-token-77f1"


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")
    return CliRunner()


def test_status_rows_show_health_posts_and_cursor(sqlite_store):
    now = T0
    sqlite_store.ingest("x", BRAND, [build_mention("1"), build_mention("2")], '{"since_id": "2"}',
                        own_accounts={}, now=now - timedelta(minutes=10))
    sqlite_store.ingest("x", BRAND, [build_mention("0")], '{"since_id": "2"}', own_accounts={},
                        now=now - timedelta(hours=2))
    sqlite_store.record_source_success("x", BRAND, now - timedelta(minutes=10), None, None)
    sqlite_store.record_source_failure("x", BRAND, now - timedelta(minutes=1), "X rate limit reached on search (429)",
                                       now + timedelta(minutes=14), "rate limited")
    sqlite_store.record_source_failure("reddit", BRAND, now - timedelta(minutes=3), "Reddit timed out",
                                       now - timedelta(minutes=2), "back-off")

    rows = {r.source: r for r in source_statuses(sqlite_store, now)}
    x = rows["x"]
    assert x.state == "rate limited until 2026-11-23T10:14:00+00:00 (1 failure in a row)"
    assert x.last_success_at == now - timedelta(minutes=10) and x.last_error.startswith("X rate limit")
    assert x.posts_last_hour == 2 and x.cursor == '{"since_id": "2"}'
    assert rows["reddit"].state == "failing (1 in a row), retrying" and rows["reddit"].cursor is None


def test_status_command_prints_each_source(runner, tmp_path):
    url = f"sqlite:///{tmp_path / 'status.db'}"
    store = Store.open(url)
    now = SystemClock().now()
    store.ingest("x", BRAND, [build_mention("1")], '{"since_id": "1"}', own_accounts={}, now=now)
    store.record_source_failure("x", BRAND, now, "X search failed with 503 (server error)",
                                now + timedelta(minutes=5), "back-off")
    store.add_reads("x", now.date().isoformat(), 120)
    store.close()
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config_dict(storage={"url": url}, sources={"x": {"enabled": True}})),
                    encoding="utf-8")

    result = runner.invoke(app, ["status", "--config", str(path)], env={"X_BEARER_TOKEN": "t0ken-value"})
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "│ x " in line)
    assert "back-off until" in line and "X search failed with 503 (server error)" in line and "│ 1 " in line
    assert "x reads today (UTC): 120 of 10000" in result.output


def test_x_rate_limit_storm_holds_up_no_other_collector(sqlite_store, scenario_file):
    clock = ManualClock(T0)
    fake = FakeX(clock, bearer_token=TOKEN)
    try:
        fake.fail("429", times=1000)
        x = XCollector(BRAND, build_query(["acme"], [OWN_HANDLE]), TOKEN, ReadBudget(sqlite_store, "x", 1000, clock),
                       clock, base_url=fake.url)
        assert x.client.wait_on_rate_limit is False
        scenario = Scenario.load(scenario_file([scenario_post(f"r{i}", f"acme post {i}", T0) for i in range(3)]))
        collectors = {"x:Acme": x, "replay": ReplayCollector(scenario, BRAND, clock)}
        pipeline = Pipeline(build_config(), sqlite_store, clock, ConsoleNotifier(), collectors)
        daemon = Daemon(pipeline, with_cron_jobs=False)

        daemon.run_once()
        for _ in range(5):  # the scheduler's next runs of the X job
            clock.advance(minutes=1)
            daemon.collect_cycle("x:Acme")
        assert len(fake.requests_to(SEARCH)) == 1  # one 429, then runs skipped until the reset
        assert sqlite_store.count_mentions() == 3  # the replay source collected regardless
        assert sqlite_store.source_health("x", BRAND).pause_reason == "rate limited"
    finally:
        fake.close()


class FailingRefresh:
    """A collector whose re-poll always fails (as an X 429 would)."""

    source = "flaky"
    brand = BRAND
    sources = frozenset({"x"})

    def collect(self, cursor):
        raise AssertionError("not collected in this test")

    def refresh_metrics(self, external_ids):
        raise SourceFault("rate_limited", "X rate limit reached on tweet lookup (429)")


def test_failed_repoll_keeps_the_posts_watched(sqlite_store, caplog):
    clock = ManualClock(T0)
    sqlite_store.ingest("x", BRAND, [build_mention("1", metrics=Metrics(likes=1))], None, own_accounts={}, now=T0)
    mention = sqlite_store.mentions([1])[0]
    sqlite_store.set_watch({mention.id: T0})

    with caplog.at_level(logging.WARNING):
        assert repoll_due(sqlite_store, {"x": FailingRefresh()}, clock, EngagementConfig()) == 0
    assert [r.getMessage() for r in caplog.records] == [
        "re-poll failed source=x kind=rate_limited: X rate limit reached on tweet lookup (429)"]
    assert [m.id for m in sqlite_store.due_for_repoll(T0)] == [mention.id]


def test_once_collects_from_x_and_never_logs_the_token(runner, tmp_path):
    fake = FakeX(SystemClock(), bearer_token=TOKEN)
    try:
        fake.post("acme is down again", "customer")
        fake.post("@customer we are on it", OWN_HANDLE)
        raw = config_dict(storage={"url": f"sqlite:///{tmp_path / 'once.db'}"},
                          sources={"x": {"enabled": True, "base_url": fake.url, "interval_seconds": 60}})
        path = tmp_path / "cfg.yaml"
        path.write_text(yaml.safe_dump(raw), encoding="utf-8")

        result = runner.invoke(app, ["once", "--config", str(path), "--verbose"], env={"X_BEARER_TOKEN": TOKEN})
        assert result.exit_code == 0, result.output
        assert "collected source=x brand=Acme new=2" in result.stderr
        assert "Bearer ***" in result.stderr  # tweepy's debug line, masked
        assert TOKEN not in result.output and TOKEN not in result.stderr
        store = Store.open(raw["storage"]["url"])
        try:
            assert store.count_mentions() == 2
        finally:
            store.close()
    finally:
        fake.close()


def test_one_collector_per_enabled_source_and_brand_with_terms_there(sqlite_store):
    from monitor.collectors.build import build_collectors

    raw = config_dict(sources={"x": {"enabled": True}, "reddit": {"enabled": True, "subreddits": ["acme"]},
                               "news": {"enabled": True, "feeds": [{"name": "nos", "url": "https://nos.example/rss"},
                                                                   {"name": "gn", "url": "https://gn.example/rss"}]},
                               "mastodon": {"enabled": True, "instances": [
                                   {"url": "https://mastodon.example", "access_token_env": "MASTODON_TOKEN"},
                                   {"url": "https://social.example"}]},
                               "bluesky": {"enabled": True}})
    raw["brands"].append({"name": "Other", "search_terms": {"reddit": ["other"], "news": ["other"],
                                                            "mastodon": ["#other", "other"], "bluesky": ["other"]},
                          "own_accounts": {"bluesky": ["other.bsky.social"]}})
    env = {"X_BEARER_TOKEN": "x-token", "REDDIT_CLIENT_ID": "id", "REDDIT_CLIENT_SECRET": "secret",
           "MASTODON_TOKEN": "m-token"}
    config = parse_config(raw, env)
    collectors = build_collectors(config, sqlite_store, ManualClock(T0), env)
    # Acme has terms for x only; one collector per news feed and per Mastodon instance.
    assert sorted(collectors) == ["bluesky:Other", "mastodon:mastodon.example:Other", "mastodon:social.example:Other",
                                  "news:gn:Other", "news:nos:Other", "reddit:Other", "x:Acme"]
    assert {(c.source, c.brand) for c in collectors.values()} == {
        ("x", "Acme"), ("reddit", "Other"), ("news:nos", "Other"), ("news:gn", "Other"),
        ("mastodon:mastodon.example", "Other"), ("mastodon:social.example", "Other"), ("bluesky", "Other")}
    assert collectors["bluesky:Other"].queries == ["other", "from:other.bsky.social"]
    assert collectors["bluesky:Other"].login is None  # no handle: the public AppView, logged out
    # Full-text search needs the instance's token; hashtags are read everywhere.
    assert collectors["mastodon:mastodon.example:Other"].searches == ["other"]
    assert collectors["mastodon:social.example:Other"].searches == []
    assert set(collectors["mastodon:social.example:Other"].peers) == {"mastodon.example", "social.example"}


@pytest.mark.parametrize("news, problem", [
    ({"enabled": True}, "sources.news: an enabled news source needs at least one entry in `feeds`"),
    ({"feeds": [{"name": "a", "url": "https://a.example"}, {"name": "a", "url": "https://b.example"}]},
     "sources.news: feed names must be unique"),
    ({"feeds": [{"name": "a b", "url": "ftp://a.example"}]}, "sources.news.feeds[0].name"),
])
def test_news_feeds_are_validated(news, problem):
    assert_problem({"news": news}, problem)


@pytest.mark.parametrize("mastodon, problem", [
    ({"enabled": True}, "sources.mastodon: an enabled mastodon source needs at least one entry in `instances`"),
    ({"enabled": True, "instances": [{"url": "https://a.example", "access_token_env": "A_TOKEN"}]},
     "sources.mastodon.instances[0].access_token_env: environment variable A_TOKEN is not set"),
    ({"instances": [{"url": "https://a.example"}, {"url": "https://a.example/"}]},
     "sources.mastodon: instance urls must be unique"),
])
def test_mastodon_instances_are_validated(mastodon, problem):
    assert_problem({"mastodon": mastodon}, problem)


def assert_problem(sources: dict, problem: str) -> None:
    from monitor.config import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_config(config_dict(sources=sources), {})
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_bluesky_logs_in_only_with_a_handle_and_its_app_password():
    from monitor.config import BlueskySourceConfig

    assert BlueskySourceConfig().service_url() == "https://public.api.bsky.app/xrpc"
    assert BlueskySourceConfig(handle="acme.bsky.social").service_url() == "https://bsky.social/xrpc"
    assert_problem({"bluesky": {"enabled": True, "handle": "acme.bsky.social"}},
                   "sources.bluesky.app_password_env: environment variable BLUESKY_APP_PASSWORD is not set")


def test_health_and_daily_reads_in_the_store(store):
    later = T0 + timedelta(minutes=5)
    store.record_source_failure("x", BRAND, T0, "X search timed out", T0 + timedelta(seconds=30), "back-off")
    store.record_source_failure("x", BRAND, later, "X search failed with 503 (server error)",
                                later + timedelta(minutes=1), "back-off")
    health = store.source_health("x", BRAND)
    assert (health.failures, health.last_error_at, health.paused_until) == (2, later, later + timedelta(minutes=1))
    store.record_source_success("x", BRAND, later + timedelta(minutes=2), None, None)
    health = store.source_health("x", BRAND)
    assert (health.failures, health.paused_until, health.last_error) == (0, None, "X search failed with 503 (server error)")
    assert store.source_health("x", "Other") is None

    assert store.add_reads("x", "2026-11-23", 100) == 100 and store.add_reads("x", "2026-11-23", 50) == 150
    assert store.reads_on("x", "2026-11-23") == 150
    assert store.add_reads("x", "2026-11-24", 10) == 10  # a new UTC day starts from zero
    assert store.reads_on("x", "2026-11-23") == 0 and store.reads_on("reddit", "2026-11-24") == 0

    store.ingest("x", BRAND, [build_mention("1")], None, own_accounts={}, now=T0)
    store.ingest("x", BRAND, [build_mention("2")], None, own_accounts={}, now=later)
    assert store.mentions_collected_since(T0 + timedelta(minutes=1)) == {("x", BRAND): 1}
