"""Rotating the SM4 key of personal data (`qilu keys rotate-pii`): every ciphertext still under
an earlier key is decrypted and encrypted again under the current one, in batches.

Online: each batch is its own short transaction over rows taken in primary-key order, and the
vault decrypts under every key it holds, so reads and writes go on throughout (a row written
meanwhile is already under the new key). Resumable: a ciphertext names its key in its second
byte, so a second run skips what the first finished; stopping anywhere loses nothing. Blind
indexes (HMAC-SM3) are rebuilt by `qilu.operations.index_rotation`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, Table, bindparam, func, literal, select, update
from sqlalchemy.orm import Session

import qilu.models  # noqa: F401  (registers every table in Base.metadata)
from qilu.audit.service import record
from qilu.db import Base
from qilu.demo.seed import Progress
from qilu.pii import Vault

BATCH = 500


@dataclass(frozen=True)
class SealedColumn:
    """A column holding SM4 ciphertexts, and the associated data each was sealed with (fixed,
    or `data:<resource code>` for the data libraries)."""

    table: str
    column: str
    associated: str | None  # None: the row's data resource names it

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column}"


COLUMNS = (
    SealedColumn("persons", "id_number_cipher", "id_number"),
    SealedColumn("persons", "phone_cipher", "phone"),
    SealedColumn("accounts", "totp_secret_cipher", "totp_secret"),
    SealedColumn("signing_keys", "private_key_cipher", "signing_key"),
    SealedColumn("service_department_keys", "private_key_cipher", "department_key"),
    SealedColumn("service_licences", "holder_code_cipher", "licence_holder_code"),
    SealedColumn("service_national_reports", "body_cipher", "national_report"),
    SealedColumn("data_records", "sealed", None),
    SealedColumn("data_record_changes", "before_sealed", None),
    SealedColumn("data_record_changes", "after_sealed", None),
    SealedColumn("data_disputes", "claim_cipher", "dispute_claim"),
)


def rotate(
    engine: Engine,
    vault: Vault,
    *,
    progress: Progress | None = None,
    max_batches: int | None = None,
) -> dict[str, int]:
    """Rewrite every ciphertext not under the vault's current key; returns how many each
    column needed. `max_batches` stops early (a run cut short, in tests)."""
    rewritten: dict[str, int] = {}
    batches = 0
    for sealed in COLUMNS:
        if progress is not None:
            progress.start(sealed.label, _stale_count(engine, sealed, vault))
        rewritten[sealed.label] = 0
        after = 0
        while max_batches is None or batches < max_batches:
            with Session(engine) as session, session.begin():
                rows = _batch(session, sealed, vault, after)
                table = _table(sealed.table)
                fresh = [
                    {"row_id": row_id, "fresh": vault.encrypt(vault.decrypt(blob, aad), aad)}
                    for row_id, blob, aad in rows
                ]
                if fresh:  # one executemany per batch
                    session.connection().execute(
                        update(table)
                        .where(table.c.id == bindparam("row_id"))
                        .values({sealed.column: bindparam("fresh")}),
                        fresh,
                    )
            if not rows:
                break
            after, batches = rows[-1][0], batches + 1
            rewritten[sealed.label] += len(rows)
            if progress is not None:
                progress.advance(sealed.label, len(rows))
    with Session(engine) as session, session.begin():
        record(
            session,
            "system.pii_rotated",
            details={"key_id": vault.key_id, "rewritten": sum(rewritten.values())},
        )
    return rewritten


def remaining(engine: Engine, vault: Vault) -> int:
    """How many ciphertexts are still under an earlier key (0: the earlier keys may go)."""
    return sum(_stale_count(engine, sealed, vault) for sealed in COLUMNS)


def _stale_count(engine: Engine, sealed: SealedColumn, vault: Vault) -> int:
    table = _table(sealed.table)
    with Session(engine) as session:
        query = select(func.count()).select_from(table)
        return session.scalar(query.where(_stale(table.c[sealed.column], vault))) or 0


def _stale(column: ColumnElement[bytes], vault: Vault) -> ColumnElement[bool]:
    """The ciphertext's key byte (its second) is not the current key's: on both backends
    `substr` of a blob is a blob."""
    return func.substr(column, 2, 1) != bytes((vault.key_id,))


def _table(name: str) -> Table:
    return Base.metadata.tables[name]  # every model is loaded: see the import of qilu.models


def _batch(
    session: Session, sealed: SealedColumn, vault: Vault, after: int
) -> list[tuple[int, bytes, str]]:
    """The next stale rows of a column after id `after`: (id, ciphertext, associated data)."""
    table = _table(sealed.table)
    column = table.c[sealed.column]
    if sealed.associated is not None:
        statement = select(table.c.id, column, literal(sealed.associated))
    else:
        resources, records = _table("data_resources"), _table("data_records")
        code = literal("data:") + resources.c.code
        if sealed.table == "data_records":
            statement = select(table.c.id, column, code).join(
                resources, resources.c.id == table.c.resource_id
            )
        else:
            statement = (
                select(table.c.id, column, code)
                .join(records, records.c.id == table.c.record_id)
                .join(resources, resources.c.id == records.c.resource_id)
            )
    statement = statement.where(table.c.id > after, column.is_not(None), _stale(column, vault))
    found = session.execute(statement.order_by(table.c.id).limit(BATCH))
    return [(row_id, blob, associated) for row_id, blob, associated in found]
