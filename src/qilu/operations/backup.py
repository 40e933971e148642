"""Backup and restore of a whole store: the database, the data folder's files, and a check of
the personal-data keys, in one folder with a manifest of SM3 digests.

The database is dumped first and the files copied after: a file the database names was written
before its row committed, so every file the dump refers to is in the copy (a file written during
the copy is kept too, unreferenced, which is harmless). PostgreSQL goes through `pg_dump
--format=custom` and `pg_restore --single-transaction`; the embedded SQLite store through
SQLite's online backup. The keys that decrypt personal data are not in a production backup: they
live in the secrets store (QILU_PII_KEY, QILU_INDEX_KEY) and are kept apart from the data, as
等保 and 密评 ask; the manifest holds a check that refuses to restore under the wrong keys
(otherwise every name and ID number would be unreadable). The embedded store keeps its keys in
the data folder, so its backup carries them.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from sqlalchemy import Engine, inspect, make_url
from sqlalchemy.orm import Session

from qilu import __version__
from qilu.audit.service import record
from qilu.db import current_revision
from qilu.errors import QiluError
from qilu.pii import KEY_FILE, Vault, load_vault
from qilu.settings import Settings

FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "database.dump"  # pg_dump's custom format
SQLITE = "database.sqlite"
FILES = "files.tar"
# What in the data folder is not copied as a file: the embedded database goes through SQLite's
# backup (a copy of a live file could be torn), and its keys are handled on their own.
_NOT_FILES = ("qilu.db", "qilu.db-wal", "qilu.db-shm", "qilu.db-journal", KEY_FILE)
_KEY_CHECK = "qilu-backup-key-check"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BackupReport:
    path: Path
    revision: str | None
    parts: dict[str, int]  # part name → bytes

    def describe(self) -> str:
        sizes = "，".join(f"{name} {size / 1_048_576:,.1f} MB" for name, size in self.parts.items())
        return f"已备份到 {self.path}（数据库版本 {self.revision}；{sizes}）"


def make_backup(settings: Settings, engine: Engine, destination: Path) -> BackupReport:
    """Write a backup folder at `destination` (which must not exist yet): written beside it
    and renamed into place at the end, so a failed backup leaves no folder that looks whole."""
    if destination.exists():
        raise QiluError("backup.exists", f"{destination} 已存在：请指定新的备份目录", field="path")
    if destination.resolve().is_relative_to(settings.data_dir.resolve()):
        raise QiluError(
            "backup.inside_data_dir",
            f"备份目录不能在数据目录 {settings.data_dir} 之内（否则会备份备份本身）",
            field="path",
        )
    vault = load_vault(settings)
    work = destination.with_name(f".{destination.name}.partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        if settings.is_embedded or engine.dialect.name == "sqlite":
            _copy_sqlite(_sqlite_path(engine), work / SQLITE)
        else:
            _pg_dump(engine, work / DUMP)
        _tar_files(settings.data_dir, work / FILES)
        if _keys_in_folder(settings):
            shutil.copy2(settings.data_dir / KEY_FILE, work / KEY_FILE)
        revision = current_revision(engine)
        parts = {p.name: p.stat().st_size for p in sorted(work.iterdir())}
        manifest = {
            "format": FORMAT,
            "qilu": __version__,
            "revision": revision,
            "backend": engine.dialect.name,
            "made_at": datetime.now(UTC).isoformat(),
            "keys": _key_check(vault),
            "parts": {n: {"bytes": size, "sm3": _digest(work / n)} for n, size in parts.items()},
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), "utf-8")
        os.replace(work, destination)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    with Session(engine) as session, session.begin():
        record(
            session,
            "system.backup_made",
            subject=str(destination.resolve()),
            details={"revision": revision, "bytes": sum(parts.values())},
        )
    return BackupReport(destination, revision, parts)


def restore_backup(settings: Settings, engine: Engine, source: Path) -> dict[str, Any]:
    """Bring a backup back into an empty store and an empty data folder; returns its manifest.

    Checked before anything is written: every part against its SM3 digest, the keys against
    the manifest's check, and that the store and data folder are empty (a restore never
    overwrites a live store; drop or recreate it first)."""
    manifest = read_manifest(source)
    if engine.dialect.name != manifest["backend"]:
        raise QiluError(
            "backup.backend",
            f"备份来自 {manifest['backend']}，不能恢复到 {engine.dialect.name} 数据库",
            field="QILU_DATABASE_URL",
        )
    if inspect(engine).get_table_names():
        raise QiluError(
            "backup.target_not_empty",
            "目标数据库不是空库：请先新建（或清空）数据库再恢复",
            field="QILU_DATABASE_URL",
        )
    data_dir = settings.data_dir
    leftovers = [p.name for p in _files_in(data_dir) if p.name not in _NOT_FILES]
    if leftovers:
        raise QiluError(
            "backup.data_dir_not_empty",
            f"数据目录 {data_dir} 中已有文件（如 {leftovers[0]}）：请指定空目录再恢复",
            field="QILU_DATA_DIR",
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    if (source / KEY_FILE).exists() and settings.pii_key is None:
        shutil.copy2(source / KEY_FILE, data_dir / KEY_FILE)
    if not _keys_match(load_vault(settings), manifest["keys"]):
        raise QiluError(
            "backup.keys_mismatch",
            "当前个人信息密钥与备份时的不一致：请使用备份时的 QILU_PII_KEY 和 QILU_INDEX_KEY",
            field="QILU_PII_KEY",
        )
    with tarfile.open(source / FILES) as archive:
        archive.extractall(data_dir, filter="data")
    if manifest["backend"] == "sqlite":
        target = _sqlite_path(engine)
        engine.dispose()
        _copy_sqlite(source / SQLITE, target)
    else:
        _pg_restore(engine, source / DUMP)
    with Session(engine) as session, session.begin():
        record(
            session,
            "system.restored",
            subject=str(source.resolve()),
            details={"made_at": manifest["made_at"], "revision": manifest["revision"]},
        )
    return manifest


def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest of a backup folder, every part checked against its digest."""
    try:
        manifest: dict[str, Any] = json.loads((source / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise QiluError(
            "backup.unreadable", f"{source} 不是齐鲁备份目录（{error}）", field="path"
        ) from error
    if manifest.get("format") != FORMAT:
        raise QiluError("backup.format", "备份格式版本不受支持", field="path")
    for name, part in manifest["parts"].items():
        path = source / name
        if not path.is_file() or _digest(path) != part["sm3"]:
            raise QiluError(
                "backup.damaged", f"备份文件 {name} 缺失或已被改动（SM3 不符）", field="path"
            )
    return manifest


def _keys_in_folder(settings: Settings) -> bool:
    """True when the keys are the embedded store's own file, not set in the environment."""
    return settings.pii_key is None and (settings.data_dir / KEY_FILE).exists()


def _key_check(vault: Vault) -> dict[str, str]:
    """What proves a later vault holds the same keys, without revealing them."""
    return {
        "index": vault.blind_index(_KEY_CHECK, "backup").hex(),
        "sealed": vault.encrypt(_KEY_CHECK, "backup").hex(),
    }


def _keys_match(vault: Vault, check: dict[str, str]) -> bool:
    if check["index"] not in {i.hex() for i in vault.blind_indexes(_KEY_CHECK, "backup")}:
        return False
    try:
        return vault.decrypt(bytes.fromhex(check["sealed"]), "backup") == _KEY_CHECK
    except QiluError:
        return False


def _digest(path: Path) -> str:
    digest = hashes.Hash(hashes.SM3())
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.finalize().hex()


def _files_in(data_dir: Path) -> Iterator[Path]:
    return data_dir.iterdir() if data_dir.is_dir() else iter(())


def _tar_files(data_dir: Path, target: Path) -> None:
    with tarfile.open(target, "w") as archive:
        for path in sorted(_files_in(data_dir)):
            if path.name not in _NOT_FILES:
                archive.add(path, arcname=path.name)


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database:
        raise QiluError("backup.in_memory", "内存数据库无法备份", field="QILU_DATABASE_URL")
    return Path(database)


def _copy_sqlite(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the store serves."""
    work = target.with_name(f".{target.name}.partial")
    work.unlink(missing_ok=True)
    with sqlite3.connect(source) as origin, sqlite3.connect(work) as copy:
        origin.backup(copy)
    copy.close()
    os.replace(work, target)


def _libpq(engine: Engine) -> tuple[str, dict[str, str]]:
    """The store as a libpq address for the PostgreSQL tools, its password in the environment
    (never on a command line other users can read)."""
    url = make_url(engine.url.render_as_string(hide_password=False))
    environment = dict(os.environ)
    if url.password:
        environment["PGPASSWORD"] = url.password
    address = url.set(drivername="postgresql", password=None, query={})
    return address.render_as_string(hide_password=False), environment


def _pg_dump(engine: Engine, target: Path) -> None:
    address, environment = _libpq(engine)
    _run(
        ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(target)],
        address,
        environment,
    )


def _pg_restore(engine: Engine, dump: Path) -> None:
    address, environment = _libpq(engine)
    engine.dispose()
    _run(
        ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"],
        address,
        environment,
        str(dump),
    )


def _run(command: list[str], address: str, environment: dict[str, str], *tail: str) -> None:
    try:
        subprocess.run(
            [*command, "--dbname", address, *tail],
            env=environment,
            check=True,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError as error:
        raise QiluError(
            "backup.tools_missing",
            f"找不到 {command[0]}：请安装 PostgreSQL 客户端（Debian: postgresql-client）",
            field="PATH",
        ) from error
    except subprocess.CalledProcessError as error:
        reason = error.stderr.strip().splitlines()[-1] if error.stderr.strip() else error
        raise QiluError("backup.tool_failed", f"{command[0]} 失败：{reason}") from error
