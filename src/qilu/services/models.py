"""Tables of the services module: the versioned catalog (items, chains), applications and the
cases (办件) they fan out to, each case's steps, materials, e-licences and department keys."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from qilu.db import Base, Id, UtcDateTime
from qilu.identity.models import Department

APPLICATION_STATES = ("draft", "submitted", "in_progress", "correcting", "done", "closed")
CASE_STATES = (
    "waiting",  # for the result of another item of its chain
    "submitted",
    "accepted",
    "reviewing",
    "correcting",  # 补正: the clock is paused until the applicant answers
    "granted",
    "refused",
    "not_accepted",
    "cancelled",  # an item it waited for was refused
    "done",  # 办结
)


class ServiceItem(Base):
    """One version of a service item (事项). A change adds a version; applications keep the
    version they were made under, so an edit never alters a submitted case."""

    __tablename__ = "service_items"
    __table_args__ = (
        UniqueConstraint("code", "version"),
        Index("ix_service_items_current", "is_current", "code"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(16))  # 基本编码
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(60))
    department_kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(10))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    search_text: Mapped[str] = mapped_column(Text)
    is_current: Mapped[bool] = mapped_column(Boolean)
    change_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by_person_id: Mapped[int | None] = mapped_column(BigInteger)


class ServiceChain(Base):
    """One version of a chain (一件事): its questionnaire and the items it bundles."""

    __tablename__ = "service_chains"
    __table_args__ = (
        UniqueConstraint("code", "version"),
        Index("ix_service_chains_current", "is_current", "code"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(20))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    search_text: Mapped[str] = mapped_column(Text)
    is_current: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Application(Base):
    """What an applicant submits once: a chain (or a single item), one form, one set of
    materials, one status. It fans out to one case per item."""

    __tablename__ = "service_applications"
    __table_args__ = (
        CheckConstraint(f"status IN {APPLICATION_STATES}", name="status"),
        CheckConstraint("channel IN ('online', 'window', 'family')", name="channel"),
        CheckConstraint("(chain_id IS NULL) <> (item_id IS NULL)", name="chain_or_item"),
        UniqueConstraint("applicant_person_id", "submission_key"),
        Index("ix_service_applications_applicant", "applicant_person_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    chain_id: Mapped[int | None] = mapped_column(ForeignKey("service_chains.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("service_items.id"))
    applicant_person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("legal_entities.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    clerk_person_id: Mapped[int | None] = mapped_column(BigInteger)
    receiving_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    division_code: Mapped[str] = mapped_column(String(6))  # where it is handled (办理地)
    status: Mapped[str] = mapped_column(String(12))
    answers: Mapped[dict[str, str]] = mapped_column(JSON)
    form: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Prefilled values the applicant says are wrong ({field: note}); they went the manual route.
    disputed: Mapped[dict[str, str]] = mapped_column(JSON)
    prefilled: Mapped[list[str]] = mapped_column(JSON)  # fields the platform filled in
    # One key per submit form shown: a double submit finds the application it already made.
    submission_key: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    saved_at: Mapped[datetime] = mapped_column(UtcDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A draft's applicant was told it will expire (again after a later save: see retention).
    expiry_warned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    chain: Mapped[ServiceChain | None] = relationship()
    item: Mapped[ServiceItem | None] = relationship()
    cases: Mapped[list[Case]] = relationship(
        back_populates="application", order_by="Case.id", viewonly=True
    )


class ApplicationMaterial(Base):
    """A material of an application: uploaded files, an e-licence attached with the applicant's
    consent, a library record, or a written promise (告知承诺) to hand it in later."""

    __tablename__ = "service_application_materials"
    __table_args__ = (
        CheckConstraint("source IN ('upload', 'licence', 'library', 'promise')", name="source"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("service_applications.id"), index=True)
    material: Mapped[str] = mapped_column(String(60))
    source: Mapped[str] = mapped_column(String(8))
    licence_id: Mapped[int | None] = mapped_column(ForeignKey("service_licences.id"))
    file_name: Mapped[str | None] = mapped_column(String(200))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(Integer)
    digest: Mapped[str | None] = mapped_column(String(64))  # SM3 of the file, its name on disk
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Case(Base):
    """One item of an application in its competent department (办件), with its own number,
    state, clock and decision. `version` guards every step: two clerks cannot both take one."""

    __tablename__ = "service_cases"
    __table_args__ = (
        CheckConstraint(f"state IN {CASE_STATES}", name="state"),
        Index("ix_service_cases_queue", "department_id", "state", "due_on"),
        Index("ix_service_cases_received", "receiving_department_id", "state"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("service_applications.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"))
    number: Mapped[str] = mapped_column(String(40), unique=True)  # the province's own 办件编码
    # 办件编号 by the national rule (GB/T 39554.1 codes, `qilu.codes.items.case_number`): what
    # is reported upward. Empty only on cases written by a release before it.
    national_number: Mapped[str | None] = mapped_column(String(50), unique=True, index=True)
    implementation_code: Mapped[str] = mapped_column(String(64))  # 实施编码
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    # Where it was received if not in the competent department (全省通办, 代收代办).
    receiving_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    state: Mapped[str] = mapped_column(String(12))
    waits_for: Mapped[list[str]] = mapped_column(JSON)  # numbers of the cases it needs
    claimed_by_person_id: Mapped[int | None] = mapped_column(BigInteger)
    accepted_on: Mapped[date | None] = mapped_column(Date)
    due_on: Mapped[date | None] = mapped_column(Date)
    paused_since: Mapped[date | None] = mapped_column(Date)
    paused_days: Mapped[int] = mapped_column(Integer, default=0)
    pause_reason: Mapped[str | None] = mapped_column(String(60))
    decision: Mapped[str | None] = mapped_column(String(12))  # granted | refused | not_accepted
    decision_reason: Mapped[str | None] = mapped_column(Text)
    findings: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the 秒批 rule's findings
    instant: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[list[str]] = mapped_column(JSON)  # 失信黑名单, 容缺受理 …
    post_check: Mapped[str | None] = mapped_column(String(8))  # pending | passed | failed
    # The last correction asked (一次性告知): {fields, materials, reason, due_on, at}
    correction: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    clock_warned: Mapped[str | None] = mapped_column(String(6))  # yellow | red, told once each
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    application: Mapped[Application] = relationship(back_populates="cases")
    item: Mapped[ServiceItem] = relationship()
    department: Mapped[Department] = relationship(foreign_keys=[department_id])
    receiving_department: Mapped[Department | None] = relationship(
        foreign_keys=[receiving_department_id]
    )


class CaseSerial(Base):
    """The last serial given to a case of one implementation on one day (办件编号)."""

    __tablename__ = "service_case_serials"

    prefix: Mapped[str] = mapped_column(String(40), primary_key=True)  # 实施编码 + yyyymmdd
    last: Mapped[int] = mapped_column(Integer)


class CaseStep(Base):
    """One step a case took: who, when, from which state to which, and why."""

    __tablename__ = "service_case_steps"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("service_cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(24))
    from_state: Mapped[str] = mapped_column(String(12))
    to_state: Mapped[str] = mapped_column(String(12))
    actor_person_id: Mapped[int | None] = mapped_column(BigInteger)  # None: the system (秒批)
    reason: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class DepartmentKey(Base):
    """A department's key for sealing the e-licences it issues (SM4-encrypted private key)."""

    __tablename__ = "service_department_keys"
    __table_args__ = (CheckConstraint("algorithm IN ('sm2', 'ed25519')", name="algorithm"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    # sm2; ed25519 for earlier seals (the default names what the previous release writes)
    algorithm: Mapped[str] = mapped_column(String(10), server_default="ed25519")
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    private_key_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


LICENCE_STATES = ("valid", "suspended", "revoked")


class Licence(Base):
    """An e-licence (电子证照) as issued: content, the issuer's signature, trust grade, state.
    Its catalog entry is also pushed into the 电子证照 library for other departments.

    One row per licence, holding its current version: a 变更 or 延续 raises `version`, changes
    the identifier and reseals; the version it replaced (now 变更 or 延续) is kept in its event,
    so what was sealed before still verifies. `state` is 有效, 暂扣 or 注销; `status` is what
    the release before it kept (valid or revoked), still written for processes of that release
    while they serve, and read where `state` is empty."""

    __tablename__ = "service_licences"
    __table_args__ = (
        CheckConstraint("status IN ('valid', 'revoked')", name="status"),
        CheckConstraint(f"state IN {LICENCE_STATES}", name="state"),
        CheckConstraint("trust_grade IN ('A', 'B', 'C', 'D')", name="trust_grade"),
        Index("ix_service_licences_holder", "holder_code_index", "licence_type"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)  # 证照编号
    # 电子证照标识 (GB/T 36903): type code, issuer, number, version and check character.
    identifier: Mapped[str | None] = mapped_column(String(120), unique=True, index=True)
    version: Mapped[int | None] = mapped_column(Integer)  # 版本号, 1 when empty
    licence_type: Mapped[str] = mapped_column(String(60))
    holder_kind: Mapped[str] = mapped_column(String(10))  # person | enterprise
    holder_code_index: Mapped[bytes] = mapped_column(LargeBinary(32))  # blind index of the code
    # The code itself, SM4-encrypted: what the national licence library is told. Empty on
    # licences issued before it was kept.
    holder_code_cipher: Mapped[bytes | None] = mapped_column(LargeBinary)
    holder_name: Mapped[str] = mapped_column(String(200))
    # Who keeps it in their wallet for a holder with no account of their own (a newborn's
    # parent): the keeper's blind index, None when the holder keeps it.
    keeper_code_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    issuer_department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("service_cases.id"), index=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    trust_grade: Mapped[str] = mapped_column(String(1))
    key_id: Mapped[int] = mapped_column(ForeignKey("service_department_keys.id"))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(8))
    state: Mapped[str | None] = mapped_column(String(10))
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoke_reason: Mapped[str | None] = mapped_column(Text)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)

    issuer: Mapped[Department] = relationship()

    @property
    def current_state(self) -> str:
        return self.state or self.status


class LicenceCopy(Base):
    """A licence Qilu did not issue, as an application brought it, graded by 国办函〔2016〕108号:
    C uploaded by the holder (its original still to be checked), B checked against the
    original at a window (reusable, so later applications are spared it), D declared under a
    written promise (告知承诺). Qilu's own e-licences are A (`Licence`)."""

    __tablename__ = "service_licence_copies"
    __table_args__ = (
        UniqueConstraint("application_id", "licence_type"),
        CheckConstraint("grade IN ('B', 'C', 'D')", name="grade"),
        Index("ix_service_licence_copies_holder", "holder_code_index", "licence_type", "grade"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    holder_code_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    licence_type: Mapped[str] = mapped_column(String(60))
    grade: Mapped[str] = mapped_column(String(1))
    application_id: Mapped[int] = mapped_column(ForeignKey("service_applications.id"))
    digest: Mapped[str | None] = mapped_column(String(64))  # the file as uploaded (SM3)
    file_name: Mapped[str | None] = mapped_column(String(200))
    content_type: Mapped[str | None] = mapped_column(String(100))
    verified_by_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class LicenceEvent(Base):
    """One step in a licence's life: issued, 暂扣 and its lifting, 变更 and 延续 (each a new
    version; `replaced` keeps the old one's identifier, document, seal and key), 注销; who did
    it and why."""

    __tablename__ = "service_licence_events"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("service_licences.id"), index=True)
    # issue | suspend | restore | change | renew | revoke
    action: Mapped[str] = mapped_column(String(10))
    from_state: Mapped[str | None] = mapped_column(String(10))
    to_state: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)  # the version it left the licence at
    replaced: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    actor_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class LicenceUse(Base):
    """用证: a licence read for a purpose (免提交 in an application, a 亮证 check, a QR check),
    with the holder's authorisation for it; the holder sees every one."""

    __tablename__ = "service_licence_uses"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("service_licences.id"), index=True)
    used_by: Mapped[str] = mapped_column(String(200))  # who used it, as the holder reads it
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    purpose: Mapped[str] = mapped_column(String(300))  # 事由
    authorisation: Mapped[str] = mapped_column(String(100))  # how the holder agreed to it
    application_id: Mapped[int | None] = mapped_column(ForeignKey("service_applications.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class Rating(Base):
    """好差评 (国办发〔2019〕51号): one rating per finished application (一事一评), 1–5 on the
    online indicators; 1 and 2 are bad and open a rectification for each department involved."""

    __tablename__ = "service_ratings"
    __table_args__ = (CheckConstraint("overall BETWEEN 1 AND 5", name="overall"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("service_applications.id"), unique=True)
    person_id: Mapped[int] = mapped_column(BigInteger)
    overall: Mapped[int] = mapped_column(Integer)
    scores: Mapped[dict[str, int]] = mapped_column(JSON)  # indicator -> 1..5
    comment: Mapped[str] = mapped_column(Text, default="")
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)  # an upheld appeal
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    application: Mapped[Application] = relationship()


class Rectification(Base):
    """A bad rating's follow-up in one department: fixed within 15 working days with a call
    back to the applicant, or appealed as unfair and decided by the platform's administrator."""

    __tablename__ = "service_rectifications"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'fixed', 'appealed', 'appeal_upheld')", name="status"),
        Index("ix_service_rectifications_queue", "department_id", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("service_ratings.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    due_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    fix_note: Mapped[str | None] = mapped_column(Text)
    callback_note: Mapped[str | None] = mapped_column(Text)
    appeal_reason: Mapped[str | None] = mapped_column(Text)
    decided_note: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    rating: Mapped[Rating] = relationship()
    department: Mapped[Department] = relationship()


class Offer(Base):
    """免申即享: a benefit a scan of the libraries found a resident eligible for, offered in
    their portal for one-click acceptance."""

    __tablename__ = "service_offers"
    __table_args__ = (
        UniqueConstraint("person_id", "item_code"),
        CheckConstraint("status IN ('offered', 'accepted', 'declined')", name="status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    item_code: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(10))
    application_id: Mapped[int | None] = mapped_column(ForeignKey("service_applications.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Archive(Base):
    """The electronic record package (单套制) of a finished application: a BagIt bag on disk
    whose tag manifest's SM3 digest is kept here, so a package changed or rebuilt is caught."""

    __tablename__ = "service_archives"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("service_applications.id"), unique=True)
    path: Mapped[str] = mapped_column(String(300))  # relative to the data folder
    tag_digest: Mapped[str] = mapped_column(String(64))
    files: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Archival metadata (DA/T 13, DA/T 46; `services.archival`): empty on packages archived
    # before it was kept, until a check or a transfer gives them theirs.
    reference: Mapped[str | None] = mapped_column(String(60), unique=True, index=True)  # 档号
    fonds: Mapped[str | None] = mapped_column(String(20))  # 全宗号
    retention: Mapped[str | None] = mapped_column(String(4))  # 保管期限: Y, D30, D10
    classification: Mapped[str | None] = mapped_column(String(8))  # 密级
    # The last 四性检测: passed or not, with its report; and when it went to the archives.
    check_passed: Mapped[bool | None] = mapped_column(Boolean)
    check_report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    checked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    transferred_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    application: Mapped[Application] = relationship()


class ArchiveSerial(Base):
    """The last 件号 given in one series of 档号 (全宗, 年度, 保管期限)."""

    __tablename__ = "service_archive_serials"

    series: Mapped[str] = mapped_column(String(40), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class LicenceShowing(Base):
    """亮证: a QR code the holder shows, good for one minute, telling the verifier only the
    fields the holder chose. The code carries a random token; only its SM3 digest is kept."""

    __tablename__ = "service_licence_showings"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    licence_id: Mapped[int] = mapped_column(ForeignKey("service_licences.id"), index=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    fields: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    licence: Mapped[Licence] = relationship()


class Booking(Base):
    """预约: a window visit booked for an item that needs one, in a half-day slot of the
    competent department, with the queue number the person shows at the window."""

    __tablename__ = "service_bookings"
    __table_args__ = (
        UniqueConstraint("department_id", "day", "queue_number"),
        CheckConstraint("period IN ('am', 'pm')", name="period"),
        CheckConstraint("status IN ('booked', 'cancelled')", name="status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    day: Mapped[date] = mapped_column(Date)
    period: Mapped[str] = mapped_column(String(2))
    queue_number: Mapped[str] = mapped_column(String(8))  # A012 (morning), B003 (afternoon)
    status: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    item: Mapped[ServiceItem] = relationship()
    department: Mapped[Department] = relationship()


DOCUMENT_KINDS = ("receipt", "not_accepted", "refused", "correction")


class CaseDocument(Base):
    """A document a department issues on a case (受理回执, 不予受理 / 不予许可决定书, 补正告知书):
    its wording fixed when the step is taken and sealed with the department's key, as licences
    are; the page, the PDF and the public check all read this one record."""

    __tablename__ = "service_case_documents"
    __table_args__ = (CheckConstraint(f"kind IN {DOCUMENT_KINDS}", name="kind"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    number: Mapped[str] = mapped_column(String(60), unique=True)  # 文书编号
    kind: Mapped[str] = mapped_column(String(12))
    case_id: Mapped[int] = mapped_column(ForeignKey("service_cases.id"), index=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSON)  # title, addressee, paragraphs …
    key_id: Mapped[int] = mapped_column(ForeignKey("service_department_keys.id"))
    signature: Mapped[bytes] = mapped_column(LargeBinary)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The PDF as written once after commit (the outbox), in the file store; None until then.
    pdf_digest: Mapped[str | None] = mapped_column(String(64))

    case: Mapped[Case] = relationship()


REPORT_KINDS = ("accept", "process", "result", "rating", "rectify", "licence")
REPORT_STATES = ("pending", "acknowledged", "refused")


class NationalReport(Base):
    """One record sent to the 国家政务服务平台 (`services.national`): what it is from, its body
    (SM4-encrypted: it names people), and what the platform answered."""

    __tablename__ = "service_national_reports"
    __table_args__ = (
        UniqueConstraint("kind", "source_id", "subject"),
        CheckConstraint(f"kind IN {REPORT_KINDS}", name="kind"),
        CheckConstraint(f"status IN {REPORT_STATES}", name="status"),
        Index("ix_service_national_reports_day", "created_at", "kind", "status"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    # The step, rating, rectification or licence event it is made from (a rating makes one
    # report per case it rates, told apart by `subject`).
    source_id: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(String(120))  # 办件编号 or 电子证照标识
    body_cipher: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    answer_code: Mapped[str | None] = mapped_column(String(20))
    answer_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class NationalMark(Base):
    """How far the collector has read an append-only table (case steps, licence events,
    ratings): every row at or below `last_id` is reported."""

    __tablename__ = "service_national_marks"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)
