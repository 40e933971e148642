"""Bulk extracts (库表交换): a department system asks for a resource's snapshot, or for the records
changed after a cursor of its change feed, and downloads it later as one compressed file (CSV or
JSON Lines, gzip) with its SHA-256 checksum. The download honours HTTP ranges, so a transfer
broken at byte N resumes from N instead of starting again.

An extract shows exactly what a listing under the same grant would: its fields, rows, masking and
consent. It is made by the sweeper, not in the request (a million records take seconds), a page
of records at a time, each page in a short transaction of its own, and written aside then renamed
so a half-written file is never offered. Pages are read as they are then: a snapshot holds every
record as new as the feed's number `to_seq` or newer, so an incremental extract from `to_seq`
afterwards misses nothing (a record may come twice, newest last, never lost).

One audit entry names everyone in the extract (the person's data-use record finds it), written
when the file is ready; the grant is checked again when the extract is made and at each
download. Files are kept `KEEP` and then removed with their row marked expired.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson
from cryptography.hazmat.primitives import hashes
from sqlalchemy import Text, cast, create_engine, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from qilu.audit.service import record
from qilu.data import changes as store
from qilu.data.consent import consenting, needs_consent
from qilu.data.evidence import Digested
from qilu.data.loading import Shape
from qilu.data.models import DataChange, DataExtract, DataRecord
from qilu.data.reading import (
    READ,
    Grant,
    Projection,
    Read,
    SharingRefused,
    begin_read,
    listing_grant,
    wanted_fields,
    within_rows,
)
from qilu.errors import NotFound, QiluError
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.service import audit_subject
from qilu.parallel import in_order
from qilu.pii import Vault

FORMATS = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
PENDING, RUNNING, READY, FAILED, EXPIRED = "pending", "running", "ready", "failed", "expired"
KEEP = timedelta(days=7)
LEASE = timedelta(minutes=30)  # a sweeper that died making one leaves it to another after this
PAGE = 5_000
PARALLEL_FROM = 50_000  # records: below this, starting worker processes costs more
LEVEL = 1  # gzip's fastest level: a third of CSV's size at a fraction of level 6's time


def folder(data_dir: Path) -> Path:
    return data_dir / "extracts"


def request_extract(
    session: Session,
    vault: Vault,
    caller: ServiceCaller,
    code: str,
    *,
    format: str,
    since: int | None = None,
    now: datetime | None = None,
) -> DataExtract:
    """Ask for an extract of resource `code` (after feed number `since`, or all of it) under
    the caller's grant, which must allow listing; it is made after this transaction commits."""
    if format not in FORMATS:
        raise QiluError("extract.format", "格式须为 csv 或 jsonl", field="format")
    begun = begin_read(session, vault, caller, code, now)
    read = begun.read
    grant = _listing_grant(read, begun.grants)
    latest = store.latest(session, read.resource.id)
    if since is not None and not 0 <= since <= latest:
        raise QiluError("extract.since", f"游标须在 0 到 {latest} 之间（变更序号）", field="since")
    extract = DataExtract(
        resource_id=read.resource.id,
        department_id=caller.department_id,
        client_id=caller.client_id,
        format=format,
        since_seq=since,
        to_seq=latest,
        status=PENDING,
        created_at=read.moment,
    )
    session.add(extract)
    session.flush()
    record(
        session,
        "data.extract_requested",
        subject=f"resource:{code}",
        at=read.moment,
        details={
            "extract": extract.id,
            "department": caller.department_code,
            "client": caller.client_id,
            "grant": grant.id,
            "format": format,
            "since": since,
        },
    )
    return extract


def _listing_grant(read: Read, grants: list[Any]) -> Grant:
    return listing_grant(read, grants, "本部门的授权只允许按主键查询，不能批量导出记录")


def own_extract(session: Session, caller: ServiceCaller, extract_id: int) -> DataExtract:
    """One of the caller's department's extracts (another department's is not found)."""
    found = session.get(DataExtract, extract_id)
    if found is None or found.department_id != caller.department_id:
        raise NotFound("extract.not_found", "没有这个导出任务", field="extract")
    return found


