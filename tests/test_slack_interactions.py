"""Button clicks over Socket Mode: slack-sdk's SocketModeClient against a fake WebSocket server."""

from __future__ import annotations


import pytest
from sqlalchemy import select

from monitor.clock import ManualClock
from monitor.models import EscalationState
from monitor.notifiers.slack import SlackNotifier
from monitor.notifiers.slack_actions import ClickHandler
from monitor.notifiers.slack_socket import SocketModeListener
from monitor.pipeline.deliver import deliver_pending
from monitor.store.schema import EscalationEventRow, FeedbackRow, OutboxRow
from tests.fakes.slack import APP_TOKEN
from tests.slacking import acme_config, fake_slack, session_for, socket_fake, wait_until  # noqa: F401 - fixtures
from tests.support import T0
from tests.test_slack import alert_payload, open_escalation

TEAM = {"members": [
    {"name": "Sanne", "slack_user": "U01SANNE", "languages": ["en"]},
    {"name": "Daan", "slack_user": "U01DAAN", "languages": ["nl"]},
    {"name": "Marieke", "slack_user": "U01MARIEKE", "role": "lead"},
]}


@pytest.fixture
def wired(fake_slack, socket_fake, sqlite_store):
    """(clock, notifier, listener) with one delivered escalation; the listener is connected."""
    config = acme_config(fake_slack, team=TEAM)
    session = session_for(config)
    clock = ManualClock(T0)
    notifier = SlackNotifier(session)
    listener = SocketModeListener(APP_TOKEN, session.client, ClickHandler(sqlite_store, session.config.team, clock))
    listener.start()
    try:
        yield clock, notifier, listener
    finally:
        listener.stop()


def click(action: str, escalation_id: int, user: str, selected_user: str | None = None) -> dict:
    element = {"action_id": action, "block_id": f"escalation:{escalation_id}", "type": "button",
               "value": str(escalation_id), "action_ts": "1700000001.000001"}
    if selected_user:
        element.update(type="users_select", selected_user=selected_user)
    return {"type": "block_actions", "user": {"id": user, "username": user.lower()},
            "container": {"type": "message"}, "actions": [element]}


def state_rewrites(store, escalation_id: int) -> int:
    """Message rewrites queued for the escalation: the last thing a handled click does."""
    with store.session() as s:
        return s.query(OutboxRow).filter(OutboxRow.escalation_id == escalation_id, OutboxRow.kind == "state").count()


def send(socket_fake, payload: dict) -> dict:
    return socket_fake.wait_for_ack(socket_fake.send_interaction(payload))


def events(store, escalation_id: int) -> list[tuple[str, str | None]]:
    with store.session() as s:
        return [(e.action, e.actor) for e in s.scalars(select(EscalationEventRow).where(
            EscalationEventRow.escalation_id == escalation_id).order_by(EscalationEventRow.id))]


def test_claim_reassign_resolve_from_buttons(wired, socket_fake, fake_slack, sqlite_store):
    clock, notifier, _ = wired
    esc = open_escalation(sqlite_store, alert_payload())
    deliver_pending(sqlite_store, notifier, clock)
    (message,) = fake_slack.top_level()

    clock.advance(minutes=4)
    ack = send(socket_fake, click("escalation_claim", esc, "U01SANNE"))
    assert set(ack) == {"envelope_id"}
    wait_until(lambda: state_rewrites(sqlite_store, esc) == 1)
    record = sqlite_store.escalation(esc)
    assert (record.owner, record.claimed_at) == ("Sanne", T0.replace(minute=4))
    deliver_pending(sqlite_store, notifier, clock)
    assert "*Claimed by* <@U01SANNE> · 2026-11-23T10:04+00:00" in str(message.blocks)
    assert "escalation_claim" not in str(message.blocks) and "escalation_resolve" in str(message.blocks)

    send(socket_fake, click("escalation_reassign", esc, "U01MARIEKE", selected_user="U01DAAN"))
    wait_until(lambda: state_rewrites(sqlite_store, esc) == 2)
    clock.advance(minutes=30)
    send(socket_fake, click("escalation_resolve", esc, "U01DAAN"))
    wait_until(lambda: state_rewrites(sqlite_store, esc) == 3)
    deliver_pending(sqlite_store, notifier, clock)
    assert "*Resolved by* <@U01DAAN>" in str(message.blocks)
    assert message.blocks[-1]["type"] == "context"  # no buttons left on a closed escalation
    assert len(message.updates) == 3 and len(fake_slack.top_level()) == 1
    # The thread tells the story the message's state line sums up.
    assert [r.text for r in fake_slack.replies(message.ts)] == [
        "Claimed by <@U01SANNE>", "Reassigned to <@U01DAAN>", "Resolved by <@U01DAAN>"]
    assert events(sqlite_store, esc) == [("opened", None), ("claimed", "Sanne"), ("claimed", "Marieke"),
                                         ("resolved", "Daan")]
    assert sqlite_store.escalation(esc).closed_at == T0.replace(minute=34)


