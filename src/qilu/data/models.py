"""The resource catalog (政务信息资源目录): every resource, and each version of its schema."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qilu.db import Base, Id, UtcDateTime
from qilu.identity.models import Department


class DataResource(Base):
    """A registered data resource: who provides it, which library, how it may be shared."""

    __tablename__ = "data_resources"
    __table_args__ = (
        CheckConstraint("library IN ('base', 'theme', 'special', 'business')", name="library"),
        CheckConstraint("sharing IN ('unconditional', 'conditional', 'none')", name="sharing"),
        CheckConstraint("opening IN ('open', 'conditional', 'closed')", name="opening"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    provider_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    library: Mapped[str] = mapped_column(String(10))
    topic: Mapped[str] = mapped_column(String(50))  # 人口, 法人, 社会保障, 疫情防控 …
    sharing: Mapped[str] = mapped_column(String(16))
    sharing_conditions: Mapped[str] = mapped_column(Text, default="")
    # The same as data (`catalog.SharingRules`): a request outside them is refused at once.
    sharing_rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    opening: Mapped[str] = mapped_column(String(12))
    update_cycle: Mapped[str] = mapped_column(String(10))
    share_mode: Mapped[str] = mapped_column(String(8), default="table", server_default="table")
    legal_basis: Mapped[str] = mapped_column(Text)
    # GB/T 21063 metadata: 资源分类, 资源格式 and 关联资源代码 (`catalog.CLASSES`, `FORMATS`).
    classification: Mapped[str] = mapped_column(String(40), default="", server_default="")
    format: Mapped[str] = mapped_column(String(20), default="", server_default="")
    related: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    # Quality rules as data (`catalog.QualityRule`), the share that must pass, and 保存期限.
    quality_rules: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, server_default="[]"
    )
    quality_threshold: Mapped[float] = mapped_column(Float, default=0.98, server_default="0.98")
    retention_days: Mapped[int | None] = mapped_column(Integer)
    # The city catalog a cascaded entry comes from (级联); empty for the province's own.
    origin: Mapped[str] = mapped_column(String(200), default="", server_default="")
    version: Mapped[int] = mapped_column(Integer)  # the current schema version
    # The last sequence number of the change feed, handed out under this row's lock (`changes`).
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # How many of its records are under dispute now (a read looks the disputes up only if any).
    disputes_open: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    search_text: Mapped[str] = mapped_column(Text)  # name, topic, provider, field labels
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    provider: Mapped[Department] = relationship()


class ResourceSchema(Base):
    """One version of a resource's fields; versions are never changed, only added."""

    __tablename__ = "data_resource_schemas"
    __table_args__ = (UniqueConstraint("resource_id", "version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("data_resources.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    change_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by_person_id: Mapped[int | None] = mapped_column(BigInteger)


class DataLoad(Base):
    """One load of rows into a resource (a file or an API push), with its report."""

    __tablename__ = "data_loads"
    __table_args__ = (CheckConstraint("status IN ('running', 'done', 'failed')", name="status"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("data_resources.id"), index=True)
    schema_version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(200))  # file name, or "api:<client>"
    actor_person_id: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(10))
    total: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)  # of the rejected: repeated keys
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # every rejected row and why
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # kept rows with a remark

    resource: Mapped[DataResource] = relationship()


class DataRecord(Base):
    """One row of a resource, upserted by its key. Personal fields are sealed (SM4) together;
    a personal key is stored as its blind index, so look-ups never need the plain value."""

    __tablename__ = "data_records"
    __table_args__ = (
        UniqueConstraint("resource_id", "record_key"),
        # A resource's records a page at a time by id (listings, extracts, open-data CSV):
        # without it SQLite walks the key index and sorts the whole resource for every page.
        Index("ix_data_records_resource_id_id", "resource_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("data_resources.id"))
    record_key: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)  # the fields that are not personal
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)  # the personal ones, SM4-GCM
    digest: Mapped[bytes] = mapped_column(LargeBinary(32))  # SM3 of all values: change check
    version: Mapped[int] = mapped_column(Integer)
    created_load_id: Mapped[int] = mapped_column(BigInteger)
    updated_load_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RecordChange(Base):
    """What a load changed in a record: the values before and after, who and when."""

    __tablename__ = "data_record_changes"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    record_id: Mapped[int] = mapped_column(BigInteger, index=True)
    load_id: Mapped[int] = mapped_column(BigInteger, index=True)
    version: Mapped[int] = mapped_column(Integer)  # the record's version after the change
    before_content: Mapped[dict[str, Any]] = mapped_column(JSON)
    before_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    after_content: Mapped[dict[str, Any]] = mapped_column(JSON)
    after_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor_person_id: Mapped[int | None] = mapped_column(BigInteger)