@dataclass(frozen=True)
class Download:
    resource: str
    path: Path
    name: str
    media_type: str
    sha256: str
    answer: Digested  # what the download's evidence signs


def download(
    session: Session,
    vault: Vault,
    caller: ServiceCaller,
    data_dir: Path,
    extract_id: int,
    *,
    range_header: str | None = None,
    now: datetime | None = None,
) -> Download:
    """The ready file of one of the caller's extracts, while its grant still holds; each
    download (or resumed range) is logged."""
    extract = own_extract(session, caller, extract_id)
    if extract.status != READY:
        reasons = {
            PENDING: "导出尚未完成，请稍后再取",
            RUNNING: "导出尚未完成，请稍后再取",
            FAILED: f"导出失败：{extract.error}",
            EXPIRED: "导出文件已过保存期，请重新申请",
        }
        raise QiluError(f"extract.{extract.status}", reasons[extract.status], field="extract")
    begun = begin_read(session, vault, caller, extract.resource.code, now)
    _listing_grant(begun.read, begun.grants)
    begun.read.log(
        "data.extract_downloaded",
        None,
        {"extract": extract.id, "range": range_header or "", "sha256": extract.sha256},
    )
    return Download(
        extract.resource.code,
        folder(data_dir) / _file_name(extract),
        f"{extract.resource.code}-{extract.id}.{extract.format}.gz",
        "application/gzip",
        extract.sha256,
        Digested(bytes.fromhex(extract.sm3), extract.size),
    )


def _file_name(extract: DataExtract) -> str:
    return f"{extract.id}.{extract.format}.gz"


# -- making extracts (the sweeper) ------------------------------------------------------------


@dataclass
class _Plan:
    extract_id: int
    read: Read
    projector: _Projector
    edges: list[int]  # the ranges' upper ids (below)
    workers: int


@dataclass(frozen=True)
class _Pages:
    """Where a worker reads its pages: the resource's records within the grant's rows (changed
    after `since`, if it is set), by id range, in a short transaction of their own on the
    worker's own connection, so no record passes through the process that writes the file."""

    database: str  # the store's URL: a worker process opens its own engine on it
    resource_id: int
    since: int | None
    grant: Grant

    def read(self, bounds: tuple[int, int | None]) -> list[tuple[str, bytes | None, int]]:
        low, high = bounds
        statement = (
            select(cast(DataRecord.content, Text), DataRecord.sealed, DataRecord.version)
            .where(DataRecord.resource_id == self.resource_id, DataRecord.id > low)
            .order_by(DataRecord.id)
        )
        if high is not None:
            statement = statement.where(DataRecord.id <= high)
        if self.since is not None:
            statement = statement.where(
                DataRecord.id.in_(
                    select(DataChange.record_id).where(
                        DataChange.resource_id == self.resource_id, DataChange.seq > self.since
                    )
                )
            )
        with _sessions(self.database)() as session:
            rows = session.connection().execute(within_rows(statement, self.grant))
            return [(content, sealed, version) for content, sealed, version in rows]


# By the store's URL: in the sweeper's process its own sessions (set as each extract begins), in
# a worker process sessions on an engine of its own, opened at its first page.
_SESSIONS: dict[str, sessionmaker[Session]] = {}


def _sessions(url: str) -> sessionmaker[Session]:
    if url not in _SESSIONS:
        _SESSIONS[url] = sessionmaker(create_engine(url, pool_size=1))
    return _SESSIONS[url]


