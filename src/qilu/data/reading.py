"""Reads through the sharing API (共享调用): a department's system looks a record up by its key
(an ID number, a USCC) or lists records matching a filter.

Every read is checked against the department's live grant: only granted fields are answered,
and personal fields the grant does not give in clear come masked. A record with sensitive
personal fields is answered only while the person it is about has consented (`consent`). Every
read of a resource holding personal data, and every refusal, is an entry in the SM3-chained
audit log naming the person (by their ID number's blind index), the department, the system, the
fields, the purpose and the grant: the person's data-use record (数据使用记录) is read from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, bindparam, or_, select, tuple_
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent, AuditSubject
from qilu.audit.service import record
from qilu.codes.divisions import code_prefix, covers
from qilu.data.catalog import FieldSpec, schema_of
from qilu.data.consent import live_consent, needs_consent
from qilu.data.loading import (
    Shape,
    Version,
    earlier_record_keys,
    find_record,
    record_key_of,
    shape_of_version,
)
from qilu.data.masking import mask
from qilu.data.models import DataRecord, DataResource, Dispute, ShareGrant
from qilu.data.quality import Quality, quality_of
from qilu.data.validation import check_row
from qilu.errors import NotFound, QiluError, Refused
from qilu.identity import oidc_provider
from qilu.identity.models import Department
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.service import audit_subject
from qilu.pii import Vault

PAGE = 20
LONGEST_PAGE = 100
READ, REFUSED = "data.read", "data.read_refused"
# Real-name claims given to a department system at sign-in, with the person's consent.
CLAIMS_RELEASED = oidc_provider.CLAIMS_RELEASED
CONSENT_MISSING = "sharing.consent_missing"
# Types whose values are stored as JSON text, so a filter compares them the same way on
# SQLite and PostgreSQL.
FILTERABLE = frozenset(
    {"string", "enum", "division", "uscc", "party_code", "date", "datetime", "id_number"}
)


Selected = TypeVar("Selected", bound=Select[*tuple[Any, ...]])


class SharingRefused(Refused):
    """A read the grant or the person's consent does not allow (403, kept in the log)."""


@dataclass(frozen=True)
class _Resource:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class Grant:
    id: int
    fields: list[str]
    clear_fields: frozenset[str]
    purpose: str
    valid_until: datetime
    may_list: bool = False
    row_conditions: dict[str, str] = field(default_factory=dict)

    def reaches(self, values: dict[str, Any]) -> bool:
        """Does a record with `values` lie within the grant's rows?"""
        return all(
            covers(expected, str(values.get(name) or "")) if _is_division(expected)
            else str(values.get(name)) == expected
            for name, expected in self.row_conditions.items()
        )  # fmt: skip


def _is_division(value: str) -> bool:
    return len(value) == 6 and value.isdigit()


@dataclass(frozen=True)
class Record:
    """One record as the consumer may see it."""

    data: dict[str, Any]
    masked: list[str]  # the fields answered masked
    version: int
    updated_at: datetime
    disputed: list[str] = field(default_factory=list)  # fields under an open 数据异议


@dataclass(frozen=True)
class Answer:
    resource: str
    grant: Grant
    records: list[Record]
    withheld: int = 0  # records left out of a listing for want of the person's consent
    next_after: int | None = None  # the cursor of the next page of a listing


# The resource, this department's grants on it and (for a look-up) the record, in one round
# trip; a listing passes no key and gets no record.
_RESOURCE_AND_GRANTS = (
    select(
        DataResource.id,
        DataResource.code,
        DataResource.name,
        DataResource.version.label("resource_version"),
        DataResource.created_at,
        ShareGrant.id.label("grant_id"),
        ShareGrant.status,
        ShareGrant.valid_until,
        ShareGrant.fields,
        ShareGrant.clear_fields,
        ShareGrant.purpose,
        ShareGrant.may_list,
        ShareGrant.row_conditions,
        DataResource.disputes_open,
        DataRecord.id.label("record_id"),
        DataRecord.content,
        DataRecord.sealed,
        DataRecord.version,
        DataRecord.updated_at,
    )
    .outerjoin(
        ShareGrant,
        and_(
            ShareGrant.resource_id == DataResource.id,
            ShareGrant.consumer_id == bindparam("consumer"),
            ShareGrant.status.in_(("granted", "revoked")),
        ),
    )
    .outerjoin(
        DataRecord,
        and_(
            DataRecord.resource_id == DataResource.id,
            DataRecord.record_key == bindparam("key"),
        ),
    )
    .where(DataResource.code == bindparam("code"))
    .order_by(ShareGrant.id.desc())
)
# The schema version each resource had when last read here: a look-up makes the record key with
# it before asking, so the record comes in the same round trip (if the version has moved on, the
# record is asked for again).
_SEEN: dict[str, Version] = {}


