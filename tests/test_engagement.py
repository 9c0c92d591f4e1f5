"""The engagement watchlist: a thinning schedule, the end of a dead or closed watch, and source budgets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from monitor.clock import ManualClock
from monitor.collectors.base import SourceFault
from monitor.models import EscalationState, Metrics, MetricsUpdate, Severity, Snapshot
from monitor.pipeline.engagement import next_poll, repoll_due
from monitor.store.repository import Store
from tests.support import BRAND, T0, build_config, build_mention


class Source:
    """Re-polls from a dict of live metrics; remembers each call, or raises `fault` once."""

    source = "x-acme"
    brand = BRAND
    sources = frozenset({"x"})

    def __init__(self, clock: ManualClock):
        self.clock = clock
        self.live: dict[str, Metrics] = {}
        self.calls: list[list[str]] = []
        self.fault: SourceFault | None = None

    def refresh_metrics(self, external_ids: Sequence[str]) -> list[MetricsUpdate]:
        self.calls.append(sorted(external_ids))
        if self.fault is not None:
            fault, self.fault = self.fault, None
            raise fault
        return [MetricsUpdate("x", i, self.clock.now(), self.live[i]) for i in external_ids if i in self.live]


def watched(store: Store, clock: ManualClock, *names: str) -> dict[str, int]:
    ids = store.ingest("x-acme", BRAND, [build_mention(n, at=T0) for n in names], None, own_accounts={},
                       now=clock.now()).new_ids
    store.set_watch({i: clock.now() for i in ids})
    return dict(zip(names, ids))


def watch_of(store: Store, mention_id: int) -> datetime | None:
    from monitor.store.schema import MentionRow

    with store.session() as s:
        return s.get_one(MentionRow, mention_id).watch_next_at


def snaps(shares: Sequence[int]) -> tuple[Snapshot, ...]:
    return tuple(Snapshot(T0 + timedelta(minutes=i), Metrics(reposts=n)) for i, n in enumerate(shares))


def test_schedule_thins_out_with_age_and_is_configurable():
    cfg = build_config(engagement={"repoll_minutes": [1, 3, 30]}).engagement
    assert next_poll(T0, T0 + timedelta(seconds=30), (), cfg) == T0 + timedelta(minutes=1)
    assert next_poll(T0, T0 + timedelta(minutes=1), (), cfg) == T0 + timedelta(minutes=3)
    assert next_poll(T0, T0 + timedelta(minutes=3), (), cfg) == T0 + timedelta(minutes=30)
    after = T0 + timedelta(minutes=31)
    assert next_poll(T0, after, (), cfg) == after + timedelta(hours=1)


def test_a_dead_post_stops_being_watched_only_when_old_enough_and_flat():
    cfg = build_config(engagement={"dead_after_polls": 4, "dead_min_age_minutes": 90}).engagement
    flat, growing = snaps([7, 7, 7, 7]), snaps([7, 7, 7, 8])
    old, young = T0 + timedelta(minutes=90), T0 + timedelta(minutes=89)
    assert next_poll(T0, old, flat, cfg) is None
    assert next_poll(T0, young, flat, cfg) is not None
    assert next_poll(T0, old, growing, cfg) is not None
    assert next_poll(T0, old, snaps([7, 7, 7]), cfg) is not None, "three flat polls are not four"


def test_a_resolved_or_dismissed_escalation_ends_the_watch_without_a_read(sqlite_store):
    clock = ManualClock(T0 + timedelta(minutes=2))
    cfg = build_config()
    ids = watched(sqlite_store, clock, "closed", "open")
    for name in ids:
        escalation = sqlite_store.create_escalation(
            brand=BRAND, group_key=f"mention:{ids[name]}", kind="mention", subject_mention_id=ids[name],
            storm_id=None, source="x", lang="en", severity=Severity.high, probability=0.8, reasons=["r"],
            suggested_owner=None, owner_reason=None, member_ids=[ids[name]], alert_payload={}, channel="#c",
            last_alert={}, now=clock.now())
        if name == "closed":
            sqlite_store.transition(escalation, EscalationState.dismissed, "agent", clock.now())
    source = Source(clock)
    source.live = {"closed": Metrics(reposts=5), "open": Metrics(reposts=5)}
    assert repoll_due(sqlite_store, {"x": source}, clock, cfg.engagement) == 1
    assert source.calls == [["open"]]
    assert watch_of(sqlite_store, ids["closed"]) is None
    assert watch_of(sqlite_store, ids["open"]) == T0 + timedelta(minutes=5)


def test_a_paused_source_is_not_asked_until_its_pause_ends(sqlite_store):
    clock = ManualClock(T0 + timedelta(minutes=2))
    cfg = build_config()
    ids = watched(sqlite_store, clock, "post")
    reset = T0 + timedelta(hours=3)
    sqlite_store.record_source_success("x-acme", BRAND, clock.now(), reset, "daily read budget")
    source = Source(clock)
    source.live = {"post": Metrics(reposts=5)}
    assert repoll_due(sqlite_store, {"x": source}, clock, cfg.engagement) == 0
    assert source.calls == []
    assert watch_of(sqlite_store, ids["post"]) == reset
    clock.set(reset)
    assert repoll_due(sqlite_store, {"x": source}, clock, cfg.engagement) == 1
    assert source.calls == [["post"]]


def test_a_fault_with_a_retry_time_postpones_the_watch_to_it(sqlite_store):
    clock = ManualClock(T0 + timedelta(minutes=2))
    cfg = build_config()
    ids = watched(sqlite_store, clock, "a", "b")
    source = Source(clock)
    retry = clock.now() + timedelta(minutes=15)
    source.fault = SourceFault("rate_limited", "429 from the API", retry)
    assert repoll_due(sqlite_store, {"x": source}, clock, cfg.engagement) == 0
    assert {watch_of(sqlite_store, i) for i in ids.values()} == {retry}
    # A fault without a retry time leaves the posts due for the next run.
    clock.set(retry)
    source.fault = SourceFault("timeout", "read timed out")
    repoll_due(sqlite_store, {"x": source}, clock, cfg.engagement)
    assert {watch_of(sqlite_store, i) for i in ids.values()} == {retry}
    assert len(source.calls) == 2
