"""The weekly digest's chart, HTML report and Slack post, from a known history."""

from __future__ import annotations

from datetime import timedelta

import yaml
from typer.testing import CliRunner

from monitor.cli import app
from monitor.models import EscalationState
from monitor.store.repository import Store
from tests.fakes.slack import TOKEN
from tests.slacking import fake_slack  # noqa: F401 - fixture
from tests.support import T0, config_dict
from tests.test_slack import alert_payload, open_escalation

# T0 is Monday 2026-11-23 10:00 UTC, in ISO week 2026-W48.


def known_history(store: Store) -> None:
    """Three high escalations: claimed after 10 and 20 minutes (one resolved: useful), and one dismissed unclaimed."""
    a, b, c = (open_escalation(store, alert_payload(), n) for n in range(3))
    store.transition(a, EscalationState.claimed, "Sanne", T0 + timedelta(minutes=10))
    store.transition(a, EscalationState.resolved, "Sanne", T0 + timedelta(hours=1))
    store.transition(b, EscalationState.claimed, "Daan", T0 + timedelta(minutes=20))
    store.transition(c, EscalationState.dismissed, "Sanne", T0 + timedelta(minutes=5))


def test_digest_week_writes_the_html_report_and_sends_the_chart(fake_slack, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    db = f"sqlite:///{tmp_path / 'digest.db'}"
    store = Store.open(db)
    try:
        known_history(store)
    finally:
        store.close()
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config_dict(
        storage={"url": db}, digest={"output_dir": "out"},
        slack={"enabled": True, "base_url": fake_slack.api_url, "channel": "#webcare"})), encoding="utf-8")

    result = CliRunner().invoke(app, ["digest", "--week", "2026-W48", "--send", "-c", str(path)])
    assert result.exit_code == 0, result.output
    report = tmp_path / "out" / "digest-2026-W48.html"
    html = report.read_text(encoding="utf-8")
    assert "3 escalations · claim median 15 min (p90 20 min)" in html
    assert "SLA breaches: 1 claim" in html  # the 20-minute claim missed the 15-minute promise
    assert "false positives 50%" in html and 'src="data:image/png;base64,iVBOR' in html
    (upload,) = fake_slack.uploads.values()
    assert upload["content"].startswith(b"\x89PNG") and upload["channel"] == "C0WEB"
    assert upload["filename"] == "digest-2026-W48.png"
    assert upload["comment"].startswith("*Escalation digest 2026-W48*\n3 escalations")


def test_digest_send_without_slack_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config_dict(storage={"url": f"sqlite:///{tmp_path / 'd.db'}"})), encoding="utf-8")
    result = CliRunner().invoke(app, ["digest", "--send", "-c", str(path)])
    assert result.exit_code == 2
    assert result.output.strip() == "--send: slack.enabled is false in the configuration"
