"""Key rotation on a seeded store: `python -m bench.key_rotation [--scale N] [--backend B]`.

Seeds N residents (with their library records, as `qilu seed` does), then times, on the same
store:

- `rotate`: the SM4 rewrite of every ciphertext to a new key, against the bare cryptography
  (decrypt and encrypt each ciphertext in this process, no database) of the same ciphertexts;
- `rebuild`: the index rebuild under a new index key, against the bare cryptography of what it
  recomputes (each person's number and phone decrypted and indexed, each blind record's sealed
  part decrypted and its key indexed);
- look-ups while the rotation is pending: a resident by ID number and a 人口 record by key with
  one index key, against the same with an earlier index key held (each asked for with the
  index under both keys, `IN (new, old)`).
"""

from __future__ import annotations

import argparse
import random
import secrets
import time
from collections.abc import Callable

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from bench import stores
from qilu.data.loading import Layout, find_record, values_of
from qilu.data.models import DataRecord, DataResource
from qilu.db import make_engine
from qilu.demo.service import generate
from qilu.identity.models import Person
from qilu.identity.service import find_person
from qilu.operations import index_rotation, pii_rotation
from qilu.pii import Vault
from qilu.settings import Settings

LOOKUPS = 2_000


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def run(backend: str, settings: Settings, scale: int) -> None:
    engine = make_engine(settings)
    generate(engine, settings, scale=scale, seed=2020, entities=0)
    sm4 = bytes.fromhex(settings.pii_key.get_secret_value())  # type: ignore[union-attr]
    index = bytes.fromhex(settings.index_key.get_secret_value())  # type: ignore[union-attr]
    print(f"{backend}: {scale:,} residents")

    fresh = secrets.token_bytes(16)
    new_sm4 = Vault(fresh, index, 1, {0: sm4})
    stale = pii_rotation.remaining(engine, new_sm4)
    blobs = _ciphertexts(engine, new_sm4)
    bare = timed(lambda: [new_sm4.encrypt(new_sm4.decrypt(b, c), c) for b, c in blobs])
    rotated = timed(lambda: pii_rotation.rotate(engine, new_sm4))
    print(
        f"    rotate: {stale:,} ciphertexts in {rotated:.2f} s = {stale / rotated:,.0f}/s; "
        f"bare SM4 of the same {bare:.2f} s; ratio {rotated / bare:.1f}x"
    )

    new_index = secrets.token_bytes(32)
    rotating = Vault(fresh, new_index, 1, {}, index, (index,))
    numbers = _numbers(engine, rotating)
    sample = random.Random(7).sample(numbers, min(LOOKUPS, len(numbers)))
    one_key = Vault(fresh, index, 1)
    plain = timed(lambda: _find_all(engine, one_key, sample))
    both = timed(lambda: _find_all(engine, rotating, sample))
    print(
        f"    look-up by ID number ({len(sample):,}): {plain / len(sample) * 1e6:,.0f} us with one "
        f"index key, {both / len(sample) * 1e6:,.0f} us holding an earlier one; ratio "
        f"{both / plain:.2f}x"
    )
    plain = timed(lambda: _records_all(engine, one_key, sample))
    both = timed(lambda: _records_all(engine, rotating, sample))
    print(
        f"    人口 record by key ({len(sample):,}): {plain / len(sample) * 1e6:,.0f} us with one "
        f"key, {both / len(sample) * 1e6:,.0f} us before its re-keying; ratio {both / plain:.2f}x"
    )

    bare = timed(lambda: _bare_rebuild(engine, rotating))
    counts: dict[str, int] = {}
    rebuilt = timed(lambda: counts.update(index_rotation.rebuild(engine, rotating)))
    print(
        f"    rebuild: {sum(counts.values()):,} rows re-indexed ({counts}) in {rebuilt:.2f} s; "
        f"bare cryptography of the same {bare:.2f} s; ratio {rebuilt / bare:.1f}x"
    )
    again = timed(lambda: index_rotation.rebuild(engine, rotating))
    print(f"    a second rebuild (nothing left, every row read): {again:.2f} s")
    engine.dispose()


def _ciphertexts(engine: Engine, vault: Vault) -> list[tuple[bytes, str]]:
    """Every ciphertext the SM4 rotation to `vault`'s key rewrites, with its associated data."""
    out: list[tuple[bytes, str]] = []
    with Session(engine) as session:
        for sealed in pii_rotation.COLUMNS:
            batch = pii_rotation._batch
            after = 0
            while rows := batch(session, sealed, vault, after):
                out += [(blob, aad) for _, blob, aad in rows]
                after = rows[-1][0]
    return out


def _numbers(engine: Engine, vault: Vault) -> list[str]:
    with Session(engine) as session:
        ciphers = session.scalars(select(Person.id_number_cipher)).all()
    return [vault.decrypt(c, "id_number") for c in ciphers]


def _find_all(engine: Engine, vault: Vault, numbers: list[str]) -> None:
    with Session(engine) as session:
        for number in numbers:
            find_person(session, vault, number)


def _records_all(engine: Engine, vault: Vault, numbers: list[str]) -> None:
    with Session(engine) as session:
        for number in numbers:
            assert find_record(session, vault, "JC-RK-001", [number]) is not None


def _bare_rebuild(engine: Engine, vault: Vault) -> None:
    """The cryptography the rebuild does, on rows read ahead (reading not timed apart)."""
    with Session(engine) as session:
        persons = session.execute(select(Person.id_number_cipher, Person.phone_cipher)).all()
        resources = {
            r.id: Layout.of(session, r) for r in session.scalars(select(DataResource)).all()
        }
        records = session.scalars(select(DataRecord)).all()
        for number, phone in persons:
            vault.blind_index(vault.decrypt(number, "id_number"), "id_number")
            if phone is not None:
                vault.blind_index(vault.decrypt(phone, "phone"), "phone")
        for entry in records:
            if len(entry.record_key) == 64:
                layout = resources[entry.resource_id]
                values = values_of(vault, layout, entry)
                key = "|".join(str(values.get(n)) for n in layout.key_fields)
                vault.blind_index(key, layout.column)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=20_000)
    stores.add_options(parser)
    args = parser.parse_args()
    for backend, settings in stores.stores(args, log_level="warning"):
        run(backend, settings, args.scale)


if __name__ == "__main__":
    main()
