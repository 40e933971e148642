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
from pathlib import Path

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
    """Encrypts, decrypts and indexes personal identifiers with one key pair.

    The first byte of every ciphertext is the format version and the second the key id, so keys
    can be rotated later without rewriting the column's layout.
    """

    def __init__(self, sm4_key: bytes, index_key: bytes, key_id: int = 0):
        if len(sm4_key) != 16:
            raise ValueError("the SM4 key is 16 bytes")
        if len(index_key) < 32:
            raise ValueError("the index key is at least 32 bytes")
        self._keys = (sm4_key, index_key, key_id)
        self._algorithm = algorithms.SM4(sm4_key)
        self._index = hmac.HMAC(index_key, hashes.SM3())
        self._header = bytes((FORMAT_VERSION, key_id))

    def __reduce__(self) -> tuple[type[Vault], tuple[bytes, bytes, int]]:
        # Worker processes that generate data rebuild the vault from its keys.
        return (Vault, self._keys)

    def encrypt(self, value: str, column: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        encryptor = Cipher(self._algorithm, modes.GCM(nonce)).encryptor()
        encryptor.authenticate_additional_data(column.encode())
        body = encryptor.update(value.encode()) + encryptor.finalize()
        return self._header + nonce + body + encryptor.tag

    def decrypt(self, blob: bytes, column: str) -> str:
        if blob[:2] != self._header:
            raise QiluError("pii.key_unknown", f"{column} 的密文版本或密钥编号未知，无法解密")
        nonce, body, tag = blob[2:14], blob[14:-_TAG_BYTES], blob[-_TAG_BYTES:]
        decryptor = Cipher(self._algorithm, modes.GCM(nonce, tag)).decryptor()
        decryptor.authenticate_additional_data(column.encode())
        try:
            return (decryptor.update(body) + decryptor.finalize()).decode()
        except InvalidTag as error:
            raise QiluError(
                "pii.tampered", f"{column} 的密文校验失败：数据被篡改或密钥不符"
            ) from error

    def blind_index(self, value: str, column: str) -> bytes:
        """HMAC-SM3 of column and normalised value: equal values, equal index; nothing else."""
        mac = self._index.copy()
        mac.update(f"{column}\x00{value}".encode())
        return mac.finalize()


def mask_phone(phone: str) -> str:
    """138****1234."""
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:] if len(phone) >= 7 else "*" * len(phone)


def load_vault(settings: Settings) -> Vault:
    """The vault from QILU_PII_KEY / QILU_INDEX_KEY, or the embedded store's own key file."""
    if settings.pii_key is not None and settings.index_key is not None:
        return Vault(
            _hex_key(settings.pii_key.get_secret_value(), "QILU_PII_KEY", 16),
            _hex_key(settings.index_key.get_secret_value(), "QILU_INDEX_KEY", 32),
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
    return Vault(bytes.fromhex(keys["pii_key"]), bytes.fromhex(keys["index_key"]))


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


def _embedded_keys(path: Path) -> dict[str, str]:
    """Read the demo store's keys, creating them (owner-only) on first use."""
    if path.exists():
        loaded: dict[str, str] = json.loads(path.read_text())
        return loaded
    keys = {"pii_key": secrets.token_hex(16), "index_key": secrets.token_hex(32)}
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(keys, handle)
    return keys