@dataclass(frozen=True)
class _Projector:
    """A range of records read and shown as the grant shows them, in the extract's format: what
    each worker process does (it pickles: no session, no read in progress)."""

    pages: _Pages
    vault: Vault
    column: str  # what the sealed part is bound to, `data:<code>`
    shape: Shape
    wanted: list[str]
    format: str
    consents: frozenset[bytes] | None  # None: no field asked needs the person's consent

    def chunk(self, bounds: tuple[int, int | None]) -> _Chunk:
        """The records with ids in (low, high] (high None: to the end), read by this process."""
        return self.project(self.pages.read(bounds))

    def project(self, rows: list[tuple[str, bytes | None, int]]) -> _Chunk:
        shown = Projection.of(self.shape, self.pages.grant, self.wanted)
        text = io.StringIO()
        writer = csv.writer(text)
        lines: list[bytes] = []
        done = _Chunk()
        for content, sealed, version in rows:
            values = orjson.loads(content)
            if sealed is not None:
                values |= orjson.loads(self.vault.decrypt(sealed, self.column))
            number = values.get(self.shape.subject) if self.shape.subject else None
            if self.consents is not None and not self._consented(number):
                done.withheld += 1
                continue
            if self.format == "csv":
                writer.writerow(shown.row(values))
            else:
                data, masked = shown(values)
                lines.append(orjson.dumps({"data": data, "masked": masked, "version": version}))
            if number is not None:
                done.subjects.append(audit_subject(self.vault, str(number)))
            done.records += 1
        done.subjects.sort()  # sorted runs: the sweeper's sort of them all merges them
        done.text = text.getvalue().encode() + b"".join(line + b"\n" for line in lines)
        return done

    def _consented(self, number: Any) -> bool:
        assert self.consents is not None
        return number is not None and any(
            index in self.consents for index in self.vault.blind_indexes(str(number), "id_number")
        )


@dataclass
class _Chunk:
    text: bytes = b""
    records: int = 0
    withheld: int = 0
    subjects: list[str] = field(default_factory=list)


def due(session: Session, now: datetime | None = None) -> list[int]:
    moment = now or datetime.now(UTC)
    return list(
        session.scalars(
            select(DataExtract.id)
            .where(
                or_(
                    DataExtract.status == PENDING,
                    (DataExtract.status == RUNNING) & (DataExtract.leased_until < moment),
                )
            )
            .order_by(DataExtract.id)
        )
    )


def make(
    sessions: sessionmaker[Session],
    vault: Vault,
    data_dir: Path,
    extract_id: int,
    *,
    workers: int = 1,
) -> bool:
    """Make one extract if this process gets its lease; False if another has it or it failed.
    A large one is projected in up to `workers` processes."""
    with sessions.begin() as session:
        plan = _plan(session, sessions, vault, extract_id, workers)
    if plan is None:
        return False
    target = folder(data_dir)
    target.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as raw:
            written = _write(plan, raw)
        os.replace(temporary, target / f"{extract_id}.{plan.projector.format}.gz")
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    with sessions.begin() as session:
        _finish(session, plan, written)
    return True


def _plan(
    session: Session, sessions: sessionmaker[Session], vault: Vault, extract_id: int, workers: int
) -> _Plan | None:
    moment = datetime.now(UTC)
    leased = session.execute(
        update(DataExtract)
        .where(
            DataExtract.id == extract_id,
            or_(
                DataExtract.status == PENDING,
                (DataExtract.status == RUNNING) & (DataExtract.leased_until < moment),
            ),
        )
        .values(status=RUNNING, leased_until=moment + LEASE)
        .returning(DataExtract.id)
    ).scalar_one_or_none()
    if leased is None:
        return None
    extract = session.get_one(DataExtract, extract_id)
    caller = ServiceCaller.stored(session, extract.client_id)
    if caller is None:
        extract.status, extract.error = FAILED, "申请导出的系统已停用"
        return None
    try:
        begun = begin_read(session, vault, caller, extract.resource.code, moment)
        grant = _listing_grant(begun.read, begun.grants)
    except SharingRefused as refusal:  # the grant ended since it was asked for
        extract.status, extract.error = FAILED, refusal.message
        return None
    read = begun.read
    wanted = wanted_fields(None, grant)
    consents = (
        consenting(session, read.resource.id, read.caller.department_id, moment)
        if needs_consent(read.shape.fields, wanted)
        else None
    )
    edges = _edges(session, read.resource.id)
    url = session.connection().engine.url.render_as_string(hide_password=False)
    _SESSIONS[url] = sessions  # pages read in this process, on the sweeper's own sessions
    pages = _Pages(url, read.resource.id, extract.since_seq, grant)
    projector = _Projector(
        pages, vault, f"data:{read.resource.code}", read.shape, wanted, extract.format, consents
    )
    parallel = workers if len(edges) * PAGE >= PARALLEL_FROM else 1
    return _Plan(extract_id, read, projector, edges, parallel)


