"""The store's operations, one transaction each, in terms of the pipeline's records."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from classifiers.textnorm import well_formed
from monitor.models import (
    LabelledAlert,
    Author,
    Classification,
    IN_HAND,
    EscalationState,
    MentionIn,
    Metrics,
    MetricsUpdate,
    RiskAssessment,
    Severity,
    Snapshot,
    StoredMention,
    TriggerMatch,
)
from monitor.store import db
from monitor.store.schema import (
    ClassificationRow,
    CursorRow,
    EscalationEventRow,
    EscalationMentionRow,
    EscalationRow,
    FeedbackRow,
    MentionRow,
    OutboxRow,
    RiskRow,
    SnapshotRow,
    SourceHealthRow,
    SourceReadsRow,
    StormMemberRow,
    StormRow,
)


@dataclass(frozen=True, slots=True)
class IngestResult:
    new_ids: tuple[int, ...]
    seen_again: int


@dataclass(frozen=True, slots=True)
class SourceHealth:
    source: str
    brand: str
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    failures: int  # in a row
    paused_until: datetime | None
    pause_reason: str | None


@dataclass(frozen=True, slots=True)
class StormRecord:
    id: int
    brand: str
    name: str
    terms: tuple[str, ...]
    opened_at: datetime
    last_post_at: datetime
    closed_at: datetime | None
    expected_per_window: float
    peak_per_window: int
    size: int


@dataclass(frozen=True, slots=True)
class EscalationRecord:
    id: int
    brand: str
    group_key: str
    kind: str
    subject_mention_id: int | None
    storm_id: int | None
    source: str
    lang: str | None
    severity: Severity
    probability: float
    reasons: tuple[str, ...]
    state: EscalationState
    suggested_owner: str | None
    owner: str | None
    created_at: datetime
    claimed_at: datetime | None
    first_reply_at: datetime | None
    closed_at: datetime | None
    members: int
    last_alert: dict


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change of an escalation: who moved it where, when."""

    at: datetime
    state: EscalationState
    actor: str | None


@dataclass(frozen=True, slots=True)
class StormSummary:
    name: str
    posts: int
    first_post_at: datetime
    last_post_at: datetime
    peak_per_window: int


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    escalation_id: int
    kind: str
    payload: dict
    channel: str | None
    attempts: int
    thread_ts: str | None  # ts of the escalation's first message, for updates
    thread_channel: str | None = None  # channel of that first message: updates go where it is


def _mention(row: MentionRow) -> StoredMention:
    return StoredMention(
        id=row.id,
        source=row.source,
        external_id=row.external_id,
        brand=row.brand,
        author=Author(row.author_id, row.author_handle, row.author_followers, row.author_verified),
        text=row.text,
        created_at=row.created_at,
        lang=row.lang,
        url=row.url,
        conversation_id=row.conversation_id,
        in_reply_to=row.in_reply_to,
        is_brand_reply=row.is_brand_reply,
    )


def _classification(row: ClassificationRow) -> Classification:
    return Classification(
        mention_id=row.mention_id,
        model=row.model,
        model_version=row.model_version,
        lang=row.lang,
        sentiment=row.sentiment,
        sentiment_scores=dict(row.sentiment_scores),
        complaint=row.complaint,
        triggers=tuple(TriggerMatch(**t) for t in row.triggers),
    )


