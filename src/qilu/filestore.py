"""Where uploaded files and archive packages live: a content-addressed folder (each file named by
its SM3 digest), behind a protocol so a deployment can put them in object storage instead."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from qilu.digests import sm3
from qilu.errors import NotFound


class FileStore(Protocol):
    def put(self, content: bytes) -> str: ...

    def get(self, digest: str) -> bytes: ...


class LocalFileStore:
    """Files under `root/ab/abcdef…`; writing the same content twice stores it once."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise NotFound("file.not_found", "文件不存在", field="digest")
        return self.root / digest[:2] / digest

    def put(self, content: bytes) -> str:
        digest = sm3(content).hex()
        path = self._path(digest)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Written aside and renamed, so a reader never sees half a file.
            handle, temporary = tempfile.mkstemp(dir=path.parent)
            with os.fdopen(handle, "wb") as out:
                out.write(content)
            os.replace(temporary, path)
        return digest

    def path(self, digest: str) -> Path:
        """Where a stored file is, for serving it in ranges (a local store's own)."""
        path = self._path(digest)
        if not path.exists():
            raise NotFound("file.not_found", "文件不存在", field="digest")
        return path

    def get(self, digest: str) -> bytes:
        path = self._path(digest)
        if not path.exists():
            raise NotFound("file.not_found", "文件不存在", field="digest")
        return path.read_bytes()


def file_store(data_dir: Path) -> LocalFileStore:
    return LocalFileStore(data_dir / "files")
