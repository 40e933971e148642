from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from qilu.errors import ConfigurationError, QiluError
from qilu.pii import Vault, load_vault, mask_phone
from qilu.settings import Settings


@pytest.fixture
def vault() -> Vault:
    return Vault(os.urandom(16), os.urandom(32))


def test_round_trip_and_randomised(vault: Vault) -> None:
    first = vault.encrypt("370102199003073516", "id_number")
    second = vault.encrypt("370102199003073516", "id_number")
    assert first != second  # a fresh nonce each time: equal values do not show
    assert b"370102" not in first
    assert vault.decrypt(first, "id_number") == "370102199003073516"


def test_ciphertext_is_bound_to_its_column(vault: Vault) -> None:
    blob = vault.encrypt("13800138000", "phone")
    with pytest.raises(QiluError) as caught:
        vault.decrypt(blob, "id_number")
    assert caught.value.code == "pii.tampered"


def test_tampering_is_detected(vault: Vault) -> None:
    blob = bytearray(vault.encrypt("370102199003073516", "id_number"))
    blob[20] ^= 1
    with pytest.raises(QiluError) as caught:
        vault.decrypt(bytes(blob), "id_number")
    assert caught.value.code == "pii.tampered"


def test_another_key_cannot_read(vault: Vault) -> None:
    other = Vault(os.urandom(16), os.urandom(32))
    with pytest.raises(QiluError):
        other.decrypt(vault.encrypt("x", "phone"), "phone")


def test_blind_index_is_deterministic_per_key_and_column(vault: Vault) -> None:
    value = "370102199003073516"
    assert vault.blind_index(value, "id_number") == vault.blind_index(value, "id_number")
    assert vault.blind_index(value, "id_number") != vault.blind_index(value, "phone")
    assert len(vault.blind_index(value, "id_number")) == 32
    other = Vault(os.urandom(16), os.urandom(32))
    assert other.blind_index(value, "id_number") != vault.blind_index(value, "id_number")


def test_vault_travels_to_worker_processes(vault: Vault) -> None:
    copy = pickle.loads(pickle.dumps(vault))
    assert copy.decrypt(vault.encrypt("abc", "phone"), "phone") == "abc"


def test_embedded_store_generates_private_keys_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    first = load_vault(settings)
    key_file = tmp_path / "keys.json"
    assert key_file.stat().st_mode & 0o077 == 0
    assert set(json.loads(key_file.read_text())) == {"pii_key", "index_key"}
    second = load_vault(settings)
    assert second.decrypt(first.encrypt("v", "phone"), "phone") == "v"


def test_production_store_requires_configured_keys(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql://db.example/qilu")
    with pytest.raises(ConfigurationError) as caught:
        load_vault(settings)
    assert caught.value.code == "keys.missing"
    assert not (tmp_path / "keys.json").exists()


def test_malformed_key_is_named(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, pii_key="abc", index_key="00" * 32)
    with pytest.raises(ConfigurationError) as caught:
        load_vault(settings)
    assert caught.value.field == "QILU_PII_KEY"


def test_mask_phone() -> None:
    assert mask_phone("13800138000") == "138****8000"


def test_the_subject_key_lets_the_index_key_change_without_new_subs() -> None:
    """What relying parties keep (pairwise sub, sid) comes from the subject key; unset, it is
    the index key, so existing subs stay as they were."""
    from qilu.identity.oidc_provider import pairwise_sub, session_id

    sm4, old_index, new_index = os.urandom(16), os.urandom(32), os.urandom(32)
    before = Vault(sm4, old_index)
    assert before.subject("x", "oidc_sub") == before.blind_index("x", "oidc_sub")
    moved = Vault(sm4, new_index, subject_key=old_index)
    assert pairwise_sub(moved, "社保", 7) == pairwise_sub(before, "社保", 7)
    assert session_id(moved, 3) == session_id(before, 3)
    assert moved.blind_index("x", "id_number") != before.blind_index("x", "id_number")
    assert pickle.loads(pickle.dumps(moved)).subject("y", "oidc_sub") == moved.subject(
        "y", "oidc_sub"
    )
    settings = Settings(
        data_dir=Path("unused"),
        database_url="postgresql://qilu@127.0.0.1/qilu",
        pii_key=sm4.hex(),
        index_key=new_index.hex(),
        subject_key=old_index.hex(),
    )
    assert pairwise_sub(load_vault(settings), "社保", 7) == pairwise_sub(before, "社保", 7)


def test_during_an_index_key_rotation_a_look_up_asks_for_every_keys_index() -> None:
    sm4, old_index, new_index = os.urandom(16), os.urandom(32), os.urandom(32)
    before = Vault(sm4, old_index)
    rotating = Vault(sm4, new_index, subject_key=old_index, earlier_index=(old_index,))
    assert not before.index_rotating and rotating.index_rotating
    value = "370102199003073516"
    assert before.blind_indexes(value, "id_number") == (before.blind_index(value, "id_number"),)
    assert rotating.blind_indexes(value, "id_number") == (
        rotating.blind_index(value, "id_number"),  # the current key's first: what is written
        before.blind_index(value, "id_number"),
    )
    # The audit subject of a person (their data-use record) is the same before and after.
    assert rotating.subject(value, "id_number") == before.blind_index(value, "id_number")
    copy = pickle.loads(pickle.dumps(rotating))
    assert copy.blind_indexes(value, "id_number") == rotating.blind_indexes(value, "id_number")
    with pytest.raises(ValueError):  # without the subject key, every sub would change
        Vault(sm4, new_index, earlier_index=(old_index,))


def test_earlier_index_keys_from_the_environment_need_the_subject_key() -> None:
    old_index, new_index = os.urandom(32), os.urandom(32)
    keys = {
        "data_dir": Path("unused"),
        "database_url": "postgresql://qilu@127.0.0.1/qilu",
        "pii_key": os.urandom(16).hex(),
        "index_key": new_index.hex(),
        "index_earlier_keys": old_index.hex(),
    }
    with pytest.raises(ConfigurationError) as caught:
        load_vault(Settings(**keys))
    assert caught.value.code == "keys.subject_missing"
    assert caught.value.field == "QILU_SUBJECT_KEY"
    vault = load_vault(Settings(**keys, subject_key=old_index.hex()))
    assert vault.blind_indexes("x", "phone")[1] == Vault(os.urandom(16), old_index).blind_index(
        "x", "phone"
    )
    with pytest.raises(ConfigurationError) as malformed:
        load_vault(Settings(**{**keys, "index_earlier_keys": "abc"}, subject_key=old_index.hex()))
    assert malformed.value.field == "QILU_INDEX_EARLIER_KEYS"