_RECORD = select(
    DataRecord.id.label("record_id"),
    DataRecord.content,
    DataRecord.sealed,
    DataRecord.version,
    DataRecord.updated_at,
).where(DataRecord.resource_id == bindparam("resource"), DataRecord.record_key == bindparam("key"))


@dataclass
class Read:
    """One read in progress: who, what, under which grant."""

    session: Session
    vault: Vault
    caller: ServiceCaller
    resource: _Resource
    shape: Shape
    moment: datetime
    operator: str | None = None  # the official at the system's end, if it says
    grant: Grant | None = None
    chain: int | None = None
    any_disputed: bool = False  # whether any record of the resource is under dispute now
    disputed: dict[int, list[str]] = field(default_factory=dict)  # record id → fields

    def note_disputes(self, record_ids: list[int]) -> None:
        """Look up the open disputes of these records (only if the resource has any)."""
        if self.any_disputed and record_ids:
            self.disputed = open_disputes(self.session, self.resource.id, record_ids)

    def refuse(
        self, code: str, message: str, subject: str | None, **details: Any
    ) -> SharingRefused:
        self.log(REFUSED, subject, {"reason": code, **details})
        return SharingRefused(code, message, **details)

    def log(
        self,
        action: str,
        subject: str | None,
        details: dict[str, Any],
        subjects: list[str] | None = None,
    ) -> None:
        entry = record(
            self.session,
            action,
            subjects=subjects,
            subject=subject or f"resource:{self.resource.code}",
            at=self.moment,
            chain=self.chain,
            details={
                "resource": self.resource.code,
                "department": self.caller.department_code,
                "client": self.caller.client_id,
                **({"operator": self.operator} if self.operator else {}),
                **(
                    {"grant": self.grant.id, "purpose": self.grant.purpose}
                    if self.grant is not None
                    else {}
                ),
                **details,
            },
        )
        self.chain = entry.chain  # one read's entries go to one chain


@dataclass(frozen=True)
class Begun:
    read: Read
    grants: list[Any]
    key_values: list[str]
    record_key: str | None
    found: Any  # the record's row, for a look-up that found it


def begin_read(
    session: Session,
    vault: Vault,
    caller: ServiceCaller,
    code: str,
    now: datetime | None,
    key: str | None = None,
    operator: str | None = None,
) -> Begun:
    """The resource, this department's grants on it and the record with `key`."""
    seen = _SEEN.get(code)
    key_values: list[str] = []
    record_key = None
    if key is not None and seen is not None:
        key_values, record_key = _keyed(vault, code, shape_of_version(session, seen), key)
    connection = session.connection()
    rows = connection.execute(
        _RESOURCE_AND_GRANTS,
        {"code": code, "consumer": caller.department_id, "key": record_key},
    ).all()
    if not rows:
        raise NotFound("catalog.not_found", f"目录中没有资源 {code}", field="resource")
    first = rows[0]
    now_seen = (first.id, first.resource_version, first.created_at)
    shape = shape_of_version(session, now_seen)
    found = first if first.content is not None else None
    if now_seen != seen:
        _SEEN[code] = now_seen
        if key is not None:
            key_values, record_key = _keyed(vault, code, shape, key)
            found = connection.execute(_RECORD, {"resource": first.id, "key": record_key}).first()
    if found is None and key is not None:  # during an index-key rotation, maybe not yet re-keyed
        for earlier in earlier_record_keys(vault, f"data:{code}", shape.blind_key, key_values):
            found = connection.execute(_RECORD, {"resource": first.id, "key": earlier}).first()
            if found is not None:
                break
    read = Read(
        session,
        vault,
        caller,
        _Resource(first.id, first.code, first.name),
        shape,
        now or datetime.now(UTC),
        operator,
    )
    read.any_disputed = bool(first.disputes_open)
    grants = [row for row in rows if row.grant_id is not None]
    return Begun(read, grants, key_values, record_key, found)


def open_disputes(
    session: Session, resource_id: int, record_ids: list[int]
) -> dict[int, list[str]]:
    """The disputed fields of these records of a resource, by record id (those under dispute)."""
    rows = session.execute(
        select(Dispute.record_id, Dispute.fields).where(
            Dispute.resource_id == resource_id,
            Dispute.status == "open",
            Dispute.record_id.in_(record_ids),
        )
    )
    return {row.record_id: list(row.fields) for row in rows}


