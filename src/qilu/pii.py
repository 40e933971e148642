"""Personal identifiers at rest (GB/T 39786 level 3): SM4-GCM encryption, HMAC-SM3 blind index.

An ID number or phone number is stored twice: as SM4-GCM ciphertext (random nonce, the column
name as associated data, so a value cannot be moved to another column unnoticed) and as an
HMAC-SM3 blind index under a separate key, which is what equality look-ups and unique constraints
use. Keys come from configuration; the embedded demo generates its own into the data folder.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from qilu.errors import ConfigurationError, QiluError
from qilu.settings import Settings

FORMAT_VERSION = 1
KEY_FILE = "keys.json"
_NONCE_BYTES = 12
_TAG_BYTES = 16


class Vault:
    """Encrypts, decrypts and indexes personal identifiers.

    The first byte of every ciphertext is the format version and the second the key id. New
    ciphertexts use the current key; `earlier` keys (by id) still decrypt what they encrypted,
    so reads work throughout a rotation (`qilu keys rotate-pii` rewrites the rest).
    """

    def __init__(
        self,
        sm4_key: bytes,
        index_key: bytes,
        key_id: int = 0,
        earlier: Mapping[int, bytes] | None = None,
        subject_key: bytes | None = None,
    ):
        if len(sm4_key) != 16 or any(len(k) != 16 for k in (earlier or {}).values()):
            raise ValueError("an SM4 key is 16 bytes")
        if len(index_key) < 32:
            raise ValueError("the index key is at least 32 bytes")
        if not 0 <= key_id <= 255 or key_id in (earlier or {}):
            raise ValueError("the key id is a byte, and not one of an earlier key")
        if subject_key is not None and len(subject_key) < 32:
            raise ValueError("the subject key is at least 32 bytes")
        self._keys = (sm4_key, index_key, key_id, dict(earlier or {}), subject_key)
        self._ciphers = {
            key_id: algorithms.SM4(sm4_key),
            **{i: algorithms.SM4(k) for i, k in (earlier or {}).items()},
        }
        self._algorithm = self._ciphers[key_id]
        self._index = hmac.HMAC(index_key, hashes.SM3())
        # What relying parties keep (pairwise `sub`, `sid`) derives from its own key, so the
        # index key can change without severing their accounts; unset, the index key serves.
        self._subject = hmac.HMAC(subject_key or index_key, hashes.SM3())
        self._header = bytes((FORMAT_VERSION, key_id))

    def __reduce__(
        self,
    ) -> tuple[type[Vault], tuple[bytes, bytes, int, dict[int, bytes], bytes | None]]:
        # Worker processes that generate data rebuild the vault from its keys.
        return (Vault, self._keys)

    @property
    def key_id(self) -> int:
        return self._header[1]

    def encrypt(self, value: str, column: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        encryptor = Cipher(self._algorithm, modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(column.encode())
        body = encryptor.update(value.encode()) + encryptor.finalize()
        return self._header + nonce + body + encryptor.tag

    def decrypt(self, blob: bytes, column: str) -> str:
        cipher = self._ciphers.get(blob[1]) if blob[:1] == self._header[:1] else None
        if cipher is None:
            raise QiluError("pii.key_unknown", f"{column} 的密文版本或密钥编号未知，无法解密")
        nonce, body, tag = blob[2:14], blob[14:-_TAG_BYTES], blob[-_TAG_BYTES:]
        decryptor = Cipher(cipher, modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(column.encode())
        try:
            return (decryptor.update(body) + decryptor.finalize()).decode()
        except InvalidTag as error:
            raise QiluError(
                "pii.tampered", f"{column} 的密文校验失败：数据被篡改或密钥不符"
            ) from error

    def subject(self, value: str, column: str) -> bytes:
        """HMAC-SM3 under the subject key: identifiers handed to other systems to keep."""
        mac = self._subject.copy()
        mac.update(f"{column}\x00{value}".encode())
        return mac.finalize()

    def blind_index(self, value: str, column: str) -> bytes:
        """HMAC-SM3 of column and normalised value: equal values, equal index; nothing else."""
        mac = self._index.copy()
        mac.update(f"{column}\x00{value}".encode())
        return mac.finalize()


def mask_phone(phone: str) -> str:
    """138****1234."""
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:] if len(phone) >= 7 else "*" * len(phone)


def load_vault(settings: Settings) -> Vault:
    """The vault from QILU_PII_KEY / QILU_INDEX_KEY (with QILU_PII_KEY_ID and, during a
    rotation, QILU_PII_EARLIER_KEYS), or the embedded store's own key file."""
    if settings.pii_key is not None and settings.index_key is not None:
        earlier, subject = settings.pii_earlier_keys, settings.subject_key
        return Vault(
            _hex_key(settings.pii_key.get_secret_value(), "QILU_PII_KEY", 16),
            _hex_key(settings.index_key.get_secret_value(), "QILU_INDEX_KEY", 32),
            settings.pii_key_id,
            _earlier_keys(earlier.get_secret_value() if earlier else ""),
            _hex_key(subject.get_secret_value(), "QILU_SUBJECT_KEY", 32) if subject else None,
        )
    if not settings.is_embedded:
        raise ConfigurationError(
            "keys.missing",
            "未配置个人信息密钥：请设置 QILU_PII_KEY（32 位十六进制）和 QILU_INDEX_KEY"
            "（64 位十六进制），可用 `python -c 'import secrets; print(secrets.token_hex(16))'`"
            " 生成",
            field="QILU_PII_KEY",
        )
    keys = _embedded_keys(settings.data_dir / KEY_FILE)
    return Vault(
        bytes.fromhex(keys["pii_key"]),
        bytes.fromhex(keys["index_key"]),
        int(keys.get("key_id", 0)),
        {int(i): bytes.fromhex(k) for i, k in keys.get("earlier", {}).items()},
    )


