"""Slack delivery with the real slack-sdk WebClient against the fake Web API on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from monitor.clock import ManualClock
from monitor.models import AlertMessage, Author, Owner, Severity
from monitor.notifiers.render import alert_to_payload
from monitor.notifiers.slack import SlackNotifier
from monitor.notifiers.slack_setup import SlackSetupError, connect
from monitor.pipeline.deliver import deliver_pending
from monitor.store.schema import OutboxRow
from tests.fakes.slack import Message
from tests.slacking import ENV, acme_config, demo_config, fake_slack, session_for  # noqa: F401 - fixture
from tests.support import BRAND, T0, build_mention

HOSTILE = ("<!channel> <!here> <@U0BOSS> <#C0SECRET> <https://evil.example|your invoice> @channel "
           "& more " + "x" * 900)


def alert_payload(text: str = "Acme broke my internet", severity: Severity = Severity.high) -> dict:
    return alert_to_payload(AlertMessage(
        escalation_id=0, kind="new", brand=BRAND, severity=severity, title="Escalation risk", source="x",
        author=Author("a1", "angry", 12000), text=text, url="https://x.example/1", reasons=("legal threat",),
        owner=Owner("Sanne", "U01SANNE", "speaks nl · skill: billing · 2 open")))


def open_escalation(store, payload: dict, n: int = 0, channel: str = "#webcare-acme") -> int:
    (mention_id,) = store.ingest("x", BRAND, [build_mention(f"s{n}")], "c", own_accounts={}, now=T0).new_ids
    return store.create_escalation(
        brand=BRAND, group_key=f"mention:{mention_id}", kind="mention", subject_mention_id=mention_id,
        storm_id=None, source="x", lang="en", severity=Severity.high, probability=0.8, reasons=["r"],
        suggested_owner="Sanne", owner_reason="r", member_ids=[mention_id], alert_payload=payload,
        channel=channel, last_alert={}, now=T0)


def outbox(store) -> list[OutboxRow]:
    with store.session() as s:
        return list(s.scalars(select(OutboxRow).order_by(OutboxRow.id)).all())


def every_text(blocks: list) -> str:
    return json.dumps(blocks, ensure_ascii=False)


# --- the message ----------------------------------------------------------------------------------

def test_alert_is_a_block_kit_message_with_buttons_and_the_owner(fake_slack, sqlite_store):
    notifier = SlackNotifier(session_for(acme_config(fake_slack)))
    open_escalation(sqlite_store, alert_payload())
    assert deliver_pending(sqlite_store, notifier, ManualClock(T0)).sent == 1
    (message,) = fake_slack.top_level()
    assert message.channel == "C0ACME"
    body = message.blocks[0]["text"]["text"]
    assert "*Suggested owner:* <@U01SANNE> (speaks nl · skill: billing · 2 open)" in body
    assert "<https://x.example/1|Open the post>" in body and "12,000 followers" in body
    actions = message.blocks[-1]
    assert [e["action_id"] for e in actions["elements"]] == ["escalation_claim", "escalation_reassign",
                                                             "escalation_resolve", "escalation_dismiss"]
    assert actions["elements"][1]["type"] == "users_select"
    assert outbox(sqlite_store)[0].message_ts == message.ts


def test_post_text_cannot_ping_or_link_anyone(fake_slack, sqlite_store):
    notifier = SlackNotifier(session_for(acme_config(fake_slack)))
    open_escalation(sqlite_store, alert_payload(HOSTILE))
    deliver_pending(sqlite_store, notifier, ManualClock(T0))
    (message,) = fake_slack.top_level()
    for text in (message.text, every_text(message.blocks)):
        for live in ("<!channel>", "<!here>", "<@U0BOSS>", "<#C0SECRET>", "<https://evil", "@channel"):
            assert live not in text
    body = message.blocks[0]["text"]["text"]
    assert "&lt;!channel&gt;" in body and "&amp; more" in body
    quoted = next(line for line in body.splitlines() if line.startswith("> "))
    # Cut to 500 characters as sent, entities included: Slack's limits count those.
    assert len(quoted[2:]) == 500 and quoted.endswith("…")


# --- delivery faults ------------------------------------------------------------------------------

def test_rate_limit_honours_retry_after_then_delivers_once(fake_slack, sqlite_store):
    notifier = SlackNotifier(session_for(acme_config(fake_slack)))
    clock = ManualClock(T0)
    open_escalation(sqlite_store, alert_payload())
    fake_slack.retry_after = 7
    assert deliver_pending(sqlite_store, notifier, clock).failed == 1
    (row,) = outbox(sqlite_store)
    assert row.next_attempt_at == T0 + timedelta(seconds=7) and "rate limited" in row.last_error
    fake_slack.retry_after = None
    clock.advance(seconds=6)
    assert deliver_pending(sqlite_store, notifier, clock).sent == 0
    clock.advance(seconds=1)
    assert deliver_pending(sqlite_store, notifier, clock).sent == 1
    clock.advance(minutes=10)
    assert deliver_pending(sqlite_store, notifier, clock).sent == 0
    assert len(fake_slack.top_level()) == 1 and len(fake_slack.requests_to("/api/chat.postMessage")) == 2


@pytest.mark.parametrize("fault", ["500", "503", "reset"])
def test_server_errors_and_resets_back_off_and_retry(fake_slack, sqlite_store, fault):
    notifier = SlackNotifier(session_for(acme_config(fake_slack)))
    clock = ManualClock(T0)
    open_escalation(sqlite_store, alert_payload())
    fake_slack.fail(fault, path="/api/chat.postMessage")
    assert deliver_pending(sqlite_store, notifier, clock).failed == 1
    assert outbox(sqlite_store)[0].next_attempt_at == T0 + timedelta(seconds=2)
    clock.advance(seconds=2)
    assert deliver_pending(sqlite_store, notifier, clock).sent == 1
    assert len(fake_slack.top_level()) == 1


def test_a_post_whose_answer_was_lost_is_not_posted_again(fake_slack, sqlite_store):
    notifier = SlackNotifier(session_for(acme_config(fake_slack)))
    clock = ManualClock(T0)
    open_escalation(sqlite_store, alert_payload())
    # Slack stores the message but its answer arrives cut off: the outbox cannot know it was posted.
    fake_slack.fail("truncated", path="/api/chat.postMessage")
    assert deliver_pending(sqlite_store, notifier, clock).failed == 1
    assert len(fake_slack.top_level()) == 1
    clock.advance(seconds=2)
    assert deliver_pending(sqlite_store, notifier, clock).sent == 1
    (message,) = fake_slack.top_level()
    assert outbox(sqlite_store)[0].message_ts == message.ts
    assert len(fake_slack.requests_to("/api/chat.postMessage")) == 1


@pytest.mark.parametrize("kind", ["followup", "state"])
def test_a_thread_reply_whose_answer_was_lost_is_not_posted_again(fake_slack, sqlite_store, kind):
    notifier = SlackNotifier(session_for(acme_config(fake_slack)))
    clock = ManualClock(T0)
    esc = open_escalation(sqlite_store, alert_payload())
    deliver_pending(sqlite_store, notifier, clock)
    (alert,) = fake_slack.top_level()
    # A long thread: the lookup must page past the first 200 replies to find its own.
    fake_slack.messages += [Message(alert.channel, f"1700000001.{n:06d}", f"chatter {n}", [], alert.ts)
                            for n in range(250)]
    if kind == "followup":
        sqlite_store.queue_message(esc, "followup", T0, text="Not claimed within 15 min")
    else:
        sqlite_store.queue_message(esc, "state", T0, status={"state": "claimed", "user": "U01SANNE",
                                                             "actor": "Sanne", "at": "2026-11-23T10:04+00:00"})
    fake_slack.fail("truncated", path="/api/chat.postMessage")
    assert deliver_pending(sqlite_store, notifier, clock).failed == 1
    clock.advance(seconds=2)
    assert deliver_pending(sqlite_store, notifier, clock).sent == 1
    ours = [m for m in fake_slack.replies(alert.ts) if not m.text.startswith("chatter")]
    assert [m.text for m in ours] == ["Not claimed within 15 min" if kind == "followup" else "Claimed by <@U01SANNE>"]
    assert outbox(sqlite_store)[-1].message_ts == ours[0].ts
    assert len(fake_slack.requests_to("/api/chat.postMessage")) == 2  # the alert, and the reply once
    assert len(fake_slack.requests_to("/api/conversations.replies")) == 2  # two pages of the thread


def test_a_message_slack_rejects_is_given_up_not_retried(fake_slack, sqlite_store):
    notifier = SlackNotifier(session_for(acme_config(fake_slack)))
    clock = ManualClock(T0)
    esc = open_escalation(sqlite_store, alert_payload())
    deliver_pending(sqlite_store, notifier, clock)
    fake_slack.messages.clear()  # someone deleted the message: chat.update says message_not_found
    sqlite_store.update_escalation(esc, severity=Severity.critical, probability=0.9, reasons=["r"], member_ids=[],
                                   alert_payload=alert_payload(severity=Severity.critical) | {"change": "worse"},
                                   channel="#webcare-acme", now=T0)
    assert deliver_pending(sqlite_store, notifier, clock).gave_up == 1


def test_unknown_error_is_retried_not_dropped(fake_slack, sqlite_store):
    notifier = SlackNotifier(session_for(acme_config(fake_slack)))
    clock = ManualClock(T0)
    open_escalation(sqlite_store, alert_payload(), channel="#gone")
    report = deliver_pending(sqlite_store, notifier, clock)
    assert (report.failed, report.gave_up) == (1, 0)
    assert "channel_not_found" in outbox(sqlite_store)[0].last_error


# --- updates --------------------------------------------------------------------------------------

def test_growth_updates_the_message_and_replies_in_its_thread_in_the_first_channel(fake_slack, sqlite_store):
    notifier = SlackNotifier(session_for(acme_config(fake_slack, brands=[{
        "name": BRAND, "search_terms": {"x": ["acme"]}, "slack_channel": "#webcare-acme",
        "slack_channels_by_severity": {"critical": "#webcare-urgent"}}])))
    clock = ManualClock(T0)
    esc = open_escalation(sqlite_store, alert_payload())
    deliver_pending(sqlite_store, notifier, clock)
    sqlite_store.update_escalation(esc, severity=Severity.critical, probability=0.97, reasons=["r"], member_ids=[],
                                   alert_payload=alert_payload(severity=Severity.critical)
                                   | {"change": "severity high → critical <!channel>"},
                                   channel="#webcare-urgent", now=T0)
    assert deliver_pending(sqlite_store, notifier, clock).sent == 1
    (message,) = fake_slack.top_level()
    assert message.channel == "C0ACME" and len(message.updates) == 1
    assert "CRITICAL" in message.blocks[0]["text"]["text"]
    (reply,) = fake_slack.replies(message.ts)
    assert reply.text == "Update: severity high → critical &lt;!channel&gt;"
    assert outbox(sqlite_store)[1].message_ts == reply.ts


# --- start-up check -------------------------------------------------------------------------------

def test_bad_token_is_one_clear_line(fake_slack):
    with pytest.raises(SlackSetupError) as caught:
        connect(acme_config(fake_slack), {"SLACK_BOT_TOKEN": "xoxb-wrong"})
    assert str(caught.value) == "slack: the bot token in SLACK_BOT_TOKEN was refused (invalid_auth)"
    assert "xoxb-wrong" not in str(caught.value)


def test_missing_channel_is_named(fake_slack):
    config = acme_config(fake_slack, brands=[{"name": BRAND, "search_terms": {"x": ["acme"]},
                                              "slack_channel": "#nowhere"}])
    with pytest.raises(SlackSetupError, match=r"^slack: channel #nowhere not found \(channel_not_found\)"):
        connect(config, ENV)


def test_missing_channel_given_by_id(fake_slack):
    config = acme_config(fake_slack, brands=[{"name": BRAND, "search_terms": {"x": ["acme"]},
                                              "slack_channel": "C0MISSING1"}])
    with pytest.raises(SlackSetupError, match=r"^slack: channel C0MISSING1 cannot be used \(channel_not_found\)$"):
        connect(config, ENV)


def test_missing_scope_is_named(fake_slack):
    fake_slack.scopes.remove("files:write")
    with pytest.raises(SlackSetupError, match=r"^slack: the bot token lacks scope\(s\) files:write; "):
        connect(acme_config(fake_slack), ENV)


def test_member_email_is_resolved_once_at_start_up(fake_slack):
    session = connect(demo_config(fake_slack), ENV)
    marieke = next(m for m in session.config.team.members if m.name == "Marieke")
    assert marieke.slack_user == "U01MARIEKE"
    assert len(fake_slack.requests_to("/api/users.lookupByEmail")) == 1
    assert session.channel_ids == {"#webcare": "C0WEB", "#webcare-glaslijn": "C0GLAS", "#webcare-urgent": "C0URG"}


def test_unknown_member_email_is_one_line(fake_slack):
    fake_slack.users.clear()
    with pytest.raises(SlackSetupError, match=r"^slack: team member Marieke: no Slack user for their e-mail "
                                              r"\(users_not_found\)$"):
        connect(demo_config(fake_slack), ENV)


# --- the command line ------------------------------------------------------------------------------

def test_cli_start_up_with_a_bad_token_prints_one_line(fake_slack, tmp_path, monkeypatch):
    import yaml
    from typer.testing import CliRunner

    from monitor.cli import app
    from tests.support import config_dict

    monkeypatch.setenv("COLUMNS", "500")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-not-the-right-one")
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config_dict(
        slack={"enabled": True, "base_url": fake_slack.api_url},
        storage={"url": f"sqlite:///{tmp_path / 'm.db'}"})), encoding="utf-8")
    result = CliRunner().invoke(app, ["once", "-c", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["slack: the bot token in SLACK_BOT_TOKEN was refused (invalid_auth)"]