def _keyed(vault: Vault, code: str, shape: Shape, key: str) -> tuple[list[str], str]:
    values = _key_values(shape, key)
    return values, record_key_of(vault, f"data:{code}", shape.blind_key, values)


def authorise(
    read: Read, grants: list[Any], fields: list[str] | None, subject: str | None
) -> Grant:
    """The live grant this read goes under, and the fields it answers; refusals are logged."""
    live = next((g for g in grants if g.status == "granted" and g.valid_until > read.moment), None)
    if live is None:
        if any(g.status == "granted" for g in grants):
            raise read.refuse("sharing.grant_expired", "共享授权已过期，请重新申请", subject)
        if grants:
            raise read.refuse("sharing.grant_revoked", "共享授权已被提供部门撤销", subject)
        raise read.refuse(
            "sharing.no_grant", f"本部门未获得{read.resource.name}的共享授权，请先申请", subject
        )
    read.grant = Grant(
        live.grant_id,
        live.fields,
        frozenset(live.clear_fields),
        live.purpose,
        live.valid_until,
        bool(live.may_list),
        dict(live.row_conditions or {}),
    )
    outside = [name for name in dict.fromkeys(fields or []) if name not in set(live.fields)]
    if outside:
        raise read.refuse(
            "sharing.field_not_granted",
            f"未获授权的字段：{'、'.join(outside)}",
            subject,
            fields=outside,
        )
    return read.grant


def listing_grant(read: Read, grants: list[Any], refusal: str) -> Grant:
    """The live grant of a read of every record (a feed, an extract, a subscription), which
    must allow listing; `refusal` says what was refused."""
    grant = authorise(read, grants, None, None)
    if not grant.may_list:
        raise read.refuse("sharing.listing_not_granted", refusal, None)
    return grant


def lookup(
    session: Session,
    vault: Vault,
    caller: ServiceCaller,
    code: str,
    key: str,
    *,
    fields: list[str] | None = None,
    operator: str | None = None,
    now: datetime | None = None,
) -> Answer:
    """The record of resource `code` with this key (key fields' values joined by "|");
    `operator` names the official who asked, at the calling system, for the log."""
    begun = begin_read(session, vault, caller, code, now, key, operator)
    read, shape = begun.read, begun.read.shape
    subject = None
    if [f.name for f in shape.key_fields] == [shape.subject]:  # the key is an ID number
        subject = audit_subject(vault, begun.key_values[0])
    grant = authorise(read, begun.grants, fields, subject)
    assert begun.record_key is not None
    if begun.found is None:
        raise NotFound("sharing.record_not_found", "没有这条记录", field="key")
    if not grant.reaches(dict(begun.found.content)):
        raise read.refuse(
            "sharing.row_not_granted",
            "这条记录不在本部门获授权的数据范围内",
            subject,
            record=begun.record_key,
        )
    read.note_disputes([begun.found.record_id])
    answered = _answer(
        read, wanted_fields(fields, grant), begun.found, begun.record_key, begun.found.record_id
    )
    if answered is None:  # the refusal is in the log already
        raise SharingRefused(
            CONSENT_MISSING,
            "本人未授权本部门使用其敏感个人信息，或授权已撤销、到期",
            record=begun.record_key,
        )
    _log_call(read, wanted_fields(fields, grant), [begun.record_key])
    return Answer(read.resource.code, grant, [answered])


