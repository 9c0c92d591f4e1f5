"""Builds the configured collectors: one per enabled source and brand that has terms for it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import urlsplit

from monitor.clock import Clock
from monitor.collectors.base import Collector
from monitor.collectors.budget import ReadBudget, ReadCounter
from monitor.collectors.replay import ReplayCollector
from monitor.config import Config
from monitor.scenario import Scenario

log = logging.getLogger(__name__)


def build_collectors(config: Config, counter: ReadCounter, clock: Clock,
                     environ: Mapping[str, str]) -> dict[str, Collector]:
    """Name -> collector. Names are `SOURCE:BRAND` (`replay` alone); the scheduler reads the source
    from the name. Raises ScenarioError for a replay file that cannot be read."""
    sources = config.sources
    collectors: dict[str, Collector] = {}
    if sources.replay.enabled:
        scenario = Scenario.load(sources.replay.file)
        collectors["replay"] = ReplayCollector(scenario, config.brands[0].name, clock, sources.replay.batch_size)
    if sources.x.enabled:
        from monitor.collectors.x import XCollector, build_query  # imported only when used: tweepy is heavy

        x = sources.x
        budget = ReadBudget(counter, "x", x.daily_read_budget, clock)  # one budget for every brand
        for brand in _brands_on(config, "x"):
            query = build_query(brand.search_terms.get("x", []), brand.own_accounts.get("x", []))
            collectors[f"x:{brand.name}"] = XCollector(
                brand.name, query, environ[x.bearer_token_env], budget, clock, pages_per_run=x.pages_per_run,
                timeout=x.timeout_seconds, base_url=x.base_url)
    if sources.reddit.enabled:
        from monitor.collectors.reddit import RedditCollector

        reddit = sources.reddit
        for brand in _brands_on(config, "reddit"):
            collectors[f"reddit:{brand.name}"] = RedditCollector(
                brand.name, brand.search_terms.get("reddit", []), brand.own_accounts.get("reddit", []),
                reddit.subreddits, environ[reddit.client_id_env], environ[reddit.client_secret_env],
                reddit.user_agent, clock, timeout=reddit.timeout_seconds, oauth_url=reddit.base_url,
                reddit_url=reddit.base_url)
    if sources.mastodon.enabled:
        from monitor.collectors.mastodon import MastodonCollector, make_client

        mastodon = sources.mastodon
        for brand in _brands_on(config, "mastodon"):
            # A client per brand and instance: jobs run in parallel, and Mastodon.py keeps state.
            clients = [make_client(i.url, environ[i.access_token_env] if i.access_token_env else None,
                                   mastodon.timeout_seconds) for i in mastodon.instances]
            peers = {urlsplit(c.api_base_url).hostname: c for c in clients}
            for client in clients:
                collector = MastodonCollector(brand.name, client, brand.search_terms.get("mastodon", []),
                                              brand.own_accounts.get("mastodon", []), clock, peers=peers,
                                              pages_per_run=mastodon.pages_per_run)
                collectors[f"{collector.source}:{brand.name}"] = collector
    if sources.bluesky.enabled:
        from monitor.collectors.bluesky import BlueskyCollector

        bluesky = sources.bluesky
        login = (bluesky.handle, environ[bluesky.app_password_env]) if bluesky.handle else None
        for brand in _brands_on(config, "bluesky"):
            collectors[f"bluesky:{brand.name}"] = BlueskyCollector(
                brand.name, brand.search_terms.get("bluesky", []), brand.own_accounts.get("bluesky", []), clock,
                base_url=bluesky.service_url(), login=login, timeout=bluesky.timeout_seconds,
                pages_per_run=bluesky.pages_per_run)
    if sources.news.enabled:
        from monitor.collectors.news import NewsCollector

        for brand in _brands_on(config, "news"):
            for feed in sources.news.feeds:
                collectors[f"news:{feed.name}:{brand.name}"] = NewsCollector(
                    brand.name, feed.name, feed.url, brand.search_terms.get("news", []), clock,
                    timeout=sources.news.timeout_seconds)
    return collectors


def _brands_on(config: Config, source: str):
    for brand in config.brands:
        if brand.search_terms.get(source) or brand.own_accounts.get(source):
            yield brand
        else:
            log.info("brand %s has no search terms or own accounts for %s; not collected there", brand.name, source)