def _metrics(row: SnapshotRow) -> Metrics:
    return Metrics(row.reposts, row.replies, row.likes, row.quotes, row.views)


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> "Store":
        engine = db.make_engine(url)
        if migrate:
            db.upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # --- cursors and ingest -------------------------------------------------------------

    def cursor(self, source: str, brand: str) -> str | None:
        with self.session() as s:
            row = s.get(CursorRow, (source, brand))
            return row.cursor if row else None

    def ingest(
        self,
        collector: str,
        brand: str,
        mentions: Sequence[MentionIn],
        new_cursor: str | None,
        *,
        own_accounts: dict[str, set[str]],
        now: datetime,
    ) -> IngestResult:
        """Store a collected batch and move the collector's cursor, in one transaction.

        A post seen before is not stored again; its metrics become one more snapshot.
        `own_accounts` maps a source to the brand's lower-cased handles there.
        """
        unique: dict[tuple[str, str], MentionIn] = {}
        for m in mentions:
            unique[(m.source, m.external_id)] = m  # pages can overlap; the later copy is fresher
        new_ids: list[int] = []
        seen_again = 0
        with self.session() as s:
            existing = self._ids_of(s, list(unique))
            snapshots: list[dict] = []
            fresh: dict[tuple[str, str], dict] = {}
            for key, m in unique.items():
                if key in existing:
                    seen_again += 1
                    snapshots.append(_snapshot_values(existing[key], now, m.metrics))
                    continue
                is_brand = m.author.handle.lower().lstrip("@") in own_accounts.get(m.source, set())
                fresh[key] = dict(
                    source=m.source,
                    external_id=m.external_id,
                    brand=brand,
                    author_id=m.author.id,
                    author_handle=m.author.handle,
                    author_followers=max(0, m.author.followers),
                    author_verified=m.author.verified,
                    text=m.text,
                    lang=m.lang,
                    url=m.url,
                    created_at=m.created_at,
                    collected_at=now,
                    conversation_id=m.conversation_id,
                    in_reply_to=m.in_reply_to,
                    is_brand_reply=is_brand,
                    needs_scoring=not is_brand,
                )
            if fresh:
                # One executemany for the batch: a round trip per post made ingest the backfill's bottleneck.
                s.execute(insert(MentionRow), list(fresh.values()))
                stored = self._ids_of(s, list(fresh))
                for key, values in fresh.items():
                    new_ids.append(stored[key])
                    snapshots.append(_snapshot_values(stored[key], now, unique[key].metrics))
            if snapshots:
                s.execute(insert(SnapshotRow), snapshots)
            for values in fresh.values():
                if values["is_brand_reply"]:
                    _record_brand_reply(s, MentionRow(**values), now)
            cursor_row = s.get(CursorRow, (collector, brand))
            if cursor_row is None:
                s.add(CursorRow(source=collector, brand=brand, cursor=new_cursor, updated_at=now))
            else:
                cursor_row.cursor = new_cursor
                cursor_row.updated_at = now
        return IngestResult(tuple(new_ids), seen_again)

    @staticmethod
    def _ids_of(s: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """Row ids of the stored mentions among (source, external id) keys."""
        found: dict[tuple[str, str], int] = {}
        for source in {k[0] for k in keys}:
            ids = [k[1] for k in keys if k[0] == source]
            for ext_id, row_id in s.execute(select(MentionRow.external_id, MentionRow.id).where(
                    MentionRow.source == source, MentionRow.external_id.in_(ids))).all():
                found[(source, ext_id)] = row_id
        return found

    # --- source health ---------------------------------------------------------------------

    def source_health(self, source: str, brand: str) -> SourceHealth | None:
        with self.session() as s:
            row = s.get(SourceHealthRow, (source, brand))
            return _health(row) if row else None

    def all_source_health(self) -> list[SourceHealth]:
        with self.session() as s:
            return [_health(r) for r in s.scalars(select(SourceHealthRow).order_by(SourceHealthRow.source,
                                                                                   SourceHealthRow.brand))]

    def record_source_success(self, source: str, brand: str, now: datetime, paused_until: datetime | None,
                              pause_reason: str | None) -> None:
        with self.session() as s:
            row = _health_row(s, source, brand)
            row.last_success_at = now
            row.failures = 0
            row.paused_until, row.pause_reason = paused_until, pause_reason

    def record_source_failure(self, source: str, brand: str, now: datetime, error: str, paused_until: datetime,
                              pause_reason: str) -> None:
        with self.session() as s:
            row = _health_row(s, source, brand)
            row.last_error_at, row.last_error = now, well_formed(error)  # it may quote a malformed body
            row.failures += 1
            row.paused_until, row.pause_reason = paused_until, pause_reason

    def reads_on(self, source: str, day: str) -> int:
        with self.session() as s:
            row = s.get(SourceReadsRow, source)
            return row.reads if row is not None and row.day == day else 0

    def add_reads(self, source: str, day: str, count: int) -> int:
        """Count `count` more posts read on `day` (UTC); returns the day's total."""
        with self.session() as s:
            row = s.get(SourceReadsRow, source, with_for_update=True)
            if row is None:
                row = SourceReadsRow(source=source, day=day, reads=0)
                s.add(row)
            elif row.day != day:
                row.day, row.reads = day, 0
            row.reads += count
            return row.reads

    def mentions_collected_since(self, since: datetime) -> dict[tuple[str, str], int]:
        """(source, brand) -> mentions collected at or after `since`."""
        with self.session() as s:
            rows = s.execute(select(MentionRow.source, MentionRow.brand, func.count())
                             .where(MentionRow.collected_at >= since)
                             .group_by(MentionRow.source, MentionRow.brand)).all()
            return {(source, brand): count for source, brand, count in rows}

    # --- engagement -----------------------------------------------------------------------

    def add_snapshots(self, updates: Iterable[MetricsUpdate]) -> int:
        """Store re-polled engagement; a changed count puts the mention back in the scoring queue."""
        stored = 0
        with self.session() as s:
            for u in updates:
                mention_id = s.scalar(
                    select(MentionRow.id).where(MentionRow.source == u.source, MentionRow.external_id == u.external_id)
                )
                if mention_id is None:
                    continue
                last = s.scalars(
                    select(SnapshotRow).where(SnapshotRow.mention_id == mention_id)
                    .order_by(SnapshotRow.observed_at.desc(), SnapshotRow.id.desc()).limit(1)
                ).first()
                s.add(_snapshot_row(mention_id, u.observed_at, u.metrics))
                stored += 1
                if last is None or _metrics(last) != u.metrics:
                    s.execute(update(MentionRow).where(MentionRow.id == mention_id).values(needs_scoring=True))
        return stored

    def snapshots(self, mention_id: int) -> tuple[Snapshot, ...]:
        with self.session() as s:
            rows = s.scalars(
                select(SnapshotRow).where(SnapshotRow.mention_id == mention_id)
                .order_by(SnapshotRow.observed_at, SnapshotRow.id)
            ).all()
            return tuple(Snapshot(r.observed_at, _metrics(r)) for r in rows)

    def latest_snapshots(self, brand: str, since: datetime, until: datetime) -> list[tuple[datetime, Snapshot]]:
        """(posted at, latest snapshot) of each customer post of the brand made in [since, until)."""
        with self.session() as s:
            rows = s.execute(
                select(MentionRow.id, MentionRow.created_at, SnapshotRow)
                .join(SnapshotRow, SnapshotRow.mention_id == MentionRow.id)
                .where(MentionRow.brand == brand, MentionRow.created_at >= since, MentionRow.created_at < until,
                       MentionRow.is_brand_reply.is_(False))
                .order_by(SnapshotRow.observed_at, SnapshotRow.id)
            ).all()
            latest = {mention_id: (created_at, Snapshot(row.observed_at, _metrics(row)))
                      for mention_id, created_at, row in rows}
            return list(latest.values())

    def set_watch(self, schedule: dict[int, datetime | None]) -> None:
        with self.session() as s:
            for mention_id, next_at in schedule.items():
                s.execute(update(MentionRow).where(MentionRow.id == mention_id).values(watch_next_at=next_at))

    def mentions_with_closed_escalation(self, mention_ids: Sequence[int]) -> set[int]:
        """Those of these mentions whose latest escalation is resolved or dismissed."""
        with self.session() as s:
            rows = s.execute(
                select(EscalationMentionRow.mention_id, EscalationRow.state)
                .join(EscalationRow, EscalationRow.id == EscalationMentionRow.escalation_id)
                .where(EscalationMentionRow.mention_id.in_(list(mention_ids)))
                .order_by(EscalationRow.id)
            ).all()
            latest = {mention_id: state for mention_id, state in rows}
            return {m for m, state in latest.items()
                    if state in (EscalationState.resolved.value, EscalationState.dismissed.value)}

    def due_for_repoll(self, now: datetime, limit: int = 500) -> list[StoredMention]:
        with self.session() as s:
            rows = s.scalars(
                select(MentionRow).where(MentionRow.watch_next_at <= now)
                .order_by(MentionRow.watch_next_at).limit(limit)
            ).all()
            return [_mention(r) for r in rows]

    # --- classification -------------------------------------------------------------------

    def unclassified(self, model: str, model_version: str, limit: int = 256) -> list[StoredMention]:
        with self.session() as s:
            done = select(ClassificationRow.mention_id).where(
                ClassificationRow.model == model, ClassificationRow.model_version == model_version
            )
            rows = s.scalars(
                select(MentionRow).where(MentionRow.is_brand_reply.is_(False), MentionRow.id.not_in(done))
                .order_by(MentionRow.id).limit(limit)
            ).all()
            return [_mention(r) for r in rows]

    def ever_classified(self, mention_ids: Sequence[int]) -> set[int]:
        """Those of these mentions classified before, by any model."""
        with self.session() as s:
            return set(s.scalars(select(ClassificationRow.mention_id).where(
                ClassificationRow.mention_id.in_(list(mention_ids)))).all())

    def save_classifications(self, results: Sequence[Classification], now: datetime) -> None:
        with self.session() as s:
            for c in results:
                s.add(ClassificationRow(
                    mention_id=c.mention_id,
                    model=c.model,
                    model_version=c.model_version,
                    lang=c.lang,
                    sentiment=c.sentiment,
                    sentiment_scores=c.sentiment_scores,
                    negative=c.negative,
                    complaint=c.complaint,
                    triggers=[_trigger_dict(t) for t in c.triggers],
                    classified_at=now,
                ))
                # The source did not label the language: keep what the classifier found.
                s.execute(update(MentionRow).where(MentionRow.id == c.mention_id, MentionRow.lang.is_(None))
                          .values(lang=c.lang))

    def classification(self, mention_id: int) -> Classification | None:
        with self.session() as s:
            row = s.scalars(
                select(ClassificationRow).where(ClassificationRow.mention_id == mention_id)
                .order_by(ClassificationRow.id.desc()).limit(1)
            ).first()
            return _classification(row) if row else None

    # --- scoring ----------------------------------------------------------------------------

    def mentions_to_score(self, limit: int = 500) -> list[tuple[StoredMention, Classification]]:
        """Classified customer mentions whose risk must be (re)assessed."""
        with self.session() as s:
            latest = (
                select(func.max(ClassificationRow.id)).group_by(ClassificationRow.mention_id).scalar_subquery()
            )
            rows = s.execute(
                select(MentionRow, ClassificationRow)
                .join(ClassificationRow, ClassificationRow.mention_id == MentionRow.id)
                .where(MentionRow.needs_scoring.is_(True), ClassificationRow.id.in_(latest))
                .order_by(MentionRow.id).limit(limit)
            ).all()
            return [(_mention(m), _classification(c)) for m, c in rows]

    def save_assessments(self, assessments: Sequence[RiskAssessment]) -> None:
        """Stores the model's own probability (before recalibration): the next recalibration fits on it."""
        with self.session() as s:
            for a in assessments:
                s.add(RiskRow(
                    mention_id=a.mention_id,
                    probability=a.probability if a.raw_probability is None else a.raw_probability,
                    severity=a.severity.value if a.severity else None,
                    reasons=list(a.reasons),
                    forecast_shares=a.forecast_shares,
                    assessed_at=a.assessed_at,
                ))

    def mark_scored(self, mention_ids: Iterable[int]) -> None:
        """Called once the decisions on these mentions are stored, so a crash before it re-decides them."""
        with self.session() as s:
            s.execute(update(MentionRow).where(MentionRow.id.in_(list(mention_ids))).values(needs_scoring=False))

    def unanswered_contacts(self, mention: StoredMention, since: datetime) -> int:
        """Posts by this author since `since`, counted from after the brand's last reply to them."""
        with self.session() as s:
            author_posts = s.execute(
                select(MentionRow.external_id, MentionRow.created_at, MentionRow.conversation_id).where(
                    MentionRow.source == mention.source,
                    MentionRow.author_id == mention.author.id,
                    MentionRow.brand == mention.brand,
                    MentionRow.created_at >= since,
                    MentionRow.created_at <= mention.created_at,
                )
            ).all()
            if not author_posts:
                return 0
            ids = [p.external_id for p in author_posts]
            conversations = [p.conversation_id for p in author_posts if p.conversation_id]
            last_reply = s.scalar(
                select(func.max(MentionRow.created_at)).where(
                    MentionRow.source == mention.source,
                    MentionRow.is_brand_reply.is_(True),
                    MentionRow.created_at <= mention.created_at,
                    or_(MentionRow.in_reply_to.in_(ids), MentionRow.conversation_id.in_(conversations)),
                )
            )
            return sum(1 for p in author_posts if last_reply is None or p.created_at > last_reply)

    def author_mention_ids(self, mention: StoredMention, since: datetime) -> list[int]:
        with self.session() as s:
            return list(s.scalars(
                select(MentionRow.id).where(
                    MentionRow.source == mention.source,
                    MentionRow.author_id == mention.author.id,
                    MentionRow.brand == mention.brand,
                    MentionRow.created_at >= since,
                    MentionRow.created_at <= mention.created_at,
                ).order_by(MentionRow.id)
            ).all())

    # --- storms -------------------------------------------------------------------------

    def negative_mentions(self, brand: str, since: datetime, until: datetime,
                          negative_at_least: float, complaint_at_least: float) -> list[tuple[StoredMention, Classification]]:
        with self.session() as s:
            # Each mention's latest classification only: after a model change a mention has two, and
            # counting both doubled every surge and baseline (and added a storm member twice).
            latest = (
                select(func.max(ClassificationRow.id)).group_by(ClassificationRow.mention_id).scalar_subquery()
            )
            rows = s.execute(
                select(MentionRow, ClassificationRow)
                .join(ClassificationRow, ClassificationRow.mention_id == MentionRow.id)
                .where(
                    MentionRow.brand == brand,
                    MentionRow.created_at >= since,
                    MentionRow.created_at <= until,
                    ClassificationRow.id.in_(latest),
                    or_(ClassificationRow.negative >= negative_at_least,
                        ClassificationRow.complaint >= complaint_at_least),
                )
                .order_by(MentionRow.created_at)
            ).all()
            return [(_mention(m), _classification(c)) for m, c in rows]

    def mention_texts(self, brand: str, since: datetime, until: datetime) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(MentionRow.text).where(
                MentionRow.brand == brand, MentionRow.created_at >= since, MentionRow.created_at < until)))

    def first_mention_at(self, brand: str) -> datetime | None:
        with self.session() as s:
            return s.scalar(select(func.min(MentionRow.created_at)).where(MentionRow.brand == brand))

    def open_storms(self, brand: str) -> list[StormRecord]:
        with self.session() as s:
            rows = s.scalars(select(StormRow).where(StormRow.brand == brand, StormRow.closed_at.is_(None))).all()
            return [self._storm(s, r) for r in rows]

    def storm(self, storm_id: int) -> StormRecord:
        with self.session() as s:
            return self._storm(s, s.get_one(StormRow, storm_id))

    @staticmethod
    def _storm(s: Session, row: StormRow) -> StormRecord:
        size = s.scalar(select(func.count()).select_from(StormMemberRow).where(StormMemberRow.storm_id == row.id))
        return StormRecord(row.id, row.brand, row.name, tuple(row.terms), row.opened_at, row.last_post_at,
                           row.closed_at, row.expected_per_window, row.peak_per_window, size or 0)

    def storm_member_ids(self, brand: str, since: datetime) -> set[int]:
        with self.session() as s:
            return set(s.scalars(
                select(StormMemberRow.mention_id).join(StormRow, StormRow.id == StormMemberRow.storm_id)
                .where(StormRow.brand == brand, StormRow.last_post_at >= since)
            ).all())

    def storm_member_ids_of(self, storm_id: int) -> set[int]:
        with self.session() as s:
            return set(s.scalars(select(StormMemberRow.mention_id).where(StormMemberRow.storm_id == storm_id)).all())

    def latest_metrics(self, mention_id: int) -> Metrics | None:
        with self.session() as s:
            row = s.scalars(select(SnapshotRow).where(SnapshotRow.mention_id == mention_id)
                            .order_by(SnapshotRow.observed_at.desc(), SnapshotRow.id.desc()).limit(1)).first()
            return _metrics(row) if row else None

    def mentions(self, ids: Iterable[int]) -> list[StoredMention]:
        with self.session() as s:
            return [_mention(r) for r in s.scalars(select(MentionRow).where(MentionRow.id.in_(list(ids)))
                                                   .order_by(MentionRow.created_at)).all()]

    def open_storm(self, brand: str, name: str, terms: Sequence[str], opened_at: datetime,
                   expected_per_window: float, members: Sequence[StoredMention]) -> int:
        with self.session() as s:
            row = StormRow(brand=brand, name=name, terms=list(terms), opened_at=opened_at,
                           last_post_at=max(m.created_at for m in members), closed_at=None,
                           expected_per_window=expected_per_window, peak_per_window=len(members))
            s.add(row)
            s.flush()
            self._add_storm_members(s, row, members)
            return row.id

    def grow_storm(self, storm_id: int, members: Sequence[StoredMention], window_count: int) -> int:
        """Add posts to a storm; returns how many were new to it."""
        with self.session() as s:
            row = s.get_one(StormRow, storm_id)
            row.peak_per_window = max(row.peak_per_window, window_count)
            return self._add_storm_members(s, row, members)

    @staticmethod
    def _add_storm_members(s: Session, row: StormRow, members: Sequence[StoredMention]) -> int:
        taken = set(s.scalars(select(StormMemberRow.mention_id).where(
            StormMemberRow.mention_id.in_([m.id for m in members]))).all())
        added = 0
        for m in members:
            if m.id in taken:
                continue
            taken.add(m.id)  # a mention listed twice is one member
            s.add(StormMemberRow(storm_id=row.id, mention_id=m.id))
            row.last_post_at = max(row.last_post_at, m.created_at)
            added += 1
        if added:
            s.execute(update(MentionRow).where(MentionRow.id.in_([m.id for m in members]))
                      .values(needs_scoring=True))
        return added

    def set_storm_terms(self, storm_id: int, terms: Sequence[str]) -> None:
        with self.session() as s:
            s.get_one(StormRow, storm_id).terms = list(terms)

    def close_storm(self, storm_id: int, at: datetime) -> None:
        with self.session() as s:
            s.get_one(StormRow, storm_id).closed_at = at

    def storm_of(self, mention_id: int) -> StormRecord | None:
        with self.session() as s:
            storm_id = s.scalar(select(StormMemberRow.storm_id).where(StormMemberRow.mention_id == mention_id))
            return None if storm_id is None else self._storm(s, s.get_one(StormRow, storm_id))

    # --- escalations and the outbox --------------------------------------------------------

    def open_escalation(self, group_key: str) -> EscalationRecord | None:
        """The escalation still in hand for a group (open or claimed), if any."""
        with self.session() as s:
            row = s.scalars(
                select(EscalationRow).where(
                    EscalationRow.group_key == group_key,
                    EscalationRow.state.in_([state.value for state in IN_HAND]),
                ).order_by(EscalationRow.id.desc()).limit(1)
            ).first()
            return self._escalation(s, row) if row else None

    def escalation(self, escalation_id: int) -> EscalationRecord:
        with self.session() as s:
            return self._escalation(s, s.get_one(EscalationRow, escalation_id))

    def escalation_of_mention(self, mention_id: int) -> EscalationRecord | None:
        with self.session() as s:
            esc_id = s.scalar(select(EscalationMentionRow.escalation_id)
                              .where(EscalationMentionRow.mention_id == mention_id)
                              .order_by(EscalationMentionRow.escalation_id.desc()).limit(1))
            return None if esc_id is None else self._escalation(s, s.get_one(EscalationRow, esc_id))

    def any_escalation(self, group_key: str) -> EscalationRecord | None:
        """The latest escalation for a group in any state."""
        with self.session() as s:
            row = s.scalars(select(EscalationRow).where(EscalationRow.group_key == group_key)
                            .order_by(EscalationRow.id.desc()).limit(1)).first()
            return self._escalation(s, row) if row else None

    def previous_owner(self, group_key: str) -> str | None:
        """Who handled this customer or storm last time, so they get it again."""
        with self.session() as s:
            return s.scalar(
                select(func.coalesce(EscalationRow.owner, EscalationRow.suggested_owner))
                .where(EscalationRow.group_key == group_key).order_by(EscalationRow.id.desc()).limit(1)
            )

    def open_load(self) -> dict[str, int]:
        """Escalations in hand per owner (claimed, or suggested and not yet claimed)."""
        with self.session() as s:
            owner = func.coalesce(EscalationRow.owner, EscalationRow.suggested_owner)
            rows = s.execute(
                select(owner, func.count()).where(
                    EscalationRow.state.in_([state.value for state in IN_HAND]),
                    owner.is_not(None),
                ).group_by(owner)
            ).all()
            return {name: n for name, n in rows}

    @staticmethod
    def _escalation(s: Session, row: EscalationRow) -> EscalationRecord:
        members = s.scalar(select(func.count()).select_from(EscalationMentionRow)
                           .where(EscalationMentionRow.escalation_id == row.id))
        return EscalationRecord(
            id=row.id, brand=row.brand, group_key=row.group_key, kind=row.kind,
            subject_mention_id=row.subject_mention_id, storm_id=row.storm_id, source=row.source, lang=row.lang,
            severity=Severity(row.severity), probability=row.probability, reasons=tuple(row.reasons),
            state=EscalationState(row.state), suggested_owner=row.suggested_owner, owner=row.owner,
            created_at=row.created_at, claimed_at=row.claimed_at, first_reply_at=row.first_reply_at,
            closed_at=row.closed_at, members=members or 0, last_alert=dict(row.last_alert or {}),
        )

    def create_escalation(
        self, *, brand: str, group_key: str, kind: str, subject_mention_id: int | None, storm_id: int | None,
        source: str, lang: str | None, severity: Severity, probability: float, reasons: Sequence[str],
        suggested_owner: str | None, owner_reason: str | None, member_ids: Iterable[int],
        alert_payload: dict, channel: str | None, last_alert: dict, now: datetime,
    ) -> int:
        """Open an escalation and queue its first alert in the same transaction."""
        with self.session() as s:
            row = EscalationRow(
                brand=brand, group_key=group_key, kind=kind, subject_mention_id=subject_mention_id,
                storm_id=storm_id, source=source, lang=lang, severity=severity.value, probability=probability,
                reasons=list(reasons), state=EscalationState.open.value, suggested_owner=suggested_owner,
                owner_reason=owner_reason, created_at=now, updated_at=now, last_alert=last_alert,
            )
            s.add(row)
            s.flush()
            self._attach(s, row.id, member_ids, now)
            # The brand may have answered before the alert went out (or in the same batch).
            row.first_reply_at = _earliest_brand_reply(s, set(member_ids))
            s.add(EscalationEventRow(escalation_id=row.id, at=now, actor=None, action="opened",
                                     detail={"severity": severity.value, "probability": round(probability, 4)}))
            payload = dict(alert_payload, escalation_id=row.id)
            s.add(OutboxRow(escalation_id=row.id, kind="new", payload=payload, channel=channel,
                            state="pending", next_attempt_at=now, created_at=now))
            return row.id

    def update_escalation(
        self, escalation_id: int, *, severity: Severity, probability: float, reasons: Sequence[str],
        member_ids: Iterable[int], alert_payload: dict | None, channel: str | None, now: datetime,
        subject_mention_id: int | None = None, last_alert: dict | None = None,
    ) -> None:
        """Record what changed; queue an update message when there is something to tell."""
        with self.session() as s:
            row = s.get_one(EscalationRow, escalation_id)
            row.severity = severity.value
            row.probability = probability
            row.reasons = list(reasons)
            row.updated_at = now
            if subject_mention_id is not None:
                row.subject_mention_id = subject_mention_id
            if last_alert is not None:
                row.last_alert = last_alert
            self._attach(s, row.id, member_ids, now)
            if alert_payload is not None:
                s.add(EscalationEventRow(escalation_id=row.id, at=now, actor=None, action="updated",
                                         detail={"severity": severity.value, "change": alert_payload.get("change")}))
                payload = _carry_status(s, row.id, dict(alert_payload, escalation_id=row.id))
                s.add(OutboxRow(escalation_id=row.id, kind="update", payload=payload,
                                channel=channel, state="pending", next_attempt_at=now, created_at=now))

    @staticmethod
    def _attach(s: Session, escalation_id: int, member_ids: Iterable[int], now: datetime) -> None:
        ids = set(member_ids)
        if not ids:
            return
        have = set(s.scalars(select(EscalationMentionRow.mention_id).where(
            EscalationMentionRow.escalation_id == escalation_id, EscalationMentionRow.mention_id.in_(ids))).all())
        for mention_id in sorted(ids - have):
            s.add(EscalationMentionRow(escalation_id=escalation_id, mention_id=mention_id, added_at=now))

    def escalation_member_ids(self, escalation_id: int) -> set[int]:
        with self.session() as s:
            return set(s.scalars(select(EscalationMentionRow.mention_id)
                                 .where(EscalationMentionRow.escalation_id == escalation_id)).all())

    def transition(self, escalation_id: int, to: EscalationState, actor: str | None, now: datetime,
                   owner: str | None = None, only_from: Collection[EscalationState] | None = None) -> EscalationRecord:
        """Move an escalation through open -> claimed (<-> waiting on another department) ->
        resolved | dismissed, recording who and when in its events (the digest measures the waits)."""
        with self.session() as s:
            row = s.get_one(EscalationRow, escalation_id)
            current = EscalationState(row.state)
            if to not in _NEXT_STATES.get(current, set()) or (only_from is not None and current not in only_from):
                raise ValueError(f"escalation {escalation_id} is {current.value}; it cannot become {to.value}")
            row.state = to.value
            row.updated_at = now
            back = current is EscalationState.waiting and to is EscalationState.claimed and owner is None
            if to is EscalationState.claimed and not back:  # back from the other department: still theirs
                row.owner = owner or actor
                row.claimed_by = actor
                row.claimed_at = row.claimed_at or now
            elif to in (EscalationState.resolved, EscalationState.dismissed):
                row.closed_by = actor
                row.closed_at = now
            s.add(EscalationEventRow(escalation_id=row.id, at=now, actor=actor, action=to.value,
                                     detail={"owner": row.owner}))
            # The agents' verdicts recalibrate the risk score: a resolved alert needed the team,
            # a dismissed one did not.
            if to is EscalationState.dismissed:
                s.add(FeedbackRow(escalation_id=row.id, label="false_positive", by=actor, at=now))
            elif to is EscalationState.resolved:
                s.add(FeedbackRow(escalation_id=row.id, label="useful", by=actor, at=now))
            return self._escalation(s, row)

    def pending_outbox(self, now: datetime, limit: int = 100) -> list[OutboxItem]:
        with self.session() as s:
            rows = s.scalars(
                select(OutboxRow).where(OutboxRow.state == "pending").order_by(OutboxRow.id).limit(limit)
            ).all()
            items = []
            blocked: set[int] = set()
            for row in rows:
                # Keep each escalation's messages in order: nothing overtakes an item still waiting.
                if row.escalation_id in blocked or row.next_attempt_at > now:
                    blocked.add(row.escalation_id)
                    continue
                first = s.execute(select(OutboxRow.state, OutboxRow.message_ts, OutboxRow.channel).where(
                    OutboxRow.escalation_id == row.escalation_id, OutboxRow.kind == "new")).first()
                if row.kind != "new" and (first is None or first.state != "sent"):
                    blocked.add(row.escalation_id)  # nothing overtakes the message it updates or answers
                    continue
                items.append(OutboxItem(row.id, row.escalation_id, row.kind, dict(row.payload), row.channel,
                                        row.attempts, first.message_ts if first else None,
                                        first.channel if first else None))
            return items

    def queue_message(self, escalation_id: int, kind: str, now: datetime, *, status: dict | None = None,
                      text: str | None = None) -> int:
        """Queue a rewrite of the escalation's message showing `status` (kind `state`), or a thread
        reply with `text` (kind `followup`), behind whatever is already queued for it."""
        with self.session() as s:
            return _queue(s, escalation_id, kind, now, status, text)

    def sla_breaches_recorded(self, escalation_ids: Iterable[int]) -> set[tuple[int, str, str]]:
        """(escalation, kind, level) of the SLA follow-ups already made."""
        with self.session() as s:
            rows = s.scalars(select(EscalationEventRow).where(EscalationEventRow.action == "sla_breach",
                                                              EscalationEventRow.escalation_id.in_(list(escalation_ids))))
            return {(r.escalation_id, r.detail.get("kind"), r.detail.get("level")) for r in rows}

    def record_sla_breach(self, escalation_id: int, kind: str, level: str, due: datetime, text: str,
                          now: datetime) -> None:
        """The breach in the audit trail (for the digest) and its thread reply, in one transaction."""
        with self.session() as s:
            s.add(EscalationEventRow(escalation_id=escalation_id, at=now, actor=None, action="sla_breach",
                                     detail={"kind": kind, "level": level, "due": due.isoformat()}))
            _queue(s, escalation_id, "followup", now, None, text)

    def escalations_in_hand(self) -> list[EscalationRecord]:
        with self.session() as s:
            rows = s.scalars(select(EscalationRow).where(EscalationRow.state.in_([state.value for state in IN_HAND]))
                             .order_by(EscalationRow.id)).all()
            return [self._escalation(s, r) for r in rows]

    def mark_sent(self, item_id: int, message_ts: str | None, now: datetime) -> None:
        with self.session() as s:
            row = s.get_one(OutboxRow, item_id)
            row.state = "sent"
            row.message_ts = message_ts
            row.sent_at = now
            row.attempts += 1

    def mark_failed(self, item_id: int, error: str, retry_at: datetime | None, now: datetime) -> int:
        """Record a failed attempt; with no retry time the item is given up. Returns attempts so far."""
        with self.session() as s:
            row = s.get_one(OutboxRow, item_id)
            row.attempts += 1
            row.last_error = well_formed(error[:1000])
            if retry_at is None:
                row.state = "failed"
            else:
                row.next_attempt_at = retry_at
            return row.attempts

    def outbox_counts(self) -> dict[str, int]:
        with self.session() as s:
            return dict(s.execute(select(OutboxRow.state, func.count()).group_by(OutboxRow.state)).all())

    # --- reporting and housekeeping ---------------------------------------------------------

    def escalations_between(self, start: datetime, end: datetime) -> list[EscalationRecord]:
        with self.session() as s:
            rows = s.scalars(select(EscalationRow).where(
                EscalationRow.created_at >= start, EscalationRow.created_at < end).order_by(EscalationRow.id)).all()
            return [self._escalation(s, r) for r in rows]

    def transitions(self, escalation_ids: Iterable[int]) -> dict[int, list[Transition]]:
        """Each escalation's state changes, oldest first (opening, updates and SLA events left out)."""
        states = {state.value for state in EscalationState}
        found: dict[int, list[Transition]] = {}
        with self.session() as s:
            rows = s.scalars(select(EscalationEventRow).where(
                EscalationEventRow.escalation_id.in_(list(escalation_ids)), EscalationEventRow.action.in_(states))
                .order_by(EscalationEventRow.at, EscalationEventRow.id))
            for row in rows:
                found.setdefault(row.escalation_id, []).append(
                    Transition(row.at, EscalationState(row.action), row.actor))
        return found

    def trigger_categories(self, escalation_ids: Iterable[int]) -> dict[int, set[str]]:
        """The trigger categories (legal, press, churn …) found in each escalation's posts."""
        found: dict[int, set[str]] = {}
        with self.session() as s:
            latest = select(func.max(ClassificationRow.id)).group_by(ClassificationRow.mention_id).scalar_subquery()
            rows = s.execute(
                select(EscalationMentionRow.escalation_id, ClassificationRow.triggers)
                .join(ClassificationRow, ClassificationRow.mention_id == EscalationMentionRow.mention_id)
                .where(EscalationMentionRow.escalation_id.in_(list(escalation_ids)), ClassificationRow.id.in_(latest)))
            for escalation_id, triggers in rows:
                found.setdefault(escalation_id, set()).update(t["category"] for t in triggers)
        return found

    def storms_between(self, start: datetime, end: datetime) -> list[StormSummary]:
        """Storms detected in [start, end), from their first post to their last."""
        with self.session() as s:
            rows = s.execute(
                select(StormRow.name, StormRow.last_post_at, StormRow.peak_per_window, func.count(),
                       func.min(MentionRow.created_at))
                .join(StormMemberRow, StormMemberRow.storm_id == StormRow.id)
                .join(MentionRow, MentionRow.id == StormMemberRow.mention_id)
                .where(StormRow.opened_at >= start, StormRow.opened_at < end)
                .group_by(StormRow.id, StormRow.name, StormRow.last_post_at, StormRow.peak_per_window)
                .order_by(StormRow.opened_at)).all()
            return [StormSummary(name, posts, first, last, peak) for name, last, peak, posts, first in rows]

    def feedback_between(self, start: datetime, end: datetime) -> list[tuple[int, str]]:
        with self.session() as s:
            return [(r.escalation_id, r.label) for r in s.scalars(
                select(FeedbackRow).where(FeedbackRow.at >= start, FeedbackRow.at < end))]

    def labelled_alerts(self, limit: int) -> list[LabelledAlert]:
        """The last `limit` escalations agents labelled useful or false positive (latest label
        wins), with the raw risk of their post; a storm's has none."""
        with self.session() as s:
            rows = s.execute(
                select(FeedbackRow.escalation_id, FeedbackRow.label, EscalationRow.subject_mention_id)
                .join(EscalationRow, EscalationRow.id == FeedbackRow.escalation_id)
                .where(FeedbackRow.label.in_(["useful", "false_positive"]))
                .order_by(FeedbackRow.at.desc(), FeedbackRow.id.desc())
            ).all()
            latest: dict[int, tuple[str, int | None]] = {}
            for escalation_id, label, subject in rows:
                if escalation_id not in latest:
                    latest[escalation_id] = (label, subject)
                    if len(latest) == limit:
                        break
            alerts = []
            for label, subject in latest.values():
                raw = None if subject is None else s.scalar(
                    select(RiskRow.probability).where(RiskRow.mention_id == subject)
                    .order_by(RiskRow.id.desc()).limit(1))
                alerts.append(LabelledAlert(raw, label == "useful"))
            return alerts

    def count_mentions(self, since: datetime | None = None) -> int:
        with self.session() as s:
            query = select(func.count()).select_from(MentionRow)
            if since is not None:
                query = query.where(MentionRow.collected_at >= since)
            return s.scalar(query) or 0

    def purge_older_than(self, cutoff: datetime) -> int:
        """Delete old mentions that no escalation refers to; escalations keep their history."""
        with self.session() as s:
            kept = select(EscalationMentionRow.mention_id)
            subjects = select(EscalationRow.subject_mention_id).where(EscalationRow.subject_mention_id.is_not(None))
            old = select(MentionRow.id).where(MentionRow.created_at < cutoff, MentionRow.id.not_in(kept),
                                              MentionRow.id.not_in(subjects))
            ids = list(s.scalars(old).all())
            for table in (SnapshotRow, ClassificationRow, RiskRow):
                s.execute(delete(table).where(table.mention_id.in_(ids)))
            s.execute(delete(StormMemberRow).where(StormMemberRow.mention_id.in_(ids)))
            s.execute(delete(MentionRow).where(MentionRow.id.in_(ids)))
            s.execute(delete(SnapshotRow).where(SnapshotRow.observed_at < cutoff))
            return len(ids)