def listing(
    session: Session,
    vault: Vault,
    caller: ServiceCaller,
    code: str,
    where: dict[str, str],
    *,
    fields: list[str] | None = None,
    limit: int = PAGE,
    after: int = 0,
    operator: str | None = None,
    now: datetime | None = None,
) -> Answer:
    """Records of resource `code` whose fields equal `where`, a page at a time (by `after`).
    Filters go on granted fields stored in the open; records whose person has not consented to
    a read of sensitive fields are left out, counted and logged."""
    begun = begin_read(session, vault, caller, code, now, operator=operator)
    read = begun.read
    grant = authorise(read, begun.grants, [*(fields or []), *where], None)
    if not grant.may_list:
        raise read.refuse(
            "sharing.listing_not_granted",
            "本部门的授权只允许按主键查询，不能批量列出记录",
            None,
        )
    if not 1 <= limit <= LONGEST_PAGE:
        raise QiluError("sharing.limit", f"每页条数须在 1 到 {LONGEST_PAGE} 之间", field="limit")
    statement = (
        select(
            DataRecord.content,
            DataRecord.sealed,
            DataRecord.version,
            DataRecord.updated_at,
            DataRecord.record_key,
            DataRecord.id,
        )
        .where(DataRecord.resource_id == read.resource.id, DataRecord.id > after)
        .order_by(DataRecord.id)
        .limit(limit)
    )
    for name, value in where.items():
        spec = read.shape.by_name[name]
        if name in read.shape.sealed or spec.type not in FILTERABLE:
            raise QiluError(
                "sharing.filter_field",
                f"{spec.label}不能用于筛选（个人信息请按主键查询）",
                field=name,
            )
        statement = statement.where(DataRecord.content[name].as_string() == value)
    rows = session.connection().execute(within_rows(statement, grant)).all()
    read.note_disputes([row.id for row in rows])
    records, withheld = [], 0
    for row in rows:
        answered = _answer(read, wanted_fields(fields, grant), row, row.record_key, row.id)
        if answered is None:
            withheld += 1
        else:
            records.append(answered)
    more = rows[-1].id if len(rows) == limit else None
    _log_call(read, wanted_fields(fields, grant), [r.record_key for r in rows])
    return Answer(read.resource.code, grant, records, withheld, more)


def within_rows(statement: Selected, grant: Grant) -> Selected:
    """`statement` over data records limited to the grant's rows, whatever else is asked."""
    for name, expected in grant.row_conditions.items():
        stored = DataRecord.content[name].as_string()
        condition = stored.startswith(code_prefix(expected)) if _is_division(expected) else (
            stored == expected
        )  # fmt: skip
        statement = statement.where(condition)
    return statement


def quality_for(
    session: Session, vault: Vault, caller: ServiceCaller, code: str, now: datetime | None = None
) -> Quality:
    """A resource's quality figures (its size, how complete each field is) for a department
    that holds a live grant on it; asked without one, refused and logged like a read."""
    begun = begin_read(session, vault, caller, code, now)
    authorise(begun.read, begun.grants, None, None)
    begun.read.log(READ, None, {"quality": True})
    return quality_of(session, vault, code)


def wanted_fields(fields: list[str] | None, grant: Grant) -> list[str]:
    """The fields asked for, each once (a list of 50,000 repeats is one field), or all granted."""
    return list(dict.fromkeys(fields)) if fields else grant.fields


def _log_call(read: Read, wanted: list[str], record_keys: list[str]) -> None:
    """Every shared call is in the log: a resource with personal data logs each record read
    (that is the person's data-use record); any other logs the call once."""
    if not read.shape.personal:
        read.log(READ, None, {"fields": wanted, "records": len(record_keys)})


def _answer(
    read: Read, wanted: list[str], row: Any, record_key: str, record_id: int
) -> Record | None:
    """The record as the grant shows it, its read logged; None, and the refusal logged, if it
    holds sensitive fields the person has not consented to (a listing leaves it out, a look-up
    refuses)."""
    values = opened(read, row.content, row.sealed)
    subject = subject_of(read, values)
    if not consented(read, wanted, values):
        read.log(REFUSED, subject, {"reason": CONSENT_MISSING, "record": record_key})
        return None
    assert read.grant is not None
    data, masked = project(read.shape, read.grant, wanted, values)
    if read.shape.personal:
        read.log(READ, subject, {"record": record_key, "fields": wanted, "masked": masked})
    disputed = [name for name in read.disputed.get(record_id, []) if name in data]
    return Record(data, masked, row.version, row.updated_at, disputed)


def opened(read: Read, content: dict[str, Any], sealed: bytes | None) -> dict[str, Any]:
    """A stored record's values, its personal part unsealed."""
    values = dict(content)
    if sealed is not None:
        values |= json.loads(read.vault.decrypt(sealed, f"data:{read.resource.code}"))
    return values


def subject_of(read: Read, values: dict[str, Any]) -> str | None:
    """The audit subject of the person a record is about, if it names one."""
    shape = read.shape
    number = values.get(shape.subject) if shape.subject is not None else None
    return audit_subject(read.vault, str(number)) if number is not None else None


def consented(read: Read, wanted: list[str], values: dict[str, Any]) -> bool:
    """Whether the person consents to this department reading the sensitive fields asked for
    (always, when none are asked for)."""
    if not needs_consent(read.shape.fields, wanted):
        return True
    number = values.get(read.shape.subject) if read.shape.subject is not None else None
    return (
        number is not None
        and live_consent(
            read.session,
            read.vault.blind_indexes(str(number), "id_number"),
            read.resource.id,
            read.caller.department_id,
            read.moment,
        )
        is not None
    )


