"""公共数据开放: the resources a provider marks 无条件开放 are published on a public catalog page
with their licence, format, update cycle and a download anyone may take without signing in.
Only fields marked public leave (never a personal field, never an internal one), and every
download is counted by day.

The licence is the platform's own (`LICENCE`); a province with its 开放数据使用协议 names it
there. GB/T 38664.1 asks that open data come with its metadata, format and update frequency
and be machine-readable: CSV, UTF-8 with a header row of the field names.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from qilu.data.catalog import FieldSpec, schema_of
from qilu.data.models import DataRecord, DataResource, OpenDownload
from qilu.errors import NotFound
from qilu.workdays import beijing_today

LICENCE = "署名 4.0 国际（CC BY 4.0）：使用时须注明数据来源“山东省公共数据开放”及提供部门"
PAGE = 2_000


@dataclass(frozen=True)
class OpenResource:
    resource: DataResource
    fields: list[FieldSpec]  # the public ones: all that is published
    records: int
    downloads: int


def _published(session: Session, resource: DataResource) -> OpenResource:
    fields = [f for f in schema_of(session, resource) if f.sensitivity == "public"]
    records = session.scalar(
        select(func.count()).select_from(DataRecord).where(DataRecord.resource_id == resource.id)
    )
    downloads = session.scalar(
        select(func.coalesce(func.sum(OpenDownload.count), 0)).where(
            OpenDownload.resource_id == resource.id
        )
    )
    return OpenResource(resource, fields, int(records or 0), int(downloads or 0))


def open_catalog(session: Session) -> list[DataResource]:
    """Every resource marked 无条件开放 that holds a table, by code."""
    return list(
        session.scalars(
            select(DataResource)
            .where(DataResource.opening == "open", DataResource.share_mode == "table")
            .order_by(DataResource.code)
        )
    )


def open_resources(session: Session) -> list[OpenResource]:
    """The open resources with their public fields and their record and download counts."""
    return [_published(session, resource) for resource in open_catalog(session)]


def open_resource(session: Session, code: str) -> OpenResource:
    resource = session.scalars(
        select(DataResource).where(
            DataResource.code == code,
            DataResource.opening == "open",
            DataResource.share_mode == "table",
        )
    ).one_or_none()
    if resource is None:
        raise NotFound("opening.not_found", f"没有开放的数据资源 {code}", field="code")
    return _published(session, resource)


def count_download(session: Session, published: OpenResource, now: datetime | None = None) -> None:
    """One more download today (an upsert: downloads at once are all counted)."""
    table = OpenDownload.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(
        resource_id=published.resource.id, day=beijing_today(now or datetime.now(UTC)), count=1
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c.resource_id, table.c.day],
            set_={"count": table.c.count + 1},
        )
    )


def csv_chunks(
    sessions: sessionmaker[Session], resource_id: int, names: list[str]
) -> Iterator[bytes]:
    """The resource's public fields as CSV (UTF-8 with a BOM, so spreadsheets read it), a page
    of records at a time, each page read in a short session of its own."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(names)
    yield ("\ufeff" + out.getvalue()).encode()
    after = 0
    while True:
        with sessions() as session:
            rows = session.execute(
                select(DataRecord.id, DataRecord.content)
                .where(DataRecord.resource_id == resource_id, DataRecord.id > after)
                .order_by(DataRecord.id)
                .limit(PAGE)
            ).all()
        if not rows:
            return
        out.seek(0)
        out.truncate()
        for row in rows:  # public fields are never sealed: the open part holds them all
            writer.writerow(
                ["" if row.content.get(n) is None else row.content.get(n) for n in names]
            )
        yield out.getvalue().encode()
        after = rows[-1].id