class DataChange(Base):
    """One entry of a resource's change feed (增量): a record a load inserted or changed, at the
    version it then had. Sequence numbers are handed out under the resource row's lock, so they
    follow the order loads commit in and a reader past one never misses an earlier one."""

    __tablename__ = "data_changes"

    resource_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    record_id: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(8))  # insert | update
    load_id: Mapped[int] = mapped_column(BigInteger)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ShareGrant(Base):
    """A department's request to use a resource's fields, and what became of it (共享申请)."""

    __tablename__ = "data_share_grants"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'granted', 'refused', 'revoked')", name="status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("data_resources.id"), index=True)
    consumer_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    fields: Mapped[list[str]] = mapped_column(JSON)
    # The personal fields granted in clear; the other personal fields are answered masked.
    clear_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The minimum necessary: records are looked up by key only, unless listing is granted, and
    # only rows whose fields meet these conditions are answered (a division field reaches the
    # divisions inside the one named: {"household_division": "370102"}).
    may_list: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    row_conditions: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, server_default="{}")
    purpose: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    valid_until: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(10))
    requested_by_person_id: Mapped[int | None] = mapped_column(BigInteger)
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_by_person_id: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    # A refusal names the rule it rests on (`sharing.REFUSAL_RULES`), not only a reason.
    refusal_rule: Mapped[str] = mapped_column(String(20), default="", server_default="")
    # The day by which the provider must decide (working days), and the watch's steps.
    due_on: Mapped[date | None] = mapped_column(Date)
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked_by_person_id: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    resource: Mapped[DataResource] = relationship()
    consumer: Mapped[Department] = relationship()

    def is_live(self, now: datetime) -> bool:
        return self.status == "granted" and self.valid_until > now


class Consent(Base):
    """A resident's authorisation (授权) for a department to read their records of a sensitive
    resource, for a purpose, until a date; revocable at any time."""

    __tablename__ = "data_consents"
    __table_args__ = (
        Index("ix_data_consents_lookup", "subject_index", "resource_id", "consumer_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    # The blind index of the person's ID number (as in the population register): how a read of a
    # record keyed by that number finds the consent without the number.
    subject_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    resource_id: Mapped[int] = mapped_column(ForeignKey("data_resources.id"))
    consumer_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    purpose: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_until: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    resource: Mapped[DataResource] = relationship()
    consumer: Mapped[Department] = relationship()

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.valid_until > now


class Subscription(Base):
    """A department system's subscription to a resource's changes (增量订阅), delivered to its
    webhook in order from `cursor` (the last sequence number it acknowledged)."""

    __tablename__ = "data_subscriptions"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'suspended', 'cancelled')", name="status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("data_resources.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))  # the system it delivers to
    url: Mapped[str] = mapped_column(String(500))
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failures of the batch at cursor
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    leased_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    delivered: Mapped[int] = mapped_column(BigInteger, default=0)  # changes acknowledged
    last_delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    resource: Mapped[DataResource] = relationship()
    department: Mapped[Department] = relationship()


class DeadLetter(Base):
    """A batch a subscriber did not take after every retry: the subscription stops there (so
    nothing after it arrives out of order) until it is resumed or replayed from a cursor."""

    __tablename__ = "data_dead_letters"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("data_subscriptions.id"), index=True)
    after_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class CallEvidence(Base):
    """A shared call's evidence (存证): what was asked and what was answered, as SM3 digests,
    time-stamped and signed SM2 by the platform, so either side can later show what passed."""

    __tablename__ = "data_call_evidence"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    call_id: Mapped[str] = mapped_column(String(32), unique=True)
    client_id: Mapped[str] = mapped_column(String(64), index=True)
    department_code: Mapped[str] = mapped_column(String(40))
    resource: Mapped[str] = mapped_column(String(40), index=True)  # a resource's or an API's code
    endpoint: Mapped[str] = mapped_column(String(600))  # method, path and query
    status: Mapped[int] = mapped_column(Integer)
    request_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    answer_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    answer_bytes: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[float | None] = mapped_column(Float)  # a proxied call's round trip
    signed_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    kid: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary(64))