def project(
    shape: Shape, grant: Grant, wanted: list[str], values: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The wanted fields as the grant shows them, and which of them come masked (the personal
    ones not granted in clear)."""
    return Projection.of(shape, grant, wanted)(values)


@dataclass(frozen=True)
class Projection:
    """`project` planned once for a grant and the fields asked, for a stream of records: each
    wanted field with how it is masked (None: shown as it is)."""

    steps: tuple[tuple[str, FieldSpec | None], ...]
    masked: tuple[str, ...]

    @classmethod
    def of(cls, shape: Shape, grant: Grant, wanted: list[str]) -> Projection:
        steps = tuple(
            (name, shape.by_name[name])
            if name in shape.sealed and name not in grant.clear_fields
            else (name, None)
            for name in wanted
        )  # fmt: skip
        return cls(steps, tuple(name for name, spec in steps if spec is not None))

    def __call__(self, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        data = {
            name: values.get(name) if spec is None else mask(spec, values.get(name))
            for name, spec in self.steps
        }
        return data, list(self.masked)

    def row(self, values: dict[str, Any]) -> list[Any]:
        """The wanted fields' values alone, in order, as a line of CSV takes them ("" for
        none)."""
        shown = (
            values.get(name) if spec is None else mask(spec, values.get(name))
            for name, spec in self.steps
        )
        return ["" if value is None else value for value in shown]


def _key_values(shape: Shape, key: str) -> list[str]:
    """The key's values, checked and normalised as a load stores them (an ID number's x → X)."""
    parts = key.split("|")
    if len(parts) != len(shape.key_fields):
        names = "、".join(f.label for f in shape.key_fields)
        raise QiluError("sharing.key", f"主键须为：{names}（多个用 | 分隔）", field="key")
    checked = check_row(
        shape.key_fields, {f.name: p for f, p in zip(shape.key_fields, parts, strict=True)}
    )
    if checked.problems:
        raise QiluError("sharing.key", checked.problems[0][1], field="key")
    return [str(checked.values[f.name]) for f in shape.key_fields]


def uses_of(session: Session, subject: str, *, limit: int = 50) -> list[AuditEvent]:
    """A person's data-use record (数据使用记录): the newest reads of their data, the
    refusals, and the real-name claims released to systems they signed in to, from the audit
    log."""
    in_batch = select(AuditSubject.chain, AuditSubject.seq).where(AuditSubject.subject == subject)
    return list(
        session.scalars(
            select(AuditEvent)
            .where(
                or_(
                    AuditEvent.subject == subject,
                    tuple_(AuditEvent.chain, AuditEvent.seq).in_(in_batch),
                ),
                AuditEvent.action.in_((READ, REFUSED, CLAIMS_RELEASED)),
            )
            .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class DataUseRecord:
    """我的数据: the reads of a person's data with what a page needs to name them."""

    uses: list[AuditEvent]
    resources: dict[str, DataResource]
    labels: dict[str, dict[str, str]]  # resource code → field name → label
    department_names: dict[str, str]


def data_use_record(session: Session, subject: str) -> DataUseRecord:
    """The data-use record of the person an audit subject (`audit_subject`) names."""
    uses = uses_of(session, subject)
    codes = {str(u.details.get("resource")) for u in uses}
    resources = {
        r.code: r for r in session.scalars(select(DataResource).where(DataResource.code.in_(codes)))
    }
    labels = {
        code: {f.name: f.label for f in schema_of(session, resource)}
        for code, resource in resources.items()
    }
    departments = {str(u.details.get("department")) for u in uses}
    names = session.execute(
        select(Department.code, Department.name).where(Department.code.in_(departments))
    )
    return DataUseRecord(uses, resources, labels, {code: name for code, name in names})


def read_for_applicant(
    session: Session,
    vault: Vault,
    code: str,
    key_values: list[str],
    *,
    subject: str,
    department_code: str,
    purpose: str,
    reader_person_id: int,
) -> dict[str, Any] | None:
    """A record about the person who asked for it to be used (prefill, an eligibility check of
    their own application): opened in full, since it is theirs, and logged as a read in their
    data-use record like any other, naming who opened it (the applicant, or the window clerk
    applying with them)."""
    values = find_record(session, vault, code, key_values)
    if values is not None:
        record(
            session,
            READ,
            actor_person_id=reader_person_id,
            subject=subject,
            details={
                "resource": code,
                "department": department_code,
                "client": "services",
                "purpose": purpose,
                "fields": sorted(values),
            },
        )
    return values
