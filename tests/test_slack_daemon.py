"""`escalation-monitor run` with Slack configured, as a process: it connects Socket Mode (to the
fake), takes clicks while it runs, and on SIGTERM closes the listener and exits 0."""

from __future__ import annotations

import signal

import pytest
import yaml
from typer.testing import CliRunner

from monitor.cli import app

from tests.fakes.slack import APP_TOKEN, TOKEN
from tests.slacking import fake_slack, socket_fake  # noqa: F401 - fixtures
from tests.support import config_dict
from tests.test_restart import daemons  # noqa: F401 - fixture


def test_run_with_slack_listens_over_socket_mode_and_stops_cleanly(daemons, fake_slack, socket_fake, tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(config_dict(
        storage={"url": f"sqlite:///{tmp_path / 'daemon.db'}"},
        slack={"enabled": True, "base_url": fake_slack.api_url, "channel": "#webcare"})), encoding="utf-8")
    runner = daemons(config)
    runner.env.update(SLACK_BOT_TOKEN=TOKEN, SLACK_APP_TOKEN=APP_TOKEN)
    proc = runner.start()
    runner.wait_for_log(proc, "scheduler started")
    assert "socket mode connected" in runner.stderr() and socket_fake.connections == 1

    # A click reaches the daemon: acknowledged, then handled (an unknown escalation is logged and ignored).
    socket_fake.wait_for_ack(socket_fake.send_interaction({
        "type": "block_actions", "user": {"id": "U01SANNE"},
        "actions": [{"action_id": "escalation_claim", "block_id": "escalation:999", "value": "999"}]}))
    runner.wait_for_log(proc, "click ignored escalation=999")

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, runner.stderr()[-3000:]
    assert "scheduler stopped" in runner.stderr() and "Traceback" not in runner.stderr()
    assert "socket mode disconnected" in runner.stderr()
    socket_fake.wait_for_disconnect()


@pytest.mark.parametrize("app_token, line", [
    (None, "slack: environment variable SLACK_APP_TOKEN (app-level token for Socket Mode) is not set"),
    ("xapp-wrong", "slack: Socket Mode cannot connect with the token in SLACK_APP_TOKEN (invalid_auth)"),
])
def test_run_with_a_bad_app_token_is_one_line(fake_slack, socket_fake, tmp_path, monkeypatch, app_token, line):
    monkeypatch.setenv("COLUMNS", "500")
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    if app_token is None:
        monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    else:
        monkeypatch.setenv("SLACK_APP_TOKEN", app_token)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(config_dict(
        storage={"url": f"sqlite:///{tmp_path / 'daemon.db'}"},
        slack={"enabled": True, "base_url": fake_slack.api_url, "channel": "#webcare"})), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "-c", str(config)])
    assert result.exit_code == 2
    assert [x for x in result.stderr.splitlines() if x.strip()] == [line]
    assert socket_fake.connections == 0
