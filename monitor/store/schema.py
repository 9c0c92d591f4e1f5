"""Tables of the store. Alembic migrations in `migrations/` create exactly these."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC and gives back aware UTC, the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    pass


class MentionRow(Base):
    __tablename__ = "mentions"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_mentions_source_external_id"),
        Index("ix_mentions_brand_created", "brand", "created_at"),
        Index("ix_mentions_author", "source", "author_id", "created_at"),
        Index("ix_mentions_reply", "source", "in_reply_to"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    brand: Mapped[str] = mapped_column(String(128))
    author_id: Mapped[str] = mapped_column(String(128))
    author_handle: Mapped[str] = mapped_column(String(256))
    author_followers: Mapped[int] = mapped_column(BigInteger, default=0)
    author_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str] = mapped_column(Text)
    lang: Mapped[str | None] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    conversation_id: Mapped[str | None] = mapped_column(String(128))
    in_reply_to: Mapped[str | None] = mapped_column(String(128))
    is_brand_reply: Mapped[bool] = mapped_column(Boolean, default=False)
    # Watch state for engagement re-polling: next poll due, or NULL once the watch ended.
    watch_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The scorer re-runs when this moves past the last assessment (new snapshot, storm, repeat).
    needs_scoring: Mapped[bool] = mapped_column(Boolean, default=True, index=True)


class SnapshotRow(Base):
    __tablename__ = "engagement_snapshots"
    __table_args__ = (Index("ix_snapshots_mention_time", "mention_id", "observed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reposts: Mapped[int] = mapped_column(BigInteger, default=0)
    replies: Mapped[int] = mapped_column(BigInteger, default=0)
    likes: Mapped[int] = mapped_column(BigInteger, default=0)
    quotes: Mapped[int] = mapped_column(BigInteger, default=0)
    views: Mapped[int] = mapped_column(BigInteger, default=0)


class ClassificationRow(Base):
    __tablename__ = "classifications"
    __table_args__ = (UniqueConstraint("mention_id", "model", "model_version", name="uq_classification_model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"), index=True)
    model: Mapped[str] = mapped_column(String(256))
    model_version: Mapped[str] = mapped_column(String(64))
    lang: Mapped[str | None] = mapped_column(String(16))
    sentiment: Mapped[str] = mapped_column(String(16))
    sentiment_scores: Mapped[dict] = mapped_column(JSON)
    negative: Mapped[float] = mapped_column(Float)  # copied out of the scores so storms can filter on it
    complaint: Mapped[float] = mapped_column(Float)
    triggers: Mapped[list] = mapped_column(JSON)
    classified_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RiskRow(Base):
    __tablename__ = "risk_assessments"
    __table_args__ = (Index("ix_risk_mention_time", "mention_id", "assessed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"))
    probability: Mapped[float] = mapped_column(Float)
    severity: Mapped[str | None] = mapped_column(String(16))
    reasons: Mapped[list] = mapped_column(JSON)
    forecast_shares: Mapped[float] = mapped_column(Float)
    assessed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class StormRow(Base):
    __tablename__ = "storms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    brand: Mapped[str] = mapped_column(String(128), index=True)
    name: Mapped[str] = mapped_column(String(256))
    terms: Mapped[list] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_post_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expected_per_window: Mapped[float] = mapped_column(Float)
    peak_per_window: Mapped[int] = mapped_column(Integer)


class StormMemberRow(Base):
    __tablename__ = "storm_members"

    storm_id: Mapped[int] = mapped_column(ForeignKey("storms.id", ondelete="CASCADE"), primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True, unique=True)


class EscalationRow(Base):
    __tablename__ = "escalations"
    __table_args__ = (Index("ix_escalations_group_state", "group_key", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    brand: Mapped[str] = mapped_column(String(128))
    # What the escalation is about: one post, one customer, or one storm (Alertmanager's group key).
    group_key: Mapped[str] = mapped_column(String(256))
    kind: Mapped[str] = mapped_column(String(32))  # mention, repeat_contact, storm
    subject_mention_id: Mapped[int | None] = mapped_column(ForeignKey("mentions.id", ondelete="SET NULL"))
    storm_id: Mapped[int | None] = mapped_column(ForeignKey("storms.id", ondelete="SET NULL"))
    source: Mapped[str] = mapped_column(String(32))
    lang: Mapped[str | None] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(16))
    probability: Mapped[float] = mapped_column(Float)
    reasons: Mapped[list] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="open")
    suggested_owner: Mapped[str | None] = mapped_column(String(256))
    owner_reason: Mapped[str | None] = mapped_column(Text)
    # What the last message said (severity, shares, posts), to tell when an update is worth sending.
    last_alert: Mapped[dict] = mapped_column(JSON, default=dict)
    owner: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(256))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(256))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EscalationMentionRow(Base):
    __tablename__ = "escalation_mentions"

    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"), primary_key=True)
    mention_id: Mapped[int] = mapped_column(ForeignKey("mentions.id", ondelete="CASCADE"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EscalationEventRow(Base):
    """Audit trail: every state change with who and when (the digest reads this)."""

    __tablename__ = "escalation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str | None] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class OutboxRow(Base):
    """Alerts waiting to be delivered, in id order; `message_ts` makes retries idempotent."""

    __tablename__ = "alert_outbox"
    __table_args__ = (Index("ix_outbox_state", "state", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # new, update
    payload: Mapped[dict] = mapped_column(JSON)
    channel: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    message_ts: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CursorRow(Base):
    __tablename__ = "source_cursors"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    brand: Mapped[str] = mapped_column(String(128), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SourceHealthRow(Base):
    """How each collector (per brand) is doing: what `status` shows and what back-off reads."""

    __tablename__ = "source_health"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    brand: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # in a row; reset by a success
    # No run before this time: a rate-limit reset, the end of the read budget's day, or back-off.
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[str | None] = mapped_column(String(64))


class SourceReadsRow(Base):
    """Posts read from a paying source today (X bills per post read), for the daily budget."""

    __tablename__ = "source_reads"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10))  # UTC date, YYYY-MM-DD; a new day starts at zero
    reads: Mapped[int] = mapped_column(BigInteger, default=0)


class FeedbackRow(Base):
    __tablename__ = "feedback_labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(32))  # useful, false_positive
    by: Mapped[str | None] = mapped_column(String(256))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