_NEXT_STATES = {
    EscalationState.open: {EscalationState.claimed, EscalationState.resolved, EscalationState.dismissed},
    EscalationState.claimed: {EscalationState.claimed, EscalationState.waiting, EscalationState.resolved,
                              EscalationState.dismissed},
    EscalationState.waiting: {EscalationState.claimed, EscalationState.resolved, EscalationState.dismissed},
}


def _queue(s: Session, escalation_id: int, kind: str, now: datetime, status: dict | None, text: str | None) -> int:
    last = s.scalars(select(OutboxRow).where(OutboxRow.escalation_id == escalation_id, OutboxRow.kind.in_(
        ("new", "update", "state"))).order_by(OutboxRow.id.desc()).limit(1)).first()
    if last is None:
        raise ValueError(f"escalation {escalation_id} has no alert to update")
    payload = dict(last.payload, status=status) if kind == "state" else {"text": text, "escalation_id": escalation_id}
    row = OutboxRow(escalation_id=escalation_id, kind=kind, payload=payload, channel=last.channel,
                    state="pending", next_attempt_at=now, created_at=now)
    s.add(row)
    s.flush()
    return row.id


def _carry_status(s: Session, escalation_id: int, payload: dict) -> dict:
    """A rewritten message keeps the state (claimed by, resolved by) the last one showed."""
    last = s.scalars(select(OutboxRow.payload).where(OutboxRow.escalation_id == escalation_id,
                                                     OutboxRow.kind.in_(("update", "state")))
                     .order_by(OutboxRow.id.desc()).limit(1)).first()
    status = (last or {}).get("status")
    return dict(payload, status=status) if status else payload


