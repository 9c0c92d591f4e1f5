"""Pipeline stages one at a time on a ManualClock, routing, delivery, and one end-to-end pass."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from monitor.clock import ManualClock
from monitor.collectors.base import CollectResult
from monitor.collectors.replay import ReplayCollector
from monitor.models import EscalationState, MentionIn, Metrics, MetricsUpdate, Severity
from monitor.notifiers.base import DeliveryError
from monitor.notifiers.console import ConsoleNotifier
from monitor.pipeline import Pipeline
from monitor.pipeline.classify import classify_pending
from monitor.pipeline.collect import collect_and_store
from monitor.pipeline.deliver import deliver_pending
from monitor.pipeline.engagement import next_poll, repoll_due
from monitor.routing import Router, RoutingRequest, on_shift
from monitor.scenario import Scenario
from monitor.store.repository import OutboxItem, Store
from monitor.store.schema import EscalationRow, MentionRow, OutboxRow
from tests.support import (
    BRAND,
    CALM,
    LEGAL_THREAT,
    NEUTRAL_CHATTER,
    OWN_HANDLE,
    T0,
    build_config,
    build_mention,
    scenario_post,
)

OWN = {"x": {OWN_HANDLE}}
UTC = timezone.utc


class FakeCollector:
    """Hands out pages by cursor (the page number); re-polls from a dict of live metrics."""

    source = "fake"
    brand = BRAND
    sources = frozenset({"x"})

    def __init__(self, pages: Sequence[Sequence[MentionIn]], clock: ManualClock):
        self.pages = [list(p) for p in pages]
        self.clock = clock
        self.cursors_seen: list[str | None] = []
        self.refreshed: list[list[str]] = []
        self.live: dict[str, Metrics] = {}
        self.fail_next = False

    def collect(self, cursor: str | None) -> CollectResult:
        self.cursors_seen.append(cursor)
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("source unreachable")
        page = int(cursor or 0)
        if page >= len(self.pages):
            return CollectResult((), cursor)
        return CollectResult(tuple(self.pages[page]), str(page + 1), more=page + 1 < len(self.pages))

    def refresh_metrics(self, external_ids: Sequence[str]) -> list[MetricsUpdate]:
        self.refreshed.append(sorted(external_ids))
        return [MetricsUpdate("x", i, self.clock.now(), self.live[i]) for i in external_ids if i in self.live]


class RecordingNotifier:
    """Delivers unless told to fail; remembers every outbox id it delivered."""

    def __init__(self, failures: Sequence[Exception] = (), ts: bool = True):
        self.failures = list(failures)
        self.delivered: list[int] = []
        self.calls: list[int] = []
        self.ts = ts

    def send(self, item: OutboxItem) -> str | None:
        self.calls.append(item.id)
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(item.id)
        return f"ts-{item.id}" if self.ts else None


def watch_times(store: Store) -> dict[str, datetime | None]:
    with store.session() as s:
        return dict(s.execute(select(MentionRow.external_id, MentionRow.watch_next_at)).all())


# --- collect -----------------------------------------------------------------------------------------

def test_collect_continues_from_the_stored_cursor(sqlite_store, tmp_path):
    clock = ManualClock(T0)
    pages = [[build_mention("1"), build_mention("2")], [build_mention("2"), build_mention("3")]]
    collector = FakeCollector(pages, clock)

    first = collect_and_store(collector, sqlite_store, clock, OWN)
    assert len(first.new_ids) == 2 and first.more
    assert sqlite_store.cursor("fake", BRAND) == "1"

    clock.advance(minutes=1)
    second = collect_and_store(collector, sqlite_store, clock, OWN)
    assert len(second.new_ids) == 1 and second.seen_again == 1 and not second.more

    third = collect_and_store(collector, sqlite_store, clock, OWN)
    assert third.new_ids == () and not third.more
    assert collector.cursors_seen == [None, "1", "2"]
    assert sqlite_store.cursor("fake", BRAND) == "2"
    assert sqlite_store.count_mentions() == 3

    # A failing source leaves the cursor where it was.
    collector.fail_next = True
    with pytest.raises(ConnectionError):
        collect_and_store(collector, sqlite_store, clock, OWN)
    assert sqlite_store.cursor("fake", BRAND) == "2"

    # After a restart (a new store on the same file) the collector resumes from the same place.
    reopened = Store.open(str(sqlite_store.engine.url))
    try:
        fresh = FakeCollector(pages, clock)
        collect_and_store(fresh, reopened, clock, OWN)
        assert fresh.cursors_seen == ["2"]
    finally:
        reopened.close()


def test_collect_flags_the_brands_own_posts(sqlite_store):
    clock = ManualClock(T0)
    collector = FakeCollector([[build_mention("1", handle="@ACME_care"), build_mention("2")]], clock)
    report = collect_and_store(collector, sqlite_store, clock, OWN)
    stored = {m.external_id: m.is_brand_reply for m in sqlite_store.mentions(report.new_ids)}
    assert stored == {"1": True, "2": False}


# --- classify ------------------------------------------------------------------------------------------

def ingest_three(store: Store, clock: ManualClock) -> dict[str, int]:
    mentions = [build_mention("threat", LEGAL_THREAT, at=T0),
                build_mention("chatter", CALM, at=T0),
                build_mention("famous", NEUTRAL_CHATTER[2], at=T0, followers=250_000)]
    result = store.ingest("fake", BRAND, mentions, "1", own_accounts=OWN, now=clock.now())
    return dict(zip(["threat", "chatter", "famous"], result.new_ids))


def test_classify_pending_classifies_and_sets_the_watch(sqlite_store, classifier):
    clock = ManualClock(T0 + timedelta(seconds=30))
    cfg = build_config()
    ids = ingest_three(sqlite_store, clock)

    report = classify_pending(sqlite_store, classifier, clock, cfg.engagement)
    assert (report.classified, report.watched) == (3, 2)
    threat = sqlite_store.classification(ids["threat"])
    assert threat is not None and any(t.category == "legal" for t in threat.triggers)
    assert sqlite_store.classification(ids["chatter"]).triggers == ()

    first_poll = T0 + timedelta(minutes=cfg.engagement.repoll_minutes[0])
    assert watch_times(sqlite_store) == {"threat": first_poll, "chatter": None, "famous": first_poll}
    assert sqlite_store.due_for_repoll(first_poll - timedelta(seconds=1)) == []
    assert {m.external_id for m in sqlite_store.due_for_repoll(first_poll)} == {"threat", "famous"}
    # The language the source left out is filled in.
    (stored,) = sqlite_store.mentions([ids["threat"]])
    assert stored.lang == "en"

    again = classify_pending(sqlite_store, classifier, clock, cfg.engagement)
    assert (again.classified, again.watched) == (0, 0)


# --- engagement ----------------------------------------------------------------------------------------

def test_repoll_stores_snapshots_reschedules_and_ends_watches(sqlite_store, classifier):
    clock = ManualClock(T0 + timedelta(seconds=30))
    cfg = build_config()
    ids = ingest_three(sqlite_store, clock)
    classify_pending(sqlite_store, classifier, clock, cfg.engagement)
    sqlite_store.mark_scored(ids.values())
    collector = FakeCollector([], clock)

    # At the first poll the famous author's post is gone from the source: its watch ends.
    clock.set(T0 + timedelta(minutes=2))
    collector.live = {"threat": Metrics(reposts=40, quotes=3)}
    assert repoll_due(sqlite_store, {"x": collector}, clock, cfg.engagement) == 1
    assert collector.refreshed == [["famous", "threat"]]
    assert [s.metrics.reposts for s in sqlite_store.snapshots(ids["threat"])] == [0, 40]
    assert len(sqlite_store.snapshots(ids["famous"])) == 1
    assert watch_times(sqlite_store) == {"threat": T0 + timedelta(minutes=5), "chatter": None, "famous": None}
    # Changed engagement puts the post back in the scoring queue.
    assert [m.external_id for m, _ in sqlite_store.mentions_to_score()] == ["threat"]

    # Nothing is due before the next step of the schedule.
    clock.set(T0 + timedelta(minutes=4))
    assert repoll_due(sqlite_store, {"x": collector}, clock, cfg.engagement) == 0
    assert len(collector.refreshed) == 1

    clock.set(T0 + timedelta(minutes=5))
    assert repoll_due(sqlite_store, {"x": collector}, clock, cfg.engagement) == 1
    assert watch_times(sqlite_store)["threat"] == T0 + timedelta(minutes=10)

    # Past the maximum age the watch ends even though the source still returns the post.
    clock.set(T0 + timedelta(hours=cfg.engagement.max_age_hours, minutes=1))
    sqlite_store.set_watch({ids["threat"]: clock.now()})
    repoll_due(sqlite_store, {"x": collector}, clock, cfg.engagement)
    assert watch_times(sqlite_store)["threat"] is None
    assert sqlite_store.due_for_repoll(clock.now() + timedelta(days=30)) == []


def test_repoll_ends_watches_of_a_source_no_longer_configured(sqlite_store, classifier):
    clock = ManualClock(T0 + timedelta(seconds=30))
    cfg = build_config()
    ingest_three(sqlite_store, clock)
    classify_pending(sqlite_store, classifier, clock, cfg.engagement)
    clock.set(T0 + timedelta(minutes=3))
    assert repoll_due(sqlite_store, {}, clock, cfg.engagement) == 0
    assert set(watch_times(sqlite_store).values()) == {None}


def test_next_poll_schedule():
    cfg = build_config().engagement
    created = T0
    assert next_poll(created, created + timedelta(minutes=1), (), cfg) == created + timedelta(minutes=2)
    assert next_poll(created, created + timedelta(minutes=2), (), cfg) == created + timedelta(minutes=5)
    # After the last step: hourly.
    late = created + timedelta(minutes=61)
    assert next_poll(created, late, (), cfg) == late + timedelta(hours=1)
    assert next_poll(created, created + timedelta(hours=48), (), cfg) is None


# --- routing -------------------------------------------------------------------------------------------

ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALWAYS = [{"days": ALL_DAYS, "start": "00:00", "end": "00:00"}]


def member(name: str, **extra) -> dict:
    return {"name": name, "slack_user": f"U{name.upper()}", **extra}


def team(members: list[dict], on_call: str | None = None):
    cfg = build_config(team={"members": members, "on_call": on_call})
    return cfg.team


def amsterdam(*args) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("Europe/Amsterdam"))


def test_shift_over_midnight():
    (night,) = team([member("Daan", shifts=[{"days": ["fri", "sat"], "start": "22:00", "end": "06:00"}])]).members
    tz = "Europe/Amsterdam"
    # 2026-11-27 is a Friday.
    assert not on_shift(night, amsterdam(2026, 11, 27, 21, 59), tz)
    assert on_shift(night, amsterdam(2026, 11, 27, 22, 0), tz)
    assert on_shift(night, amsterdam(2026, 11, 28, 2, 0), tz)  # Saturday early: Friday's shift
    assert not on_shift(night, amsterdam(2026, 11, 28, 6, 0), tz)
    assert on_shift(night, amsterdam(2026, 11, 28, 23, 0), tz)
    assert on_shift(night, amsterdam(2026, 11, 29, 5, 59), tz)  # Sunday early: Saturday's shift
    assert not on_shift(night, amsterdam(2026, 11, 29, 22, 30), tz)  # no Sunday shift
    assert not on_shift(night, amsterdam(2026, 11, 27, 2, 0), tz)  # Friday early: no Thursday shift


def test_holiday_cancels_the_shifts_that_start_on_it():
    (sanne,) = team([member("Sanne", holidays=["2026-12-25"],
                            shifts=[{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00",
                                     "end": "16:30"}])]).members
    tz = "Europe/Amsterdam"
    assert on_shift(sanne, amsterdam(2026, 12, 24, 10, 0), tz)
    assert not on_shift(sanne, amsterdam(2026, 12, 25, 10, 0), tz)
    assert on_shift(sanne, amsterdam(2026, 12, 28, 10, 0), tz)

    # A night shift that starts the evening before a holiday still runs into the holiday.
    (night,) = team([member("Daan", holidays=["2026-11-28"],
                            shifts=[{"days": ["fri", "sat"], "start": "22:00", "end": "06:00"}])]).members
    assert on_shift(night, amsterdam(2026, 11, 28, 2, 0), tz)
    assert not on_shift(night, amsterdam(2026, 11, 28, 23, 0), tz)


def test_member_timezone_differs_from_the_team_timezone():
    (emma,) = team([member("Emma", timezone="Europe/London",
                           shifts=[{"days": ["mon", "wed", "fri"], "start": "08:00", "end": "17:00"}])]).members
    tz = "Europe/Amsterdam"
    # Monday 2026-11-23: London is one hour behind Amsterdam.
    assert not on_shift(emma, amsterdam(2026, 11, 23, 8, 30), tz)
    assert on_shift(emma, amsterdam(2026, 11, 23, 9, 0), tz)
    assert on_shift(emma, amsterdam(2026, 11, 23, 17, 59), tz)
    assert not on_shift(emma, amsterdam(2026, 11, 23, 18, 0), tz)
    # Without a timezone of their own the member follows the team's.
    (local,) = team([member("Sanne", shifts=[{"days": ["mon"], "start": "08:00", "end": "17:00"}])]).members
    assert on_shift(local, amsterdam(2026, 11, 23, 8, 30), tz)


def test_shifts_follow_local_time_across_the_dst_change():
    # 2026-10-25 (Sunday): Amsterdam goes from CEST (UTC+2) to CET (UTC+1) at 03:00 local.
    members = team([
        member("Day", shifts=[{"days": ["sun"], "start": "08:00", "end": "16:00"}]),
        member("Night", shifts=[{"days": ["sat"], "start": "22:00", "end": "06:00"}]),
    ]).members
    day, night = members
    tz = "Europe/Amsterdam"

    def utc(h, m=0, d=25):
        return datetime(2026, 10, d, h, m, tzinfo=UTC)

    assert not on_shift(day, utc(6, 30), tz)  # 07:30 CET (it would be 08:30 in summer time)
    assert on_shift(day, utc(7, 0), tz)  # 08:00 CET
    assert on_shift(day, utc(14, 59), tz)
    assert not on_shift(day, utc(15, 0), tz)  # 16:00 CET

    assert not on_shift(night, utc(19, 59, d=24), tz)  # 21:59 CEST on Saturday
    assert on_shift(night, utc(20, 0, d=24), tz)  # 22:00 CEST
    assert on_shift(night, utc(0, 30), tz)  # 02:30 CEST, the first time round
    assert on_shift(night, utc(1, 30), tz)  # 02:30 CET, the second time round
    assert on_shift(night, utc(4, 59), tz)  # 05:59 CET
    assert not on_shift(night, utc(5, 0), tz)  # 06:00 CET


def routing_team(on_call: str | None = None, shifts=ALWAYS):
    return team([
        member("Anna", languages=["nl", "en"], skills=["legal"], shifts=shifts, capacity=3),
        member("Bram", languages=["nl"], shifts=shifts, capacity=3),
        member("Chris", languages=["en"], shifts=shifts, capacity=3),
        member("Lia", role="lead", languages=["nl", "en"], shifts=shifts),
    ], on_call=on_call)


def ask(lang="nl", skills=(), previous=None, at=T0) -> RoutingRequest:
    return RoutingRequest(lang, skills, previous, at)


def test_router_picks_the_least_loaded_speaker_of_the_language():
    router = Router(routing_team(), "Europe/Amsterdam")
    owner = router.suggest(ask("nl"), {"Anna": 2, "Bram": 1, "Chris": 0})
    assert owner.member == "Bram" and owner.slack_user == "UBRAM"
    assert "speaks nl" in owner.reason
    assert router.suggest(ask("en"), {"Anna": 0, "Chris": 2}).member == "Anna"


def test_router_asks_for_the_brands_language_when_the_alert_has_none():
    router = Router(routing_team(), "Europe/Amsterdam")
    # A storm's many posts, or a post of no language, for a brand whose customers write Dutch first.
    owner = router.suggest(RoutingRequest(None, (), None, T0, brand_lang="nl"), {"Anna": 2, "Bram": 1, "Chris": 0})
    assert owner.member == "Bram" and "speaks nl" in owner.reason
    # The post's own language comes first.
    assert router.suggest(RoutingRequest("en", (), None, T0, brand_lang="nl"), {"Anna": 2, "Chris": 0}).member == "Chris"


def test_router_round_robin_among_equals():
    router = Router(routing_team(), "Europe/Amsterdam")
    picks = [router.suggest(ask("nl"), {}).member for _ in range(4)]
    assert set(picks[:2]) == {"Anna", "Bram"}
    assert picks[2] == picks[0] and picks[3] == picks[1]


def test_router_prefers_a_skilled_speaker():
    router = Router(routing_team(), "Europe/Amsterdam")
    owner = router.suggest(ask("en", skills=("legal", "x")), {"Anna": 1, "Chris": 0})
    assert owner.member == "Anna" and "legal" in owner.reason


def test_router_prefers_the_topic_skill_over_the_source_skill():
    crew = team([member("Anna", languages=["nl"], skills=["x"], shifts=ALWAYS),
                 member("Bram", languages=["nl"], skills=["press", "reddit"], shifts=ALWAYS)])
    owner = Router(crew, "Europe/Amsterdam").suggest(ask("nl", skills=("press", "x")), {"Anna": 0, "Bram": 2})
    assert (owner.member, owner.reason) == ("Bram", "speaks nl · skill: press · 2 open")
    # Nobody does the topic: the source's skill decides.
    owner = Router(crew, "Europe/Amsterdam").suggest(ask("nl", skills=("churn", "x")), {"Anna": 1, "Bram": 0})
    assert (owner.member, owner.reason) == ("Anna", "speaks nl · skill: x · 1 open")
    # A storm has no one language: its skill still decides, among everyone on shift.
    owner = Router(crew, "Europe/Amsterdam").suggest(ask(None, skills=("press",)), {"Anna": 0, "Bram": 2})
    assert (owner.member, owner.reason) == ("Bram", "skill: press · 2 open")


def test_router_previous_owner_wins():
    router = Router(routing_team(), "Europe/Amsterdam")
    owner = router.suggest(ask("nl", previous="Chris"), {"Chris": 2, "Bram": 0})
    assert owner.member == "Chris" and "before" in owner.reason
    # ... unless they are full or off shift.
    assert router.suggest(ask("nl", previous="Chris"), {"Chris": 3, "Anna": 1, "Bram": 0}).member == "Bram"
    off = team([member("Anna", languages=["nl"], shifts=ALWAYS),
                member("Chris", languages=["nl"], shifts=[{"days": ["sun"], "start": "09:00", "end": "10:00"}])])
    assert Router(off, "Europe/Amsterdam").suggest(ask("nl", previous="Chris"), {}).member == "Anna"


def test_router_when_everybody_is_full_still_suggests_someone_on_shift():
    router = Router(routing_team(), "Europe/Amsterdam")
    owner = router.suggest(ask("nl"), {"Anna": 5, "Bram": 3, "Chris": 3, "Lia": 9})
    assert owner.member == "Bram"


def test_router_on_call_when_nobody_is_on_shift():
    weekdays = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}]
    sunday = amsterdam(2026, 11, 22, 12, 0)
    router = Router(routing_team(on_call="Chris", shifts=weekdays), "Europe/Amsterdam")
    owner = router.suggest(ask("nl", at=sunday), {})
    assert owner.member == "Chris" and "on-call" in owner.reason
    # On a weekday the on-call rule does not apply.
    assert router.suggest(ask("nl", at=amsterdam(2026, 11, 23, 12, 0)), {}).member in {"Anna", "Bram"}


def test_router_lead_when_nobody_on_shift_and_no_on_call():
    weekdays = [{"days": ["mon"], "start": "09:00", "end": "17:00"}]
    router = Router(routing_team(shifts=weekdays), "Europe/Amsterdam")
    owner = router.suggest(ask("nl", at=amsterdam(2026, 11, 22, 12, 0)), {})
    assert owner.member == "Lia" and "lead" in owner.reason


def test_router_without_team_or_fallbacks():
    assert Router(team([]), "Europe/Amsterdam").suggest(ask(), {}).member is None
    nobody = team([member("Anna", shifts=[{"days": ["mon"], "start": "09:00", "end": "10:00"}])])
    owner = Router(nobody, "Europe/Amsterdam").suggest(ask(at=amsterdam(2026, 11, 22, 12, 0)), {})
    assert owner.member is None


# --- delivery ------------------------------------------------------------------------------------------

def open_escalations(store: Store, n: int, now: datetime = T0) -> list[int]:
    ids = store.ingest("x", BRAND, [build_mention(f"d{i}") for i in range(n)], "c", own_accounts=OWN, now=now).new_ids
    return [store.create_escalation(
        brand=BRAND, group_key=f"mention:{m}", kind="mention", subject_mention_id=m, storm_id=None, source="x",
        lang="en", severity=Severity.high, probability=0.8, reasons=["r"], suggested_owner=None, owner_reason=None,
        member_ids=[m], alert_payload={}, channel="#webcare", last_alert={}, now=now) for m in ids]


def outbox(store: Store) -> list[OutboxRow]:
    with store.session() as s:
        return list(s.scalars(select(OutboxRow).order_by(OutboxRow.id)).all())


def test_delivery_retry_after_keeps_the_item_and_sends_it_once(sqlite_store):
    clock = ManualClock(T0)
    open_escalations(sqlite_store, 1)
    notifier = RecordingNotifier([DeliveryError("rate limited", retry_after=30)])

    report = deliver_pending(sqlite_store, notifier, clock)
    assert (report.sent, report.failed, report.gave_up) == (0, 1, 0)
    (row,) = outbox(sqlite_store)
    assert (row.state, row.attempts, row.next_attempt_at) == ("pending", 1, T0 + timedelta(seconds=30))
    assert "rate limited" in row.last_error

    clock.advance(seconds=29)
    assert deliver_pending(sqlite_store, notifier, clock).sent == 0
    assert notifier.calls == [row.id]

    clock.advance(seconds=1)
    assert deliver_pending(sqlite_store, notifier, clock).sent == 1
    clock.advance(minutes=5)
    assert deliver_pending(sqlite_store, notifier, clock).sent == 0
    assert notifier.delivered == [row.id]
    (row,) = outbox(sqlite_store)
    assert (row.state, row.attempts, row.message_ts, row.sent_at) == ("sent", 2, f"ts-{row.id}", T0 + timedelta(seconds=30))


def test_delivery_permanent_error_fails_the_item(sqlite_store):
    clock = ManualClock(T0)
    open_escalations(sqlite_store, 1)
    notifier = RecordingNotifier([DeliveryError("channel_not_found", permanent=True)])
    assert deliver_pending(sqlite_store, notifier, clock).gave_up == 1
    assert sqlite_store.outbox_counts() == {"failed": 1}
    clock.advance(hours=1)
    deliver_pending(sqlite_store, notifier, clock)
    assert len(notifier.calls) == 1 and notifier.delivered == []


def test_delivery_backs_off_and_gives_up_after_max_attempts(sqlite_store):
    clock = ManualClock(T0)
    open_escalations(sqlite_store, 1)
    notifier = RecordingNotifier([DeliveryError("timeout")] * 3)
    deliver_pending(sqlite_store, notifier, clock, max_attempts=3)
    (row,) = outbox(sqlite_store)
    assert row.next_attempt_at == T0 + timedelta(seconds=2)
    clock.set(row.next_attempt_at)
    deliver_pending(sqlite_store, notifier, clock, max_attempts=3)
    (row,) = outbox(sqlite_store)
    assert row.next_attempt_at == T0 + timedelta(seconds=2 + 4) and row.state == "pending"
    clock.set(row.next_attempt_at)
    assert deliver_pending(sqlite_store, notifier, clock, max_attempts=3).gave_up == 1
    assert outbox(sqlite_store)[0].state == "failed" and outbox(sqlite_store)[0].attempts == 3


def test_one_escalation_failing_does_not_hold_up_another(sqlite_store):
    clock = ManualClock(T0)
    esc_a, esc_b = open_escalations(sqlite_store, 2)
    (new_a, new_b) = outbox(sqlite_store)
    notifier = RecordingNotifier([DeliveryError("boom", retry_after=60)])
    report = deliver_pending(sqlite_store, notifier, clock)
    assert (report.sent, report.failed) == (1, 1)
    assert notifier.delivered == [new_b.id]


def test_an_update_is_not_sent_before_its_new_message(sqlite_store):
    clock = ManualClock(T0)
    (esc,) = open_escalations(sqlite_store, 1)
    sqlite_store.update_escalation(esc, severity=Severity.critical, probability=0.97, reasons=["more"],
                                   member_ids=[], alert_payload={"change": "severity high → critical"},
                                   channel="#webcare", now=T0)
    new, update = outbox(sqlite_store)
    notifier = RecordingNotifier([DeliveryError("down", retry_after=10)])
    deliver_pending(sqlite_store, notifier, clock)
    assert notifier.calls == [new.id]  # the update was not tried while the first message failed
    clock.advance(seconds=10)
    deliver_pending(sqlite_store, notifier, clock)
    # The update goes out on a later run, once the first message is recorded as sent.
    deliver_pending(sqlite_store, notifier, clock)
    assert notifier.delivered == [new.id, update.id]
    assert sqlite_store.outbox_counts() == {"sent": 2}


def test_update_is_delivered_when_the_notifier_has_no_message_ids(sqlite_store):
    clock = ManualClock(T0)
    (esc,) = open_escalations(sqlite_store, 1)
    notifier = RecordingNotifier(ts=False)
    deliver_pending(sqlite_store, notifier, clock)
    sqlite_store.update_escalation(esc, severity=Severity.critical, probability=0.97, reasons=["more"],
                                   member_ids=[], alert_payload={"change": "grew"}, channel="#webcare", now=T0)
    for _ in range(3):
        clock.advance(minutes=1)
        deliver_pending(sqlite_store, notifier, clock)
    assert sqlite_store.outbox_counts() == {"sent": 2}


# --- end to end -----------------------------------------------------------------------------------------

def threat_scenario(scenario_file, *extra: dict):
    return scenario_file([
        scenario_post("c1", NEUTRAL_CHATTER[0], T0, expect="no_alert"),
        scenario_post("t1", LEGAL_THREAT, T0 + timedelta(minutes=1), author_id="angry", expect="alert"),
        scenario_post("c2", NEUTRAL_CHATTER[1], T0 + timedelta(minutes=2), expect="no_alert"),
        *extra,
    ])


def build_pipeline(store, clock, scenario_path, classifier, notifier=None, batch_size=50):
    config = build_config()
    collector = ReplayCollector(Scenario.load(scenario_path), BRAND, clock, batch_size=batch_size)
    return Pipeline(config, store, clock, notifier or RecordingNotifier(), {"replay": collector},
                    classifier=classifier)


def escalation_rows(store: Store) -> list[EscalationRow]:
    with store.session() as s:
        return list(s.scalars(select(EscalationRow).order_by(EscalationRow.id)).all())


def test_end_to_end_legal_threat_raises_exactly_one_alert(store, scenario_file, classifier):
    clock = ManualClock(T0 + timedelta(minutes=1, seconds=30))
    stream = io.StringIO()
    pipeline = build_pipeline(store, clock, threat_scenario(scenario_file), classifier, ConsoleNotifier(stream))

    # Replay hands out only what the clock has reached.
    assert len(pipeline.collect("replay").new_ids) == 2
    clock.set(T0 + timedelta(minutes=10))
    assert len(pipeline.collect("replay").new_ids) == 1
    assert pipeline.collect("replay").new_ids == ()

    report = pipeline.process()
    assert (report.classified, report.queued) == (3, 1)
    (esc,) = escalation_rows(store)
    with store.session() as s:
        threat_id = s.scalar(select(MentionRow.id).where(MentionRow.external_id == "t1"))
    assert esc.group_key == f"mention:{threat_id}" and esc.kind == "mention"
    assert esc.state == "open" and esc.subject_mention_id == threat_id
    assert any("legal" in r and "threat" in r for r in esc.reasons)
    assert Severity(esc.severity) in (Severity.medium, Severity.high, Severity.critical)
    assert [(o.kind, o.state) for o in outbox(store)] == [("new", "pending")]

    assert pipeline.deliver().sent == 1
    assert stream.getvalue().count(f"── alert #{esc.id} →") == 1
    assert "lawyer" in stream.getvalue()

    # Running again, later, raises nothing new.
    assert pipeline.process().queued == 0
    clock.advance(minutes=30)
    pipeline.repoll()
    assert pipeline.process().queued == 0
    assert pipeline.deliver().sent == 0
    assert len(escalation_rows(store)) == 1
    assert [(o.kind, o.state) for o in outbox(store)] == [("new", "sent")]


def test_end_to_end_growth_becomes_an_update_not_a_second_alert(sqlite_store, scenario_file, classifier):
    metrics = {"type": "metrics", "at": (T0 + timedelta(minutes=4)).isoformat(), "source": "x", "id": "t1",
               "metrics": {"reposts": 900, "quotes": 200, "replies": 50, "likes": 3000, "views": 90000}}
    clock = ManualClock(T0 + timedelta(minutes=3))
    pipeline = build_pipeline(sqlite_store, clock, threat_scenario(scenario_file, metrics), classifier)
    pipeline.collect("replay")
    pipeline.process()
    pipeline.deliver()
    clock.set(T0 + timedelta(minutes=5))
    assert pipeline.repoll() >= 1
    pipeline.process()
    pipeline.deliver()
    assert len(escalation_rows(sqlite_store)) == 1
    kinds = [(o.kind, o.state) for o in outbox(sqlite_store)]
    assert kinds == [("new", "sent"), ("update", "sent")]
    update = outbox(sqlite_store)[1]
    assert "reposts" in update.payload["change"]


def test_end_to_end_brand_reply_after_the_alert_is_recorded(sqlite_store, scenario_file, classifier):
    reply = scenario_post("r1", "@angry so sorry, we sent you a DM", T0 + timedelta(minutes=6), author_id="brand",
                          handle=OWN_HANDLE, in_reply_to="t1")
    reply["conversation_id"] = "t1"
    clock = ManualClock(T0 + timedelta(minutes=3))
    pipeline = build_pipeline(sqlite_store, clock, threat_scenario(scenario_file, reply), classifier)
    pipeline.collect("replay")
    pipeline.process()
    clock.set(T0 + timedelta(minutes=7))
    pipeline.collect("replay")
    pipeline.process()
    (esc,) = escalation_rows(sqlite_store)
    assert esc.first_reply_at == T0 + timedelta(minutes=6)


def test_end_to_end_brand_reply_in_the_same_batch_is_recorded(sqlite_store, scenario_file, classifier):
    reply = scenario_post("r1", "@angry so sorry, we sent you a DM", T0 + timedelta(minutes=2, seconds=30),
                          author_id="brand", handle=OWN_HANDLE, in_reply_to="t1")
    reply["conversation_id"] = "t1"
    clock = ManualClock(T0 + timedelta(minutes=10))
    pipeline = build_pipeline(sqlite_store, clock, threat_scenario(scenario_file, reply), classifier)
    pipeline.collect("replay")
    pipeline.process()
    escalations = escalation_rows(sqlite_store)
    # Either no alert (the brand already answered) or an alert that knows about the reply.
    assert all(e.first_reply_at == T0 + timedelta(minutes=2, seconds=30) for e in escalations)


def test_brand_post_that_started_the_thread_is_not_a_reply(sqlite_store, scenario_file, classifier):
    announcement = scenario_post("a0", "Planned maintenance tonight between 01:00 and 03:00", T0 - timedelta(hours=1),
                                 author_id="brand", handle=OWN_HANDLE)
    threat = scenario_post("t1", LEGAL_THREAT, T0 + timedelta(minutes=1), author_id="angry", in_reply_to="a0")
    threat["conversation_id"] = "a0"
    clock = ManualClock(T0 + timedelta(minutes=10))
    pipeline = build_pipeline(sqlite_store, clock, scenario_file([announcement, threat]), classifier)
    pipeline.collect("replay")
    pipeline.process()
    (esc,) = escalation_rows(sqlite_store)
    # Nobody has answered the customer yet.
    assert esc.first_reply_at is None


def test_end_to_end_closed_escalation_is_not_reopened(sqlite_store, scenario_file, classifier):
    clock = ManualClock(T0 + timedelta(minutes=10))
    pipeline = build_pipeline(sqlite_store, clock, threat_scenario(scenario_file), classifier)
    pipeline.collect("replay")
    pipeline.process()
    (esc,) = escalation_rows(sqlite_store)
    sqlite_store.transition(esc.id, EscalationState.dismissed, "sanne", clock.now())
    # New engagement puts the post back in the scoring queue; the dismissed alert stays closed.
    sqlite_store.add_snapshots([MetricsUpdate("x", "t1", clock.now(), Metrics(reposts=5000))])
    pipeline.process()
    assert len(escalation_rows(sqlite_store)) == 1
    assert [o.kind for o in outbox(sqlite_store)] == ["new"]
