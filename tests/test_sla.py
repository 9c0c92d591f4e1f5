"""SLA follow-up on a manual clock: owner at one SLA period, the lead at two, each once; a claim or
the brand's public reply stops the matching reminders."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from monitor.clock import ManualClock
from monitor.models import EscalationState
from monitor.notifiers.slack import SlackNotifier
from monitor.pipeline.deliver import deliver_pending
from monitor.sla import follow_up
from monitor.store.schema import EscalationEventRow, OutboxRow
from tests.slacking import acme_config, fake_slack, session_for  # noqa: F401 - fixture
from tests.support import BRAND, OWN_HANDLE, T0, build_mention
from tests.test_slack import alert_payload, open_escalation
from tests.test_slack_interactions import TEAM

# high: claim within 15 min, first public reply within 30 (the defaults)


def breach_events(store, escalation_id):
    with store.session() as s:
        return [(e.at, e.detail["kind"], e.detail["level"]) for e in s.scalars(select(EscalationEventRow).where(
            EscalationEventRow.escalation_id == escalation_id, EscalationEventRow.action == "sla_breach")
            .order_by(EscalationEventRow.id))]


def test_claim_sla_mentions_the_owner_then_the_lead_once_each(fake_slack, sqlite_store):
    config = acme_config(fake_slack, team=TEAM)
    notifier = SlackNotifier(session_for(config))
    clock = ManualClock(T0)
    esc = open_escalation(sqlite_store, alert_payload())
    deliver_pending(sqlite_store, notifier, clock)
    (message,) = fake_slack.top_level()

    clock.set(T0 + timedelta(minutes=14, seconds=59))
    assert follow_up(sqlite_store, config, clock.now()) == 0
    clock.set(T0 + timedelta(minutes=15))
    assert follow_up(sqlite_store, config, clock.now()) == 1
    assert follow_up(sqlite_store, config, clock.now()) == 0  # told once
    deliver_pending(sqlite_store, notifier, clock)
    (reply,) = fake_slack.replies(message.ts)
    assert reply.text == ":alarm_clock: Not claimed within 15 min (high SLA). <@U01SANNE>, please take it."

    clock.set(T0 + timedelta(minutes=30))  # second claim period, and the first reply period, run out
    assert follow_up(sqlite_store, config, clock.now()) == 2
    deliver_pending(sqlite_store, notifier, clock)
    texts = [m.text for m in fake_slack.replies(message.ts)]
    assert texts[1:] == [":rotating_light: Still not claimed 30 min after the alert. <@U01MARIEKE> (lead), please step in.",
                         ":alarm_clock: Not answered in public within 30 min (high SLA). <@U01SANNE>, please take it."]
    assert breach_events(sqlite_store, esc) == [
        (T0 + timedelta(minutes=15), "claim", "owner"), (T0 + timedelta(minutes=30), "claim", "lead"),
        (T0 + timedelta(minutes=30), "reply", "owner")]


def test_claim_and_brand_reply_stop_the_reminders(fake_slack, sqlite_store):
    config = acme_config(fake_slack, team=TEAM)
    clock = ManualClock(T0)
    esc = open_escalation(sqlite_store, alert_payload())
    sqlite_store.transition(esc, EscalationState.claimed, "Daan", T0 + timedelta(minutes=10))
    # The brand answers the post on X 20 minutes in: that is the first public reply.
    sqlite_store.ingest("x", BRAND, [build_mention("r1", "Sorry, we are on it", at=T0 + timedelta(minutes=20),
                                                   handle=OWN_HANDLE, author_id="own", in_reply_to="s0",
                                                   conversation_id="s0")],
                        "c", own_accounts={"x": [OWN_HANDLE]}, now=T0 + timedelta(minutes=21))
    assert sqlite_store.escalation(esc).first_reply_at == T0 + timedelta(minutes=20)
    clock.set(T0 + timedelta(hours=3))
    assert follow_up(sqlite_store, config, clock.now()) == 0


def test_reply_sla_mentions_whoever_claimed_it(fake_slack, sqlite_store):
    config = acme_config(fake_slack, team=TEAM)
    esc = open_escalation(sqlite_store, alert_payload())
    sqlite_store.transition(esc, EscalationState.claimed, "Daan", T0 + timedelta(minutes=1))
    assert follow_up(sqlite_store, config, T0 + timedelta(minutes=30)) == 1
    with sqlite_store.session() as s:
        last = s.scalars(select(OutboxRow).order_by(OutboxRow.id.desc())).first()
        assert (last.kind, last.payload["text"]) == (
            "followup", ":alarm_clock: Not answered in public within 30 min (high SLA). <@U01DAAN>, please take it.")


def test_closed_escalations_are_not_followed_up(fake_slack, sqlite_store):
    config = acme_config(fake_slack, team=TEAM)
    esc = open_escalation(sqlite_store, alert_payload())
    sqlite_store.transition(esc, EscalationState.resolved, "Sanne", T0 + timedelta(minutes=5))
    assert follow_up(sqlite_store, config, T0 + timedelta(days=1)) == 0
