"""Write a synthetic Shandong into the store: COPY on PostgreSQL, executemany on SQLite.

Everything happens on the caller's connection, inside its transaction: a failed or interrupted
seed leaves nothing behind. Rows are made in batches (in worker processes for large scales) and
written as they come, so memory stays flat whatever the scale.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import astuple, dataclass, fields
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Date, Numeric, func, insert, select

from qilu.db import Base, copy_rows
from qilu.demo import organisations, population
from qilu.demo.models import SeedRun
from qilu.errors import QiluError
from qilu.identity.models import Department, LegalEntity, Person, StaffMember
from qilu.pii import Vault

T = TypeVar("T")
PARALLEL_FROM = 50_000  # below this, starting worker processes costs more than it saves
# The data libraries first: their records are copies of, and facts about, what follows.
SEEDED_TABLES = (
    "data_files",
    "data_quality_checks",
    "data_extracts",
    "data_open_downloads",
    "data_call_evidence",
    "data_disputes",
    "data_dead_letters",
    "data_subscriptions",
    "data_apis",
    "data_changes",
    "data_record_changes",
    "data_records",
    "data_loads",
    "data_consents",
    "data_share_grants",
    "data_resource_schemas",
    "data_resources",
    "staff_members",
    "legal_entities",
    "departments",
    "persons",
    "seed_runs",
)


class Progress(Protocol):
    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, amount: int) -> None: ...


class _Silent:
    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, stage: str, amount: int) -> None:
        pass


@dataclass(frozen=True)
class SeedPlan:
    seed: int
    residents: int
    entities: int

    def __post_init__(self) -> None:
        if not 1 <= self.residents <= population.MAX_RESIDENTS:
            raise QiluError(
                "seed.scale",
                f"居民数须在 1 到 {population.MAX_RESIDENTS:,} 之间，实为 {self.residents}",
                field="scale",
            )
        if self.entities < 0:
            raise QiluError(
                "seed.entities", f"法人数不能为负数，实为 {self.entities}", field="entities"
            )

    @classmethod
    def for_scale(cls, residents: int, seed: int, entities: int | None = None) -> SeedPlan:
        """Shandong's ratio: about 14 million market entities for 101 million residents."""
        return cls(seed, residents, residents // 7 if entities is None else entities)


@dataclass(frozen=True)
class SeedReport:
    residents: int
    entities: int
    departments: int
    staff: int
    library_records: int = 0  # rows loaded into the data libraries from the above


def existing_run(connection: Connection) -> SeedRun | None:
    row = connection.execute(select(SeedRun).order_by(SeedRun.id.desc()).limit(1)).first()
    return row[0] if row else None


def seed_shandong(
    connection: Connection,
    vault: Vault,
    plan: SeedPlan,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> SeedReport:
    """Generate and store the plan's residents, departments, staff and entities."""
    progress = progress or _Silent()
    residents_present = connection.execute(select(func.count()).select_from(Person)).scalar_one()
    if residents_present:
        raise QiluError(
            "seed.not_empty",
            f"数据库中已有 {residents_present} 名居民：请换用空数据库，或加 --reset 先清空合成数据",
        )
    if workers is None:
        workers = min(os.cpu_count() or 1, 4) if plan.residents >= PARALLEL_FROM else 1

    progress.start("居民", plan.residents)
    for rows in _in_batches(
        population.resident_rows, plan.residents, workers, (plan.seed,), (vault,)
    ):
        write_rows(connection, Person.__tablename__, population.COLUMNS, rows)
        progress.advance("居民", len(rows))

    departments = organisations.department_rows()
    progress.start("部门", len(departments))
    write_rows(
        connection,
        Department.__tablename__,
        [field.name for field in fields(organisations.DepartmentRow)],
        [astuple(department) for department in departments],
    )
    progress.advance("部门", len(departments))

    staff = list(organisations.staff_rows(plan.seed, plan.residents, departments))
    progress.start("工作人员", len(staff))
    write_rows(
        connection, StaffMember.__tablename__, ("id", "department_id", "person_id", "title"), staff
    )
    progress.advance("工作人员", len(staff))

    progress.start("法人", plan.entities)
    for rows in _in_batches(
        organisations.entity_rows, plan.entities, workers, (plan.seed, plan.residents), ()
    ):
        write_rows(connection, LegalEntity.__tablename__, organisations.ENTITY_COLUMNS, rows)
        progress.advance("法人", len(rows))

    report = SeedReport(plan.residents, plan.entities, len(departments), len(staff))
    connection.execute(
        insert(SeedRun).values(
            seed=plan.seed,
            residents=report.residents,
            entities=report.entities,
            departments=report.departments,
            staff=report.staff,
        )
    )
    _after_bulk_load(connection)
    return report


def reset_synthetic(connection: Connection) -> None:
    """Remove every generated row (children first)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"TRUNCATE {', '.join(SEEDED_TABLES)} RESTART IDENTITY CASCADE")
        return
    for table in SEEDED_TABLES:
        connection.exec_driver_sql(f"DELETE FROM {table}")


def write_rows(
    connection: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Append rows as fast as the backend allows, on the connection's open transaction."""
    if connection.dialect.name == "postgresql":
        copy_rows(connection, table, columns, rows)  # about twice as fast as text COPY
        return
    names = ", ".join(columns)
    # Dates and decimals go in as the text SQLAlchemy's Date and Numeric read back on SQLite.
    described = Base.metadata.tables[table].c
    as_text = [i for i, c in enumerate(columns) if isinstance(described[c].type, Date | Numeric)]
    marks = ", ".join("?" for _ in columns)
    connection.exec_driver_sql(
        f"INSERT INTO {table} ({names}) VALUES ({marks})",
        [_with_text(row, as_text) for row in rows] if as_text else [tuple(row) for row in rows],
    )


def _with_text(row: Sequence[Any], positions: list[int]) -> tuple[Any, ...]:
    values = list(row)
    for position in positions:
        if values[position] is not None:
            values[position] = str(values[position])
    return tuple(values)


def _after_bulk_load(connection: Connection) -> None:
    if connection.dialect.name != "postgresql":
        return
    for table in SEEDED_TABLES:
        if "id" not in Base.metadata.tables[table].c:  # keyed otherwise: no sequence
            continue
        connection.exec_driver_sql(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        )
    for table in SEEDED_TABLES:
        connection.exec_driver_sql(f"ANALYZE {table}")


def _in_batches(
    make: Callable[..., list[T]],
    total: int,
    workers: int,
    leading: tuple[Any, ...],
    trailing: tuple[Any, ...],
) -> Iterator[list[T]]:
    """make(*leading, start, stop, *trailing) for each batch, in order, at most 2·workers ahead."""
    ranges = [(s, min(s + population.BATCH, total)) for s in range(0, total, population.BATCH)]
    if workers <= 1 or len(ranges) <= 1:
        for start, stop in ranges:
            yield make(*leading, start, stop, *trailing)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        pending: deque[Future[list[T]]] = deque()
        for start, stop in ranges:
            pending.append(pool.submit(make, *leading, start, stop, *trailing))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
