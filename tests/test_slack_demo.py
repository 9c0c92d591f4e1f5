"""Issue 6's "Done when", end to end: the bundled demo scenario configured with Slack, against the
fake Web API and the fake Socket Mode server, then `digest --week` on the history it stored."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import bundled_config_dir
from monitor.demo.run import run_demo
from monitor.models import EscalationState
from monitor.notifiers.interactivity import start_listener
from monitor.notifiers.slack import SlackNotifier
from monitor.store.repository import Store
from monitor.store.schema import EscalationEventRow, FeedbackRow, OutboxRow
from tests.fakes.slack import APP_TOKEN, TOKEN, FakeSlack, Message
from tests.fakes.slack_socket import FakeSocketMode
from tests.slacking import ENV, demo_config, fake_slack, session_for, socket_fake, wait_until  # noqa: F401 - fixtures
from tests.support import T0, config_dict, small_threat_scenario, write_scenario

WEEK = "2026-W47"  # the scenario runs on Friday 2026-11-20
SANNE, DAAN, EMMA, MARIEKE = "U01SANNE", "U01DAAN", "U01EMMA", "U01MARIEKE"

# Who each alert should go to on that Friday morning, worked out by hand from config/example.yaml:
# the topic's skill first (press, regulator: Emma only; legal: Emma or Sanne; storm: Daan), else the
# source's (x: Sanne, Daan, Emma), among those who speak the language; then the lowest load (open
# or claimed escalations); then whoever was picked longest ago. The clicks below close the first two.
EXPECTED_OWNERS = {
    "@femkejanssen": EMMA,  # nl press threat ("Radar")
    "@markdevries_tech": SANNE,  # en, no topic: x; Sanne was never picked before
    "@tom_h_ams": EMMA,  # en legal: both 0 open (the first two are closed), Sanne picked more recently
    "@sophievdb": SANNE,  # en shaming, nobody's skill: x, Sanne 0 open against Emma's 1
    "Storm:": DAAN,  # the storm skill
    "@jeroen_k82": EMMA,  # nl repeat contact: x, all three 1 open, Emma picked longest ago
    "@m_elbouzidi": SANNE,  # nl legal: Sanne 1 open against Emma's 2
    "@d_meijer90": EMMA,  # nl press threat
    "@ilse_schrijft": DAAN,  # nl, no topic: x, Daan 1 open against Sanne's 2 and Emma's 3
    "@Kritische_Kees": EMMA,  # nl regulator threat (ACM)
    "@ruudtjevd": SANNE,  # nl churn, nobody's skill: x, Sanne and Daan 2 open, Sanne picked longer ago
}
# (action, minutes after the previous click or after the alert appeared), clicked by the suggested owner.
CLICKS = {
    "@femkejanssen": [("escalation_claim", 0), ("escalation_resolve", 10)],
    "@markdevries_tech": [("escalation_dismiss", 0)],
    "@m_elbouzidi": [("escalation_claim", 0), ("escalation_wait", 5), ("escalation_back", 48)],
}
OUTAGE = timedelta(minutes=5)


def body(message: Message) -> str:
    return message.blocks[0]["text"]["text"]


def suggested_owner(message: Message) -> str:
    return re.search(r"\*Suggested owner:\* <@(U\w+)>", body(message)).group(1)


def escalation_of(message: Message) -> int:
    return int(message.blocks[-1]["block_id"].split(":")[1])


class Agents:
    """Clicks the buttons of the alerts named in CLICKS, as their suggested owner, as time goes by."""

    def __init__(self, fake: FakeSlack, socket: FakeSocketMode, store: Store):
        self.fake, self.socket, self.store = fake, socket, store
        self.todo = {handle: list(clicks) for handle, clicks in CLICKS.items()}
        self.last: dict[str, datetime] = {}

    def step(self, now: datetime) -> None:
        for message in self.fake.top_level():
            handle = next((h for h in self.todo if h in body(message)), None)
            if handle is None or not self.todo[handle]:
                continue
            self.last.setdefault(handle, now)  # the alert just appeared
            action, after = self.todo[handle][0]
            if now < self.last[handle] + timedelta(minutes=after):
                continue
            self.todo[handle].pop(0)
            self.last[handle] = now
            self.click(action, escalation_of(message), suggested_owner(message))

    def click(self, action: str, escalation_id: int, user: str) -> None:
        before = len(self.events(escalation_id))
        payload = {"type": "block_actions", "user": {"id": user}, "container": {"type": "message"},
                   "actions": [{"action_id": action, "block_id": f"escalation:{escalation_id}", "type": "button",
                                "value": str(escalation_id)}]}
        self.socket.wait_for_ack(self.socket.send_interaction(payload))
        wait_until(lambda: len(self.events(escalation_id)) > before)

    def events(self, escalation_id: int) -> list[tuple[str, str | None]]:
        with self.store.session() as s:
            return [(e.action, e.actor) for e in s.scalars(select(EscalationEventRow).where(
                EscalationEventRow.escalation_id == escalation_id).order_by(EscalationEventRow.id))]


def test_demo_with_slack_meets_the_issue(fake_slack, socket_fake, tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    watcher = Store.open(db)  # the test's own view of the history the demo writes
    session = session_for(demo_config(fake_slack))
    agents = Agents(fake_slack, socket_fake, watcher)
    fake_slack.down_at_first_post = True
    outage: dict = {}

    def on_step(now: datetime) -> None:
        # Slack goes down at the first alert (during the last step) and comes back five minutes later.
        if fake_slack.refused and "start" not in outage:
            outage["start"] = now
        if "start" in outage:
            fake_slack.down = now < outage["start"] + OUTAGE
            if not fake_slack.down and "refused" not in outage:
                outage["refused"] = fake_slack.refused
        if not fake_slack.down:
            agents.step(now)

    try:
        summary = run_demo(session.config, notifier=SlackNotifier(session), on_step=on_step, storage_url=db,
                           interactivity=lambda store, clock: start_listener(
                               session.config, session.client, store, clock, ENV | {"SLACK_APP_TOKEN": APP_TOKEN}))
        with watcher.session() as s:
            sent_alerts = {r.message_ts: r.escalation_id for r in s.scalars(
                select(OutboxRow).where(OutboxRow.kind == "new"))}
            labels = [(f.escalation_id, f.label) for f in s.scalars(select(FeedbackRow))]
            unsent = s.scalar(select(OutboxRow.id).where(OutboxRow.state != "sent").limit(1))
        escalations = {e.id: e for e in watcher.escalations_between(datetime(2026, 11, 1, tzinfo=timezone.utc),
                                                                   datetime(2026, 12, 1, tzinfo=timezone.utc))}
        clicked = {h: next(m for m in fake_slack.top_level() if h in body(m)) for h in CLICKS}
        events = {h: agents.events(sent_alerts[m.ts]) for h, m in clicked.items()}
    finally:
        watcher.close()
    assert (summary.mentions, summary.alerts, summary.true_positives, summary.false_positives) == (335, 11, 53, 0)

    # One message per escalation, none lost in the outage and none sent twice.
    top = fake_slack.top_level()
    assert len(top) == len(sent_alerts) == summary.alerts and unsent is None
    assert {m.ts for m in top} == set(sent_alerts)
    assert outage["refused"] == fake_slack.refused >= 2  # every call in the five minutes was refused

    # The right suggested owner on each.
    owners = {next(k for k in EXPECTED_OWNERS if k in body(m)): suggested_owner(m)
              for m in top}
    assert owners == EXPECTED_OWNERS

    # Updates instead of duplicates: the storm is one message, rewritten as it grew, each change in its thread.
    (storm,) = [m for m in top if "Storm:" in m.text]
    storm_updates = [r.text for r in fake_slack.replies(storm.ts) if r.text.startswith("Update: ")]
    assert len(storm_updates) == len(storm.updates) >= 5
    replies = [r.text for m in top for r in fake_slack.replies(m.ts)]
    assert sum(r.startswith("Update: ") for r in replies) == summary.updates

    # claim → resolve and dismiss, from clicks over Socket Mode.
    first, second = clicked["@femkejanssen"], clicked["@markdevries_tech"]
    assert [e for e in events["@femkejanssen"] if e[0] in ("claimed", "resolved")] == [
        ("claimed", "Emma"), ("resolved", "Emma")]
    assert escalations[sent_alerts[first.ts]].state is EscalationState.resolved
    assert "*Resolved by* <@U01EMMA>" in str(first.blocks) and first.blocks[-1]["type"] == "context"
    assert [r.text for r in fake_slack.replies(first.ts) if "by <@" in r.text] == [
        "Claimed by <@U01EMMA>", "Resolved by <@U01EMMA>"]
    assert escalations[sent_alerts[second.ts]].state is EscalationState.dismissed
    assert (sent_alerts[second.ts], "false_positive") in labels
    assert "*Dismissed as false positive by* <@U01SANNE>" in str(second.blocks)

    # Waiting on another department, and back: the owner stays.
    waited = clicked["@m_elbouzidi"]
    assert [e for e in events["@m_elbouzidi"] if e[0] in ("claimed", "waiting")] == [
        ("claimed", "Sanne"), ("waiting", "Sanne"), ("claimed", "Sanne")]
    assert escalations[sent_alerts[waited.ts]].owner == "Sanne"
    assert "*Back from the other department, says* <@U01SANNE>" in str(waited.blocks)

    # The SLA follow-up: an unclaimed alert reminds its owner, then the lead.
    third = next(m for m in top if "@tom_h_ams" in body(m))
    thread = [r.text for r in fake_slack.replies(third.ts)]
    assert ":alarm_clock: Not claimed within 15 min (high SLA). <@U01EMMA>, please take it." in thread
    assert ":rotating_light: Still not claimed 30 min after the alert. <@U01MARIEKE> (lead), please step in." \
        in thread

    # `digest --week` renders the chart and the HTML report from the stored history.
    raw = yaml.safe_load((bundled_config_dir() / "example.yaml").read_text(encoding="utf-8"))
    raw["storage"]["url"] = db
    raw["digest"]["output_dir"] = str(tmp_path / "reports")
    config = tmp_path / "demo.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setenv("COLUMNS", "500")
    result = CliRunner().invoke(app, ["digest", "--week", WEEK, "--json", "-c", str(config)])
    assert result.exit_code == 0, result.output
    digest = json.loads(result.output)
    assert (digest["week"], digest["total"], digest["dismissed"]) == (WEEK, 11, 1)
    assert digest["by_kind"] == {"mention": 9, "storm": 1, "repeat_contact": 1}
    assert digest["by_topic"] == {"press": 2, "legal": 2, "regulator": 1, "churn": 1, "shaming": 1, "storm": 1,
                                  "no trigger": 3}
    assert [(s["name"], s["posts"]) for s in digest["storms"]] == [("internet · storing · rood", 39)]
    # Every alert but the two clicked at once missed its claim promise; the reminders are read back.
    assert digest["claim_breaches"] == 9
    assert digest["sla_follow_ups"] == {"claim → owner": 9, "claim → lead": 6, "reply → owner": 8,
                                        "reply → lead": 5}
    assert digest["stage_hours"]["waiting on another department"] == 0.8  # the 48 minutes clicked above
    assert (tmp_path / "reports" / f"digest-{WEEK}.png").read_bytes().startswith(b"\x89PNG")
    html = (tmp_path / "reports" / f"digest-{WEEK}.html").read_text(encoding="utf-8")
    assert f"Escalation digest {WEEK}" in html and "11 escalations" in html and "data:image/png;base64" in html


def test_demo_command_posts_to_the_configured_slack_and_takes_clicks(fake_slack, socket_fake, tmp_path,
                                                                     monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    scenario = write_scenario(tmp_path / "scenario.jsonl", small_threat_scenario(T0))
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(config_dict(slack={"enabled": True, "base_url": fake_slack.api_url})),
                      encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'kept.db'}"
    command = ["demo", "--json", "-c", str(config), "--scenario", str(scenario), "--store", db]

    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["alerts"] == 2
    assert [m.channel for m in fake_slack.top_level()] == ["C0ACME", "C0ACME"]  # not printed: posted
    assert socket_fake.connections == 1  # the button listener was connected while it ran

    again = CliRunner().invoke(app, command)
    assert again.exit_code == 2
    assert again.stderr.strip() == f"--store: {db} already holds mentions; the demo needs an empty database"
