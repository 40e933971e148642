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

    A blind index carries no key id, so while the index key changes (`earlier_index` keys
    given) a look-up asks for every key's index of the value (`blind_indexes`), and new ones
    are made under the current key until the rotation has rewritten the rest.
    """

    def __init__(
        self,
        sm4_key: bytes,
        index_key: bytes,
        key_id: int = 0,
        earlier: Mapping[int, bytes] | None = None,
        subject_key: bytes | None = None,
        earlier_index: tuple[bytes, ...] = (),
    ):
        if len(sm4_key) != 16 or any(len(k) != 16 for k in (earlier or {}).values()):
            raise ValueError("an SM4 key is 16 bytes")
        if len(index_key) < 32:
            raise ValueError("the index key is at least 32 bytes")
        if not 0 <= key_id <= 255 or key_id in (earlier or {}):
            raise ValueError("the key id is a byte, and not one of an earlier key")
        if subject_key is not None and len(subject_key) < 32:
            raise ValueError("the subject key is at least 32 bytes")
        if any(len(k) < 32 for k in earlier_index) or index_key in earlier_index:
            raise ValueError("an earlier index key is at least 32 bytes, and not the current one")
        if earlier_index and subject_key is None:
            # The subject key defaulted to the index key; changing that would change every
            # pairwise `sub` relying parties keep.
            raise ValueError("a vault whose index key changed needs its subject key")
        self._keys = (sm4_key, index_key, key_id, dict(earlier or {}), subject_key, earlier_index)
        self._ciphers = {
            key_id: algorithms.SM4(sm4_key),
            **{i: algorithms.SM4(k) for i, k in (earlier or {}).items()},
        }
        self._algorithm = self._ciphers[key_id]
        self._index = hmac.HMAC(index_key, hashes.SM3())
        self._earlier_index = tuple(hmac.HMAC(k, hashes.SM3()) for k in earlier_index)
        # What relying parties keep (pairwise `sub`, `sid`) derives from its own key, so the
        # index key can change without severing their accounts; unset, the index key serves.
        self._subject = hmac.HMAC(subject_key or index_key, hashes.SM3())
        self._header = bytes((FORMAT_VERSION, key_id))

    def __reduce__(
        self,
    ) -> tuple[
        type[Vault],
        tuple[bytes, bytes, int, dict[int, bytes], bytes | None, tuple[bytes, ...]],
    ]:
        # Worker processes that generate data rebuild the vault from its keys.
        return (Vault, self._keys)

    @property
    def key_id(self) -> int:
        return self._header[1]

    @property
    def index_rotating(self) -> bool:
        """Whether earlier index keys are held: stored indexes may be under any of them."""
        return bool(self._earlier_index)

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
        return _mac(self._subject, value, column)

    def blind_index(self, value: str, column: str) -> bytes:
        """HMAC-SM3 of column and normalised value: equal values, equal index; nothing else."""
        return _mac(self._index, value, column)

    def blind_indexes(self, value: str, column: str) -> tuple[bytes, ...]:
        """Every index the value may be stored under: the current key's first, then the
        earlier keys' while a rotation runs (what a look-up asks for)."""
        current = _mac(self._index, value, column)
        return (current, *(_mac(mac, value, column) for mac in self._earlier_index))


def _mac(key: hmac.HMAC, value: str, column: str) -> bytes:
    mac = key.copy()
    mac.update(f"{column}\x00{value}".encode())
    return mac.finalize()


def mask_phone(phone: str) -> str:
    """138****1234."""
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:] if len(phone) >= 7 else "*" * len(phone)


def load_vault(settings: Settings) -> Vault:
    """The vault from QILU_PII_KEY / QILU_INDEX_KEY (with QILU_PII_KEY_ID and, during a
    rotation, QILU_PII_EARLIER_KEYS / QILU_INDEX_EARLIER_KEYS), or the embedded store's own key
    file."""
    if settings.pii_key is not None and settings.index_key is not None:
        earlier, subject = settings.pii_earlier_keys, settings.subject_key
        earlier_index = settings.index_earlier_keys
        index_keys = tuple(
            _hex_key(k.strip(), "QILU_INDEX_EARLIER_KEYS", 32)
            for k in (earlier_index.get_secret_value() if earlier_index else "").split(",")
            if k.strip()
        )
        if index_keys and subject is None:
            raise ConfigurationError(
                "keys.subject_missing",
                "更换索引密钥前须把 QILU_SUBJECT_KEY 设为原索引密钥，否则各业务系统保存的"
                "用户标识（sub）都会改变",
                field="QILU_SUBJECT_KEY",
            )
        return Vault(
            _hex_key(settings.pii_key.get_secret_value(), "QILU_PII_KEY", 16),
            _hex_key(settings.index_key.get_secret_value(), "QILU_INDEX_KEY", 32),
            settings.pii_key_id,
            _earlier_keys(earlier.get_secret_value() if earlier else ""),
            _hex_key(subject.get_secret_value(), "QILU_SUBJECT_KEY", 32) if subject else None,
            index_keys,
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
    subject = keys.get("subject_key")
    return Vault(
        bytes.fromhex(keys["pii_key"]),
        bytes.fromhex(keys["index_key"]),
        int(keys.get("key_id", 0)),
        {int(i): bytes.fromhex(k) for i, k in keys.get("earlier", {}).items()},
        bytes.fromhex(subject) if subject else None,
        tuple(bytes.fromhex(k) for k in keys.get("earlier_index", [])),
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
    _write_keys(
        path, {**keys, "pii_key": secrets.token_hex(16), "key_id": new_id, "earlier": earlier}
    )
    return new_id


def new_embedded_index_key(data_dir: Path) -> None:
    """Give the embedded store a new index key; the old one stays for look-ups until
    `qilu keys rotate-pii` has rebuilt every index, and becomes the subject key if none was
    set (the pairwise `sub` relying parties keep derives from it)."""
    path = data_dir / KEY_FILE
    keys = _embedded_keys(path)
    _write_keys(
        path,
        {
            **keys,
            "index_key": secrets.token_hex(32),
            "earlier_index": [keys["index_key"], *keys.get("earlier_index", [])],
            "subject_key": keys.get("subject_key", keys["index_key"]),
        },
    )


def forget_earlier_keys(data_dir: Path) -> None:
    """After a finished rotation: the embedded store keeps only its current keys."""
    path = data_dir / KEY_FILE
    kept = {k: v for k, v in _embedded_keys(path).items() if k not in ("earlier", "earlier_index")}
    _write_keys(path, kept)


def _write_keys(path: Path, keys: dict[str, Any]) -> None:
    """Replace the key file at once, readable by its owner only."""
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