def test_dismiss_records_a_false_positive_label(wired, socket_fake, fake_slack, sqlite_store):
    clock, notifier, _ = wired
    esc = open_escalation(sqlite_store, alert_payload())
    deliver_pending(sqlite_store, notifier, clock)
    send(socket_fake, click("escalation_dismiss", esc, "U01SANNE"))
    wait_until(lambda: state_rewrites(sqlite_store, esc) == 1)
    assert sqlite_store.escalation(esc).state is EscalationState.dismissed
    with sqlite_store.session() as s:
        (label,) = s.scalars(select(FeedbackRow)).all()
        assert (label.escalation_id, label.label, label.by, label.at) == (esc, "false_positive", "Sanne", T0)
    deliver_pending(sqlite_store, notifier, clock)
    assert "*Dismissed as false positive by* <@U01SANNE>" in str(fake_slack.top_level()[0].blocks)


def test_every_envelope_is_acknowledged_even_a_stale_click_or_a_stranger(wired, socket_fake, sqlite_store,
                                                                         caplog):
    clock, notifier, _ = wired
    caplog.set_level("WARNING", logger="monitor.notifiers.slack_actions")
    esc = open_escalation(sqlite_store, alert_payload())
    deliver_pending(sqlite_store, notifier, clock)
    send(socket_fake, click("escalation_resolve", esc, "U0STRANGER"))
    wait_until(lambda: state_rewrites(sqlite_store, esc) == 1)
    assert events(sqlite_store, esc)[-1] == ("resolved", "slack:U0STRANGER")
    # A second click on a stale message changes nothing but is still acknowledged.
    send(socket_fake, click("escalation_claim", esc, "U01SANNE"))
    send(socket_fake, {"type": "view_submission", "user": {"id": "U01SANNE"}})
    send(socket_fake, click("escalation_claim", 99999, "U01SANNE"))
    wait_until(lambda: sum("click ignored" in r.getMessage() for r in caplog.records) == 2)
    assert sqlite_store.escalation(esc).state is EscalationState.resolved
    assert [a for a, _ in events(sqlite_store, esc)] == ["opened", "resolved"]


def test_waiting_on_another_department_and_back_from_buttons(wired, socket_fake, fake_slack, sqlite_store):
    clock, notifier, _ = wired
    esc = open_escalation(sqlite_store, alert_payload())
    deliver_pending(sqlite_store, notifier, clock)
    (message,) = fake_slack.top_level()

    def buttons() -> list[str]:
        return [e["action_id"] for e in message.blocks[-1]["elements"]]

    send(socket_fake, click("escalation_claim", esc, "U01SANNE"))
    wait_until(lambda: state_rewrites(sqlite_store, esc) == 1)
    deliver_pending(sqlite_store, notifier, clock)
    assert buttons() == ["escalation_wait", "escalation_reassign", "escalation_resolve", "escalation_dismiss"]

    clock.advance(minutes=10)
    send(socket_fake, click("escalation_wait", esc, "U01SANNE"))
    wait_until(lambda: state_rewrites(sqlite_store, esc) == 2)
    deliver_pending(sqlite_store, notifier, clock)
    assert sqlite_store.escalation(esc).state is EscalationState.waiting
    assert "*Waiting on another department, says* <@U01SANNE>" in str(message.blocks)
    assert buttons()[0] == "escalation_back"

    clock.advance(minutes=45)
    send(socket_fake, click("escalation_back", esc, "U01DAAN"))
    wait_until(lambda: state_rewrites(sqlite_store, esc) == 3)
    send(socket_fake, click("escalation_back", esc, "U01SANNE"))  # the same click from a stale message
    send(socket_fake, click("escalation_resolve", esc, "U01SANNE"))
    wait_until(lambda: state_rewrites(sqlite_store, esc) == 4)
    deliver_pending(sqlite_store, notifier, clock)
    record = sqlite_store.escalation(esc)
    assert (record.state, record.owner) == (EscalationState.resolved, "Sanne")
    assert events(sqlite_store, esc) == [("opened", None), ("claimed", "Sanne"), ("waiting", "Sanne"),
                                         ("claimed", "Daan"), ("resolved", "Sanne")]
    assert [r.text for r in fake_slack.replies(message.ts)] == [
        "Claimed by <@U01SANNE>", "Waiting on another department, says <@U01SANNE>",
        "Back from the other department, says <@U01DAAN>", "Resolved by <@U01SANNE>"]


def test_a_click_with_malformed_text_or_shapes_is_applied_or_ignored_never_lost(wired, socket_fake, sqlite_store):
    """Slack's JSON can carry a lone surrogate escape (`\\ud800`) or, from a broken proxy, values of
    the wrong type; the click is recorded with the character replaced, or ignored, and the listener
    goes on with the next."""
    clock, notifier, _ = wired
    esc = open_escalation(sqlite_store, alert_payload())
    deliver_pending(sqlite_store, notifier, clock)
    send(socket_fake, {"type": "block_actions", "user": {"id": 5}, "actions": ["escalation_claim", None, 7]})
    send(socket_fake, {"type": "block_actions", "user": "U01SANNE", "actions": {"action_id": "escalation_claim"}})
    broken = click("escalation_claim", esc, "U01SANNE")
    broken["actions"][0]["block_id"] = ["escalation:1"]
    send(socket_fake, broken)
    unhashable = click("escalation_claim", esc, "U01SANNE")
    unhashable["actions"][0]["action_id"] = ["escalation_claim"]
    send(socket_fake, unhashable)
    send(socket_fake, click("escalation_claim", esc, "U0\ud800X"))
    wait_until(lambda: state_rewrites(sqlite_store, esc) == 1)
    assert events(sqlite_store, esc) == [("opened", None), ("claimed", "slack:U0\ufffdX")]
