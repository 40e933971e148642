"""`qilu keys rotate-pii` (issue 14): personal data moves to a new SM4 key in batches, reads work
before, during and after, and a run cut short resumes where it stopped."""

from __future__ import annotations

import json
import secrets
from datetime import date
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.codes.idcard import make_id_number
from qilu.data.loading import find_record
from qilu.db import make_engine
from qilu.identity.models import Person
from qilu.identity.service import find_person, id_number_of
from qilu.operations import pii_rotation
from qilu.pii import KEY_FILE, load_vault
from qilu.settings import Settings

from ..services.test_cli import archived_store, store_env
from ..test_cli import run

ELDER = make_id_number("370102", date(1941, 2, 3), 17)


def reads_everything(settings: Settings) -> None:
    """The resident, their record in the 人口 library and every person's number decrypt."""
    engine, vault = make_engine(settings), load_vault(settings)
    with Session(engine) as session:
        assert find_person(session, vault, ELDER).name == "赵奶奶"
        record = find_record(session, vault, "JC-RK-001", [ELDER])
        assert record is not None and record["phone"] == "13600001111"
        for person in session.scalars(select(Person)):
            assert len(id_number_of(vault, person)) == 18
    engine.dispose()


def with_keys(settings: Settings, *, pii_key: str, key_id: int, earlier: str | None) -> Settings:
    """The same store seen through other personal-data keys (the index key stays)."""
    return settings.model_copy(
        update={
            "pii_key": SecretStr(pii_key),
            "pii_key_id": key_id,
            "pii_earlier_keys": SecretStr(earlier) if earlier else None,
        }
    )


def test_a_rotation_cut_short_resumes_and_reads_never_stop(empty_store: Settings) -> None:
    archived_store(empty_store)
    old = empty_store.pii_key.get_secret_value()  # type: ignore[union-attr]
    rotated = with_keys(empty_store, pii_key=secrets.token_hex(16), key_id=1, earlier=f"0:{old}")
    engine, vault = make_engine(rotated), load_vault(rotated)
    before = pii_rotation.remaining(engine, vault)
    assert before >= 3  # the people's numbers and phones, the library's sealed fields
    reads_everything(rotated)  # nothing rewritten yet: the earlier key reads
    first = pii_rotation.rotate(engine, vault, max_batches=1)
    assert 0 < sum(first.values()) < before
    assert pii_rotation.remaining(engine, vault) == before - sum(first.values())
    reads_everything(rotated)  # half and half
    rest = pii_rotation.rotate(engine, vault)
    assert sum(first.values()) + sum(rest.values()) == before
    assert pii_rotation.remaining(engine, vault) == 0
    engine.dispose()
    new = rotated.pii_key.get_secret_value()  # type: ignore[union-attr]
    only_new = with_keys(rotated, pii_key=new, key_id=1, earlier=None)
    reads_everything(only_new)  # the earlier key is no longer needed


def test_the_embedded_store_rotates_its_own_key_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", log_level="warning", outbox_interval=0)
    archived_store(settings)
    before = json.loads((settings.data_dir / KEY_FILE).read_text())
    env = {"QILU_DATA_DIR": str(settings.data_dir)}
    done = run("keys", "rotate-pii", "--new-key", "--forget-earlier", env=env)
    assert done.returncode == 0, done.stderr
    assert "仍用旧密钥的还有 0 项" in done.stdout and "旧密钥已删除" in done.stdout
    after = json.loads((settings.data_dir / KEY_FILE).read_text())
    assert after["key_id"] == 1 and after["pii_key"] != before["pii_key"]
    assert "earlier" not in after and after["index_key"] == before["index_key"]
    reads_everything(settings)
    verified = run("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stdout


def test_keys_from_the_environment_are_not_replaced_by_the_command(empty_store: Settings) -> None:
    archived_store(empty_store)
    refused = run("keys", "rotate-pii", "--new-key", env=store_env(empty_store))
    assert refused.returncode == 1 and "QILU_PII_EARLIER_KEYS" in refused.stderr
    nothing = run("keys", "rotate-pii", env=store_env(empty_store))  # nothing is stale
    assert nothing.returncode == 0 and "重新加密 0 项" in nothing.stdout


def test_every_encrypted_column_is_rotated() -> None:
    """A new SM4 column left out of the rotation would keep its old key forever."""
    import qilu.models  # noqa: F401  (every table)
    from qilu.db import Base

    encrypted = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.tables.values()
        for column in table.columns
        if column.name.endswith(("_cipher", "sealed"))
    }
    assert encrypted == {c.label for c in pii_rotation.COLUMNS}
