"""The store, on SQLite and PostgreSQL: ingest, brand replies, escalation states, outbox, retention."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from monitor.clock import ManualClock
from monitor.models import Classification, EscalationState, Metrics, Severity
from monitor.store import db
from monitor.store.repository import Store
from monitor.store.schema import EscalationEventRow, FeedbackRow, MentionRow, OutboxRow
from tests.support import BRAND, OWN_HANDLE, T0, build_mention

OWN = {"x": {OWN_HANDLE}}


def ingest(store: Store, mentions, cursor: str | None = None, *, now: datetime = T0, collector: str = "x"):
    return store.ingest(collector, BRAND, mentions, cursor, own_accounts=OWN, now=now)


def open_escalation(store: Store, mention_id: int, *, now: datetime = T0, key: str | None = None) -> int:
    return store.create_escalation(
        brand=BRAND, group_key=key or f"mention:{mention_id}", kind="mention", subject_mention_id=mention_id,
        storm_id=None, source="x", lang="en", severity=Severity.high, probability=0.8, reasons=["legal threat"],
        suggested_owner="Sanne", owner_reason="speaks en", member_ids=[mention_id],
        alert_payload={"title": "Escalation risk"}, channel="#webcare", last_alert={"severity": "high"}, now=now,
    )


def queue_update(store: Store, escalation_id: int, mention_id: int, *, now: datetime, change: str = "grew"):
    store.update_escalation(escalation_id, severity=Severity.critical, probability=0.95, reasons=["bigger"],
                            member_ids=[mention_id], alert_payload={"change": change}, channel="#webcare", now=now)


def outbox_rows(store: Store) -> list[OutboxRow]:
    with store.session() as s:
        return list(s.scalars(select(OutboxRow).order_by(OutboxRow.id)).all())


def test_migrations_reach_head(store):
    assert db.current_revision(store.engine) == db.head_revision()
    # Running them again on a migrated database changes nothing.
    db.upgrade(store.engine)
    assert db.current_revision(store.engine) == db.head_revision()


# --- ingest -------------------------------------------------------------------------------------

def test_ingest_is_idempotent_and_moves_the_cursor(store):
    m = build_mention("1001", "Acme, where is my router?", metrics=Metrics(reposts=1))
    first = ingest(store, [m], "c1")
    assert len(first.new_ids) == 1 and first.seen_again == 0
    assert store.cursor("x", BRAND) == "c1"

    again = build_mention("1001", "Acme, where is my router?", metrics=Metrics(reposts=7))
    second = ingest(store, [again], "c2", now=T0 + timedelta(minutes=1))
    assert second.new_ids == () and second.seen_again == 1
    assert store.cursor("x", BRAND) == "c2"

    assert store.count_mentions() == 1
    snapshots = store.snapshots(first.new_ids[0])
    assert [s.metrics.reposts for s in snapshots] == [1, 7]
    assert [s.observed_at for s in snapshots] == [T0, T0 + timedelta(minutes=1)]


def test_malformed_text_from_an_api_is_stored_without_losing_the_batch(store):
    # An emoji cut in half by an API's truncation arrives as a lone surrogate escape ("\\ud83d");
    # PostgreSQL refuses NUL. Either failed the whole batch, and so every retry of the collector.
    batch = [build_mention("1", "router down again \ud83d"), build_mention("2", "nul\x00inside", handle="a\udcffb"),
             build_mention("3", "an ordinary post")]
    result = ingest(store, batch, "c1")
    assert len(result.new_ids) == 3 and store.cursor("x", BRAND) == "c1"
    stored = {m.external_id: m for m in store.mentions(result.new_ids)}
    assert stored["1"].text == "router down again \ufffd"
    assert stored["2"].text == "nulinside" and stored["2"].author.handle == "a\ufffdb"
    assert stored["3"].text == "an ordinary post"


def test_a_source_error_quoting_a_malformed_body_is_recorded(store):
    store.record_source_failure("x", BRAND, T0, "bad body: \x00\ud83d", T0 + timedelta(minutes=1), "back-off")
    assert store.source_health("x", BRAND).last_error == "bad body: \ufffd"


def test_cursor_is_kept_per_collector_and_brand(store):
    ingest(store, [build_mention("1")], "x-cursor", collector="x")
    ingest(store, [], "replay-cursor", collector="replay")
    assert store.cursor("x", BRAND) == "x-cursor"
    assert store.cursor("replay", BRAND) == "replay-cursor"
    assert store.cursor("x", "Other brand") is None


def test_failed_batch_stores_neither_mentions_nor_cursor(store):
    ingest(store, [build_mention("1")], "c1")
    naive = build_mention("3", at=datetime(2026, 11, 23, 10, 0))  # no timezone: the store refuses it
    with pytest.raises(Exception):
        ingest(store, [build_mention("2"), naive], "c2")
    # The batch is one transaction: the cursor did not move past posts that were not stored.
    assert store.cursor("x", BRAND) == "c1"
    assert store.count_mentions() == 1


def test_overlapping_pages_in_one_batch_are_stored_once(store):
    page1 = [build_mention("1"), build_mention("2", metrics=Metrics(likes=1))]
    page2 = [build_mention("2", metrics=Metrics(likes=5)), build_mention("3")]
    result = ingest(store, page1 + page2, "c")
    assert len(result.new_ids) == 3 and result.seen_again == 0
    assert store.count_mentions() == 3
    stored = {m.external_id: m for m in store.mentions(result.new_ids)}
    assert set(stored) == {"1", "2", "3"}
    # One snapshot per post, and for the overlap the later (fresher) copy wins.
    assert [s.metrics.likes for s in store.snapshots(stored["2"].id)] == [5]
    assert all(len(store.snapshots(m.id)) == 1 for m in stored.values())


def test_same_id_on_two_sources_is_two_mentions(store, make_mention):
    result = ingest(store, [make_mention("42", source="x"), make_mention("42", source="reddit")], "c")
    assert len(result.new_ids) == 2


def test_brand_reply_is_flagged_and_stamps_first_reply(store):
    customer = build_mention("2001", "@acme_care my lawyer will hear about this", conversation_id="conv-1")
    (customer_id,) = ingest(store, [customer], "c1").new_ids
    esc_id = open_escalation(store, customer_id)
    assert store.escalation(esc_id).first_reply_at is None

    reply_at = T0 + timedelta(minutes=7)
    reply = build_mention("2002", "@someone sorry to hear that, please DM us", at=reply_at,
                          handle="Acme_Care", author_id="brand", conversation_id="conv-1", in_reply_to="2001")
    (reply_id,) = ingest(store, [reply], "c2", now=reply_at + timedelta(seconds=5)).new_ids

    (stored_reply,) = store.mentions([reply_id])
    assert stored_reply.is_brand_reply
    (stored_customer,) = store.mentions([customer_id])
    assert not stored_customer.is_brand_reply
    assert store.escalation(esc_id).first_reply_at == reply_at
    with store.session() as s:
        actions = s.scalars(select(EscalationEventRow.action).where(EscalationEventRow.escalation_id == esc_id)).all()
    assert "brand_reply" in actions
    # The brand's own posts are neither classified nor scored.
    assert reply_id not in {m.id for m in store.unclassified("any-model", "1")}

    # A second reply does not move the first reply time.
    later = build_mention("2003", "@someone we have sent you a DM", at=reply_at + timedelta(minutes=30),
                          handle=OWN_HANDLE, author_id="brand", conversation_id="conv-1", in_reply_to="2001")
    ingest(store, [later], "c3", now=reply_at + timedelta(minutes=31))
    assert store.escalation(esc_id).first_reply_at == reply_at


def test_brand_reply_stored_before_the_escalation_is_opened_counts(store):
    customer = build_mention("2001", "@acme_care my lawyer will hear about this", conversation_id="conv-1")
    reply_at = T0 + timedelta(minutes=2)
    reply = build_mention("2002", "@someone sorry, please DM us", at=reply_at, handle=OWN_HANDLE,
                          author_id="brand", conversation_id="conv-1", in_reply_to="2001")
    customer_id, _ = ingest(store, [customer, reply], "c1", now=reply_at).new_ids
    esc_id = open_escalation(store, customer_id, now=reply_at + timedelta(minutes=1))
    assert store.escalation(esc_id).first_reply_at == reply_at


def test_brand_reply_in_another_conversation_does_not_stamp(store):
    (customer_id,) = ingest(store, [build_mention("1", conversation_id="conv-1")], "c").new_ids
    esc_id = open_escalation(store, customer_id)
    ingest(store, [build_mention("2", handle=OWN_HANDLE, author_id="brand", conversation_id="conv-9",
                                 in_reply_to="999", at=T0 + timedelta(minutes=1))], "c2")
    assert store.escalation(esc_id).first_reply_at is None


# --- escalation states ------------------------------------------------------------------------

def test_escalation_lifecycle_records_who_and_when(store):
    (mention_id,) = ingest(store, [build_mention("1")], "c").new_ids
    esc_id = open_escalation(store, mention_id)
    record = store.escalation(esc_id)
    assert record.state is EscalationState.open
    assert record.members == 1 and record.suggested_owner == "Sanne"
    assert store.open_escalation(f"mention:{mention_id}").id == esc_id

    claimed = store.transition(esc_id, EscalationState.claimed, "emma", T0 + timedelta(minutes=3))
    assert claimed.state is EscalationState.claimed
    assert claimed.owner == "emma" and claimed.claimed_at == T0 + timedelta(minutes=3)

    resolved = store.transition(esc_id, EscalationState.resolved, "emma", T0 + timedelta(minutes=20))
    assert resolved.state is EscalationState.resolved
    assert resolved.closed_at == T0 + timedelta(minutes=20)
    assert resolved.claimed_at == T0 + timedelta(minutes=3)
    assert store.open_escalation(f"mention:{mention_id}") is None
    assert store.any_escalation(f"mention:{mention_id}").id == esc_id

    with store.session() as s:
        events = s.execute(select(EscalationEventRow.action, EscalationEventRow.actor, EscalationEventRow.at)
                           .where(EscalationEventRow.escalation_id == esc_id)
                           .order_by(EscalationEventRow.id)).all()
    assert [(a, who) for a, who, _ in events] == [("opened", None), ("claimed", "emma"), ("resolved", "emma")]
    assert events[-1][2] == T0 + timedelta(minutes=20)

    for target in (EscalationState.claimed, EscalationState.open, EscalationState.dismissed):
        with pytest.raises(ValueError):
            store.transition(esc_id, target, "daan", T0 + timedelta(minutes=30))
    assert store.escalation(esc_id).state is EscalationState.resolved


def test_claim_with_a_different_owner_and_reclaim_keeps_first_claim_time(store):
    (mention_id,) = ingest(store, [build_mention("1")], "c").new_ids
    esc_id = open_escalation(store, mention_id)
    store.transition(esc_id, EscalationState.claimed, "lead", T0 + timedelta(minutes=1), owner="sanne")
    record = store.transition(esc_id, EscalationState.claimed, "daan", T0 + timedelta(minutes=5))
    assert record.owner == "daan"
    assert record.claimed_at == T0 + timedelta(minutes=1)
    assert store.open_load() == {"daan": 1}


def test_waiting_on_another_department_and_back(store):
    (mention_id,) = ingest(store, [build_mention("1")], "c").new_ids
    esc_id = open_escalation(store, mention_id)
    with pytest.raises(ValueError):  # only a claimed escalation can wait on another department
        store.transition(esc_id, EscalationState.waiting, "sanne", T0)
    store.transition(esc_id, EscalationState.claimed, "sanne", T0 + timedelta(minutes=2))
    waiting = store.transition(esc_id, EscalationState.waiting, "sanne", T0 + timedelta(minutes=5))
    assert waiting.state is EscalationState.waiting
    # Still in hand: the same group does not open a second escalation, and it counts as load.
    assert store.open_escalation(f"mention:{mention_id}").id == esc_id
    assert store.open_load() == {"sanne": 1}
    assert [e.id for e in store.escalations_in_hand()] == [esc_id]
    # Back, clicked by a colleague: the owner stays, the claim time too; a second "back" is stale.
    back = store.transition(esc_id, EscalationState.claimed, "daan", T0 + timedelta(minutes=50),
                            only_from={EscalationState.waiting})
    assert (back.state, back.owner, back.claimed_at) == (EscalationState.claimed, "sanne", T0 + timedelta(minutes=2))
    with pytest.raises(ValueError):
        store.transition(esc_id, EscalationState.claimed, "daan", T0 + timedelta(minutes=51),
                         only_from={EscalationState.waiting})
    store.transition(esc_id, EscalationState.waiting, "sanne", T0 + timedelta(minutes=55))
    store.transition(esc_id, EscalationState.resolved, "sanne", T0 + timedelta(minutes=70))
    assert [(t.state.value, t.actor, int((t.at - T0).total_seconds() // 60))
            for t in store.transitions([esc_id])[esc_id]] == [
        ("claimed", "sanne", 2), ("waiting", "sanne", 5), ("claimed", "daan", 50), ("waiting", "sanne", 55),
        ("resolved", "sanne", 70)]


def test_open_cannot_go_back_to_open(store):
    (mention_id,) = ingest(store, [build_mention("1")], "c").new_ids
    esc_id = open_escalation(store, mention_id)
    with pytest.raises(ValueError):
        store.transition(esc_id, EscalationState.open, "sanne", T0)


def test_dismiss_records_a_false_positive_label(store):
    (mention_id,) = ingest(store, [build_mention("1")], "c").new_ids
    esc_id = open_escalation(store, mention_id)
    at = T0 + timedelta(minutes=2)
    record = store.transition(esc_id, EscalationState.dismissed, "sanne", at)
    assert record.state is EscalationState.dismissed and record.closed_at == at
    with store.session() as s:
        labels = s.execute(select(FeedbackRow.escalation_id, FeedbackRow.label, FeedbackRow.by, FeedbackRow.at)).all()
    assert [tuple(r) for r in labels] == [(esc_id, "false_positive", "sanne", at)]
    assert store.feedback_between(T0, T0 + timedelta(hours=1)) == [(esc_id, "false_positive")]
    with pytest.raises(ValueError):
        store.transition(esc_id, EscalationState.claimed, "sanne", at + timedelta(minutes=1))


def test_resolve_records_a_useful_label(store):
    (mention_id,) = ingest(store, [build_mention("1")], "c").new_ids
    esc_id = open_escalation(store, mention_id)
    store.transition(esc_id, EscalationState.resolved, "sanne", T0 + timedelta(minutes=1))
    assert store.feedback_between(T0 - timedelta(days=1), T0 + timedelta(days=1)) == [(esc_id, "useful")]


# --- outbox ---------------------------------------------------------------------------------------

def test_update_waits_until_the_new_message_has_a_ts(store):
    ids = ingest(store, [build_mention("1"), build_mention("2")], "c").new_ids
    esc_a = open_escalation(store, ids[0])
    esc_b = open_escalation(store, ids[1])
    queue_update(store, esc_a, ids[0], now=T0)

    pending = store.pending_outbox(T0)
    assert [(i.escalation_id, i.kind) for i in pending] == [(esc_a, "new"), (esc_b, "new")]
    assert [i.id for i in pending] == sorted(i.id for i in pending)
    new_a = pending[0]
    assert new_a.thread_ts is None and new_a.payload["escalation_id"] == esc_a
    assert new_a.channel == "#webcare" and new_a.attempts == 0

    store.mark_sent(new_a.id, "1700000000.000100", T0)
    pending = store.pending_outbox(T0)
    assert [(i.escalation_id, i.kind) for i in pending] == [(esc_b, "new"), (esc_a, "update")]
    update = pending[1]
    assert update.thread_ts == "1700000000.000100"
    assert update.payload["change"] == "grew"
    assert [i.id for i in pending] == sorted(i.id for i in pending)


def test_pending_outbox_returns_ids_in_order(store):
    ids = ingest(store, [build_mention(str(n)) for n in range(5)], "c").new_ids
    escalations = [open_escalation(store, mention_id) for mention_id in ids]
    items = store.pending_outbox(T0)
    assert [i.escalation_id for i in items] == escalations
    assert [i.id for i in items] == sorted(i.id for i in items)
    assert store.pending_outbox(T0, limit=2) == items[:2]
    assert store.outbox_counts() == {"pending": 5}


def test_items_created_later_are_not_due_yet(store):
    (mention_id,) = ingest(store, [build_mention("1")], "c").new_ids
    open_escalation(store, mention_id, now=T0 + timedelta(minutes=5))
    assert store.pending_outbox(T0) == []
    assert len(store.pending_outbox(T0 + timedelta(minutes=5))) == 1


def test_mark_failed_with_retry_time_keeps_it_pending_until_due(store):
    ids = ingest(store, [build_mention("1"), build_mention("2")], "c").new_ids
    esc_a = open_escalation(store, ids[0])
    esc_b = open_escalation(store, ids[1])
    (item_a, item_b) = store.pending_outbox(T0)
    retry_at = T0 + timedelta(seconds=30)
    assert store.mark_failed(item_a.id, "rate limited", retry_at, T0) == 1
    assert store.outbox_counts() == {"pending": 2}

    # Not due yet: the other escalation's message still goes.
    assert [i.id for i in store.pending_outbox(T0 + timedelta(seconds=29))] == [item_b.id]
    due = store.pending_outbox(retry_at)
    assert [i.id for i in due] == [item_a.id, item_b.id]
    assert due[0].attempts == 1 and due[0].escalation_id == esc_a and due[1].escalation_id == esc_b
    with store.session() as s:
        assert s.get(OutboxRow, item_a.id).last_error == "rate limited"

    assert store.mark_failed(item_a.id, "still down", retry_at + timedelta(seconds=30), retry_at) == 2
    store.mark_sent(item_a.id, "ts-1", retry_at + timedelta(seconds=30))
    row = next(r for r in outbox_rows(store) if r.id == item_a.id)
    assert (row.state, row.attempts, row.message_ts) == ("sent", 3, "ts-1")


def test_a_waiting_item_holds_back_later_items_of_its_escalation(store):
    (mention_id,) = ingest(store, [build_mention("1")], "c").new_ids
    esc = open_escalation(store, mention_id)
    (new,) = store.pending_outbox(T0)
    store.mark_sent(new.id, "ts-1", T0)
    queue_update(store, esc, mention_id, now=T0, change="first")
    queue_update(store, esc, mention_id, now=T0, change="second")
    first, second = store.pending_outbox(T0)
    store.mark_failed(first.id, "boom", T0 + timedelta(seconds=60), T0)
    # The second update must not overtake the first one that is waiting for its retry.
    assert store.pending_outbox(T0 + timedelta(seconds=10)) == []
    assert [i.payload["change"] for i in store.pending_outbox(T0 + timedelta(seconds=60))] == ["first", "second"]


def test_mark_failed_without_retry_gives_up(store):
    (mention_id,) = ingest(store, [build_mention("1")], "c").new_ids
    open_escalation(store, mention_id)
    (item,) = store.pending_outbox(T0)
    store.mark_failed(item.id, "channel_not_found", None, T0)
    assert store.outbox_counts() == {"failed": 1}
    assert store.pending_outbox(T0 + timedelta(days=1)) == []


# --- retention ------------------------------------------------------------------------------------

def test_purge_keeps_mentions_referenced_by_escalations(store):
    old = T0 - timedelta(days=200)
    mentions = [build_mention("member", at=old), build_mention("subject", at=old),
                build_mention("orphan", at=old), build_mention("recent", at=T0 - timedelta(days=1))]
    ids = dict(zip(["member", "subject", "orphan", "recent"], ingest(store, mentions, "c", now=old).new_ids))

    # One escalation refers to "member" through its members, another to "subject" only as subject.
    esc_member = open_escalation(store, ids["member"], now=old)
    store.create_escalation(
        brand=BRAND, group_key="author:x:someone", kind="repeat_contact", subject_mention_id=ids["subject"],
        storm_id=None, source="x", lang=None, severity=Severity.medium, probability=0.6, reasons=[],
        suggested_owner=None, owner_reason=None, member_ids=[], alert_payload={}, channel=None, last_alert={},
        now=old,
    )
    assert store.purge_older_than(T0 - timedelta(days=180)) == 1
    with store.session() as s:
        left = set(s.scalars(select(MentionRow.external_id)).all())
    assert left == {"member", "subject", "recent"}
    assert store.escalation(esc_member).members == 1
    assert store.snapshots(ids["orphan"]) == ()
    # Nothing more to remove on a second run.
    assert store.purge_older_than(T0 - timedelta(days=180)) == 0


def test_purge_removes_a_classified_orphan(store, classifier):
    old = T0 - timedelta(days=200)
    ingest(store, [build_mention("old", "Acme internet down again", at=old)], "c", now=old)
    store.save_classifications(classifier.classify_mentions(store.unclassified(classifier.model_name,
                                                                                classifier.model_version)), old)
    assert store.purge_older_than(T0 - timedelta(days=180)) == 1
    assert store.count_mentions() == 0


def _classification(mention_id: int, version: str, negative: float) -> Classification:
    return Classification(mention_id=mention_id, model="m", model_version=version, lang="en", sentiment="negative",
                          sentiment_scores={"negative": negative, "neutral": 1 - negative, "positive": 0.0},
                          complaint=0.0)


def test_storm_counting_reads_each_mentions_latest_classification_once(store):
    ids = ingest(store, [build_mention(f"p{i}", "Acme down again", at=T0 - timedelta(minutes=i)) for i in range(3)],
                 "c").new_ids
    store.save_classifications([_classification(i, "v1", 0.9) for i in ids], T0)
    # A new model: one post no longer reads negative, the others still do.
    store.save_classifications([_classification(ids[0], "v2", 0.1), *(_classification(i, "v2", 0.8) for i in ids[1:])],
                               T0)
    found = store.negative_mentions(BRAND, T0 - timedelta(hours=1), T0, negative_at_least=0.5, complaint_at_least=0.5)
    assert sorted(m.id for m, _ in found) == sorted(ids[1:])
    assert {c.model_version for _, c in found} == {"v2"}


class _NewVersion:
    """The session's classifier under another version number: what an upgrade looks like to the store."""

    def __init__(self, classifier):
        self.classifier, self.model_name, self.model_version = classifier, classifier.model_name, "next"

    def classify_mentions(self, mentions):
        return [replace(c, model_version="next") for c in self.classifier.classify_mentions(mentions)]


def test_a_new_model_classifies_again_without_watching_old_posts_again(store, classifier):
    from monitor.config import EngagementConfig
    from monitor.pipeline.classify import classify_pending

    old = T0 - timedelta(days=30)
    (mention_id,) = ingest(store, [build_mention("old", "Acme is terrible, I will call my lawyer", at=old)], "c",
                           now=old).new_ids
    engagement = EngagementConfig()
    assert classify_pending(store, classifier, ManualClock(old), engagement).watched == 1
    store.set_watch({mention_id: None})  # the watch ended long ago
    report = classify_pending(store, _NewVersion(classifier), ManualClock(T0), engagement)
    assert (report.classified, report.watched) == (1, 0)
    assert store.due_for_repoll(T0) == []