class DataApi(Base):
    """A department's own API shared through the exchange (共享方式：接口): the catalog resource
    it is, the system behind it, its OpenAPI document, and the limits the proxy keeps."""

    __tablename__ = "data_apis"

    resource_id: Mapped[int] = mapped_column(ForeignKey("data_resources.id"), primary_key=True)
    base_url: Mapped[str] = mapped_column(String(500))
    openapi: Mapped[dict[str, Any]] = mapped_column(JSON)
    timeout_ms: Mapped[int] = mapped_column(Integer)
    rate_per_second: Mapped[int] = mapped_column(Integer)

    resource: Mapped[DataResource] = relationship()


class Dispute(Base):
    """数据异议: a consuming department or the person a record is about says some of its fields
    are wrong; the providing department answers by a working-day deadline (`disputes`)."""

    __tablename__ = "data_disputes"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'confirmed', 'corrected', 'rejected')", name="status"),
        Index("ix_data_disputes_open", "resource_id", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("data_resources.id"))
    record_id: Mapped[int] = mapped_column(BigInteger, index=True)
    fields: Mapped[list[str]] = mapped_column(JSON)
    claim_cipher: Mapped[bytes] = mapped_column(LargeBinary)  # what is wrong, SM4 (may be personal)
    raised_by_person_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    raised_by_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    raised_by_client: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(10))
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    due_on: Mapped[date] = mapped_column(Date)
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_by_person_id: Mapped[int | None] = mapped_column(BigInteger)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answer: Mapped[str] = mapped_column(Text, default="")
    correction_load_id: Mapped[int | None] = mapped_column(BigInteger)

    resource: Mapped[DataResource] = relationship()


class OpenDownload(Base):
    """How many times a day an open resource (公共数据开放) was downloaded."""

    __tablename__ = "data_open_downloads"

    resource_id: Mapped[int] = mapped_column(ForeignKey("data_resources.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class DataExtract(Base):
    """A department's bulk extract of a resource (库表交换): a snapshot, or the records changed
    after a feed cursor, written compressed with its checksum and kept for a while to download."""

    __tablename__ = "data_extracts"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'running', 'ready', 'failed', 'expired')", name="status"
        ),
        CheckConstraint("format IN ('csv', 'jsonl')", name="format"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("data_resources.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))  # the system that asked
    format: Mapped[str] = mapped_column(String(8))
    since_seq: Mapped[int | None] = mapped_column(BigInteger)  # None: a whole snapshot
    to_seq: Mapped[int] = mapped_column(BigInteger)  # the feed's newest number when asked
    status: Mapped[str] = mapped_column(String(10), index=True)
    leased_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    records: Mapped[int] = mapped_column(BigInteger, default=0)
    withheld: Mapped[int] = mapped_column(BigInteger, default=0)  # left out: consent missing
    size: Mapped[int] = mapped_column(BigInteger, default=0)  # bytes of the compressed file
    sha256: Mapped[str] = mapped_column(String(64), default="")
    sm3: Mapped[str] = mapped_column(String(64), default="")  # what download evidence signs
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ready_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    resource: Mapped[DataResource] = relationship()


class QualityCheck(Base):
    """The day's latest check of a resource's quality rules on a sample of its records: what
    the provider is alerted on and what a consumer's contract shows."""

    __tablename__ = "data_quality_checks"

    resource_id: Mapped[int] = mapped_column(
        ForeignKey("data_resources.id"), primary_key=True, autoincrement=False
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sampled: Mapped[int] = mapped_column(Integer)
    passing: Mapped[float] = mapped_column(Float)  # share of sampled records meeting every rule
    # Per rule: {"label", "checked", "failed", "examples": [record ids]}.
    results: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    alerted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class DataFile(Base):
    """A file of a resource shared as files (共享方式 文件): each upload under a name is a new
    version; the content lives in the file store under its SM3 digest."""

    __tablename__ = "data_files"
    __table_args__ = (UniqueConstraint("resource_id", "name", "version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    resource_id: Mapped[int] = mapped_column(ForeignKey("data_resources.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))  # SM3, hex: where the store keeps it
    sha256: Mapped[str] = mapped_column(String(64))  # what a consumer checks it with
    size: Mapped[int] = mapped_column(BigInteger)
    uploaded_by_client: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime)