@dataclass
class _Written:
    records: int = 0
    withheld: int = 0
    size: int = 0
    sha256: str = ""
    sm3: str = ""
    subjects: list[str] = field(default_factory=list)


class _Hashing(io.RawIOBase):
    """A file that keeps the SHA-256 (for the consumer) and SM3 (for the download's signed
    evidence) and the size of what is written through it."""

    def __init__(self, out: IO[bytes]):
        self.out, self.hash, self.size = out, hashlib.sha256(), 0
        self.sm3 = hashes.Hash(hashes.SM3())

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.hash.update(view)
        self.sm3.update(bytes(view))
        self.size += view.nbytes
        self.out.write(view)
        return view.nbytes


def _write(plan: _Plan, raw: IO[bytes]) -> _Written:
    hashing = _Hashing(raw)
    written = _Written()
    projector = plan.projector
    with gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=LEVEL, mtime=0) as zipped:
        if projector.format == "csv":
            zipped.write((",".join(projector.wanted) + "\r\n").encode())
        for chunk in in_order(projector.chunk, _ranges(plan.edges), plan.workers):
            zipped.write(chunk.text)
            written.records += chunk.records
            written.withheld += chunk.withheld
            written.subjects.extend(chunk.subjects)
    written.size, written.sha256 = hashing.size, hashing.hash.hexdigest()
    written.sm3 = hashing.sm3.finalize().hex()
    return written


def _edges(session: Session, resource: int) -> list[int]:
    """The resource's records cut into ranges of ids of `PAGE` records each, read in one pass
    over the index: every `PAGE`th id, each the upper end (inclusive) of a range."""
    numbered = (
        select(DataRecord.id, func.row_number().over(order_by=DataRecord.id).label("n"))
        .where(DataRecord.resource_id == resource)
        .subquery()
    )
    return list(
        session.scalars(
            select(numbered.c.id).where(numbered.c.n % PAGE == 0).order_by(numbered.c.id)
        )
    )


def _ranges(edges: list[int]) -> Iterator[tuple[int, int | None]]:
    """The ranges (low, high] the edges make, the last open-ended (it takes the rest, and any
    record added since): only ids pass here, the workers read the rows."""
    low = 0
    for high in edges:
        yield low, high
        low = high
    yield low, None


def _finish(session: Session, plan: _Plan, written: _Written) -> None:
    """The file is in place: say so, with its figures, and log the read naming everyone in it."""
    moment = datetime.now(UTC)
    extract = session.get_one(DataExtract, plan.extract_id)
    extract.status, extract.leased_until = READY, None
    extract.records, extract.withheld = written.records, written.withheld
    extract.size, extract.sha256, extract.sm3 = written.size, written.sha256, written.sm3
    extract.ready_at, extract.expires_at = moment, moment + KEEP
    read = plan.read
    read.session, read.chain, read.moment = session, None, moment
    read.log(
        READ,
        None,
        {
            "fields": plan.projector.wanted,
            "extract": extract.id,
            "records": written.records,
            "withheld": written.withheld,
            "sha256": written.sha256,
        },
        subjects=written.subjects or None,
    )


def make_due(
    sessions: sessionmaker[Session], vault: Vault, data_dir: Path, *, workers: int = 1
) -> int:
    """One sweep: make every extract waiting (one at a time; each is a stream, not a burst)."""
    with sessions() as session:
        waiting = due(session)
    return sum(
        make(sessions, vault, data_dir, extract_id, workers=workers) for extract_id in waiting
    )


def expire(session: Session, data_dir: Path, now: datetime | None = None) -> int:
    """Remove the files kept past `KEEP`; their rows stay, marked expired."""
    moment = now or datetime.now(UTC)
    old = list(
        session.scalars(
            select(DataExtract).where(DataExtract.status == READY, DataExtract.expires_at < moment)
        )
    )
    for extract in old:
        (folder(data_dir) / _file_name(extract)).unlink(missing_ok=True)
        extract.status = EXPIRED
    return len(old)