def _health(row: SourceHealthRow) -> SourceHealth:
    return SourceHealth(row.source, row.brand, row.last_success_at, row.last_error_at, row.last_error,
                        row.failures, row.paused_until, row.pause_reason)


def _health_row(s: Session, source: str, brand: str) -> SourceHealthRow:
    row = s.get(SourceHealthRow, (source, brand))
    if row is None:
        row = SourceHealthRow(source=source, brand=brand, failures=0)
        s.add(row)
    return row


def _snapshot_values(mention_id: int, at: datetime, m: Metrics) -> dict:
    return dict(mention_id=mention_id, observed_at=at, reposts=max(0, m.reposts), replies=max(0, m.replies),
                likes=max(0, m.likes), quotes=max(0, m.quotes), views=max(0, m.views))


def _snapshot_row(mention_id: int, at: datetime, m: Metrics) -> SnapshotRow:
    return SnapshotRow(**_snapshot_values(mention_id, at, m))


def _trigger_dict(t: TriggerMatch) -> dict:
    return {"category": t.category, "term": t.term, "start": t.start, "end": t.end, "matched_text": t.matched_text}


def _earliest_brand_reply(s: Session, mention_ids: set[int]) -> datetime | None:
    if not mention_ids:
        return None
    posts = s.execute(select(MentionRow.source, MentionRow.external_id, MentionRow.conversation_id,
                             MentionRow.created_at).where(MentionRow.id.in_(mention_ids))).all()
    # Only what the brand wrote after the customer's post answers it (not the thread's opening post).
    replies = [
        and_(MentionRow.source == p.source, MentionRow.created_at > p.created_at,
             or_(MentionRow.in_reply_to == p.external_id,
                 and_(MentionRow.conversation_id.is_not(None), MentionRow.conversation_id == p.conversation_id)))
        for p in posts
    ]
    return s.scalar(select(func.min(MentionRow.created_at)).where(MentionRow.is_brand_reply.is_(True), or_(*replies)))


def _record_brand_reply(s: Session, reply: MentionRow, now: datetime) -> None:
    """The brand answered publicly: stamp the first reply on escalations about that thread."""
    if reply.in_reply_to is None and reply.conversation_id is None:
        return
    targets = select(MentionRow.id).where(
        MentionRow.source == reply.source,
        or_(MentionRow.external_id == reply.in_reply_to,
            and_(MentionRow.conversation_id.is_not(None), MentionRow.conversation_id == reply.conversation_id)),
    )
    escalation_ids = select(EscalationMentionRow.escalation_id).where(EscalationMentionRow.mention_id.in_(targets))
    rows = s.scalars(select(EscalationRow).where(EscalationRow.id.in_(escalation_ids),
                                                 EscalationRow.first_reply_at.is_(None))).all()
    for row in rows:
        row.first_reply_at = reply.created_at
        s.add(EscalationEventRow(escalation_id=row.id, at=now, actor=reply.author_handle, action="brand_reply",
                                 detail={"mention": reply.external_id}))
