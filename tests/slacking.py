"""Shared set-up for the Slack tests: the fake Web API, a config pointing at it, a session."""

from __future__ import annotations

import time

import pytest
import yaml

from monitor.config import bundled_config_dir, parse_config
from monitor.notifiers.slack_setup import connect
from tests.fakes.slack import TOKEN, FakeSlack
from tests.fakes.slack_socket import FakeSocketMode
from tests.support import config_dict

DEMO_CHANNELS = {"webcare": "C0WEB", "webcare-glaslijn": "C0GLAS", "webcare-urgent": "C0URG"}
DEMO_USERS = {"marieke@example.org": "U01MARIEKE"}
ENV = {"SLACK_BOT_TOKEN": TOKEN}


@pytest.fixture
def fake_slack():
    fake = FakeSlack(DEMO_CHANNELS | {"webcare-acme": "C0ACME"}, DEMO_USERS)
    try:
        yield fake
    finally:
        fake.close()


@pytest.fixture
def socket_fake(fake_slack):
    """A fake Socket Mode server that `apps.connections.open` on the fake Web API points to."""
    fake = FakeSocketMode()
    fake_slack.socket_url = fake.url
    try:
        yield fake
    finally:
        fake.close()


def demo_config(fake: FakeSlack):
    """The example configuration with Slack on. Its classifier is the lexicon: the owners and
    digest figures in tests/test_slack_demo.py were worked out by hand from the lexicon's alerts
    (the default model's demo is tests/test_cli.py's)."""
    raw = yaml.safe_load((bundled_config_dir() / "example.yaml").read_text(encoding="utf-8"))
    raw["slack"].update(enabled=True, base_url=fake.api_url)
    raw["classifiers"]["sentiment_model"] = "lexicon"
    return parse_config(raw, environ=ENV)


def acme_config(fake: FakeSlack, **overrides):
    return parse_config(config_dict(slack={"enabled": True, "base_url": fake.api_url, "channel": "#webcare"},
                                    **overrides), environ=ENV)


def session_for(config):
    return connect(config, ENV)


def wait_until(predicate, timeout: float = 20) -> None:
    """Clicks are handled on the listener's thread just after their acknowledgement."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)