def new_embedded_key(data_dir: Path) -> int:
    """Give the embedded store a new SM4 key (its id one more); the old one stays, to decrypt
    what it encrypted until `qilu keys rotate-pii` has rewritten it. Returns the new id."""
    path = data_dir / KEY_FILE
    keys = _embedded_keys(path)
    current = int(keys.get("key_id", 0))
    earlier = {**keys.get("earlier", {}), str(current): keys["pii_key"]}
    new_id = max(int(i) for i in earlier) + 1
    if new_id > 255:
        raise QiluError("keys.exhausted", "密钥编号已用尽（0–255）", field="key_id")
    updated = {**keys, "pii_key": secrets.token_hex(16), "key_id": new_id, "earlier": earlier}
    work = path.with_name(f".{path.name}.new")
    descriptor = os.open(work, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(updated, handle)
    os.replace(work, path)
    return new_id


def forget_earlier_keys(data_dir: Path) -> None:
    """After a finished rotation: the embedded store keeps only its current key."""
    path = data_dir / KEY_FILE
    keys = {k: v for k, v in _embedded_keys(path).items() if k != "earlier"}
    work = path.with_name(f".{path.name}.new")
    descriptor = os.open(work, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(keys, handle)
    os.replace(work, path)


def _earlier_keys(text: str) -> dict[int, bytes]:
    """QILU_PII_EARLIER_KEYS: `ID:HEX` pairs separated by commas."""
    keys = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        number, _, key = part.partition(":")
        if not number.isdigit() or not 0 <= int(number) <= 255:
            raise ConfigurationError(
                "keys.invalid",
                "QILU_PII_EARLIER_KEYS 须为“编号:32 位十六进制”，以逗号分隔，编号 0–255",
                field="QILU_PII_EARLIER_KEYS",
            )
        keys[int(number)] = _hex_key(key, "QILU_PII_EARLIER_KEYS", 16)
    return keys


def _hex_key(text: str, name: str, size: int) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != size:
        raise ConfigurationError(
            "keys.invalid", f"{name} 须为 {size * 2} 位十六进制字符", field=name
        )
    return key


def _embedded_keys(path: Path) -> dict[str, Any]:
    """Read the demo store's keys, creating them (owner-only) on first use."""
    if path.exists():
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded
    keys = {"pii_key": secrets.token_hex(16), "index_key": secrets.token_hex(32)}
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(keys, handle)
    return keys
