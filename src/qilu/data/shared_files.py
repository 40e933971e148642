"""Files as shared resources (共享方式 文件): a resource registered with share mode `file` holds
files its provider's system puts under a name (a monthly report, a 标准地图 package, a scanned
register); putting the same name again makes a new version. A department with a live grant on
the resource lists the newest version of each name and downloads it — in ranges, so a broken
transfer resumes — checking it with its SHA-256. The content lives in the file store under its
SM3 digest; every put and every download is in the audit log.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.data.catalog import get_resource
from qilu.data.evidence import Digested
from qilu.data.models import DataFile, DataResource
from qilu.data.reading import READ, authorise, begin_read
from qilu.errors import NotFound, QiluError, Refused
from qilu.filestore import LocalFileStore
from qilu.identity import roles
from qilu.identity.oidc_provider import ServiceCaller
from qilu.pii import Vault

# A name a file system and a URL both take as it is: no folders, no leading dot.
NAME = re.compile(r"^[^/\\\x00-\x1f.][^/\\\x00-\x1f]{0,99}$")


def _file_resource(session: Session, code: str) -> DataResource:
    resource = get_resource(session, code)
    if resource.share_mode != "file":
        raise QiluError(
            "files.not_file_resource", f"{resource.name}不是以文件方式共享的资源", field="code"
        )
    return resource


def put_file(
    session: Session,
    store: LocalFileStore,
    caller: ServiceCaller,
    code: str,
    name: str,
    content: bytes,
    now: datetime | None = None,
) -> DataFile:
    """Store `content` as the next version of file `name` of resource `code`, by a system of
    the providing department."""
    resource = _file_resource(session, code)
    if not roles.allows(caller.actor, "data.publish", roles.Target.of(resource.provider)):
        raise Refused("files.not_provider", f"只有{resource.provider.name}的系统可以上传文件")
    if not NAME.match(name):
        raise QiluError(
            "files.name", "文件名须为 1 至 100 个字符，不含 / \\ 和控制字符，不以点开头",
            field="name",
        )  # fmt: skip
    if not content:
        raise QiluError("files.empty", "文件为空", field="file")
    moment = now or datetime.now(UTC)
    latest = session.scalar(
        select(func.coalesce(func.max(DataFile.version), 0)).where(
            DataFile.resource_id == resource.id, DataFile.name == name
        )
    )
    stored = DataFile(
        resource_id=resource.id,
        name=name,
        version=int(latest or 0) + 1,
        digest=store.put(content),
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        uploaded_by_client=caller.client_id,
        uploaded_at=moment,
    )
    session.add(stored)
    session.flush()
    record(
        session,
        "data.file_put",
        subject=f"resource:{code}",
        at=moment,
        details={
            "file": name,
            "version": stored.version,
            "sha256": stored.sha256,
            "size": stored.size,
            "client": caller.client_id,
        },
    )
    return stored


def files_for(
    session: Session, vault: Vault, caller: ServiceCaller, code: str, now: datetime | None = None
) -> list[DataFile]:
    """The newest version of each file of the resource, for a department with a live grant."""
    begun = begin_read(session, vault, caller, code, now)
    authorise(begun.read, begun.grants, None, None)
    return _newest(session, _file_resource(session, code))


def _newest(session: Session, resource: DataResource) -> list[DataFile]:
    newest = (
        select(DataFile.name, func.max(DataFile.version).label("version"))
        .where(DataFile.resource_id == resource.id)
        .group_by(DataFile.name)
        .subquery()
    )
    return list(
        session.scalars(
            select(DataFile)
            .join(
                newest,
                (DataFile.name == newest.c.name) & (DataFile.version == newest.c.version),
            )
            .where(DataFile.resource_id == resource.id)
            .order_by(DataFile.name)
        )
    )


@dataclass(frozen=True)
class Download:
    file: DataFile
    path: Path

    @property
    def answer(self) -> Digested:
        """What the download's evidence signs: the file's SM3 (its name in the store)."""
        return Digested(bytes.fromhex(self.file.digest), self.file.size)


def download(
    session: Session,
    vault: Vault,
    store: LocalFileStore,
    caller: ServiceCaller,
    code: str,
    name: str,
    *,
    range_header: str | None = None,
    now: datetime | None = None,
) -> Download:
    """The newest version of file `name`, under the caller's live grant; the download logged."""
    begun = begin_read(session, vault, caller, code, now)
    authorise(begun.read, begun.grants, None, None)
    resource = _file_resource(session, code)
    found = session.scalars(
        select(DataFile)
        .where(DataFile.resource_id == resource.id, DataFile.name == name)
        .order_by(DataFile.version.desc())
        .limit(1)
    ).first()
    if found is None:
        raise NotFound("files.not_found", f"没有文件 {name}", field="name")
    begun.read.log(
        READ,
        None,
        {
            "file": name,
            "version": found.version,
            "sha256": found.sha256,
            "range": range_header or "",
        },
    )
    return Download(found, store.path(found.digest))
