"""单套制 archiving: a finished application becomes an electronic record package — a BagIt bag
with the metadata (archival metadata among it, `services.archival`), the form, every material,
every decision, every licence as a sealed OFD and an excerpt of the audit log — with sha256
and SM3 manifests, kept only once it passes its 四性检测. Packages are written once and never
changed; `verify` checks both manifests (bagit-python writes SM3 but does not verify it, so the
SM3 check is ours) and the tag manifest against the digest kept in the database, so a rebuilt
bag is caught too."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bagit
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.errors import QiluError
from qilu.filestore import FileStore, file_store
from qilu.identity.models import LegalEntity, Person
from qilu.outbox.service import enqueue
from qilu.pii import Vault
from qilu.services import archival
from qilu.services.applications import safe_file_name
from qilu.services.cases import STATE_NAMES, steps_of
from qilu.services.documents import of_cases
from qilu.services.licences import ofd_of
from qilu.services.models import Application, ApplicationMaterial, Archive, Licence
from qilu.services.showing import labelled_content
from qilu.workdays import beijing_today

FOLDER = "archive"


def _json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2, default=str), "utf-8")


def archive_application(
    session: Session,
    vault: Vault,
    store: FileStore,
    data_dir: Path,
    application: Application,
    *,
    fonds: str,
    scanner: str | None = None,
) -> Archive:
    """Write the package of a finished application (once) with its archival metadata (档号
    in `fonds`), record its digest, and keep it only if it passes its 四性检测."""
    if application.status != "done":
        raise QiluError("archive.not_finished", "申请尚未办结，不能归档", field="application")
    existing = session.scalars(
        select(Archive).where(Archive.application_id == application.id)
    ).one_or_none()
    if existing is not None:
        return existing
    relative = Path(FOLDER) / application.number[2:10] / application.number
    final = data_dir / relative
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():
        # A package written by a try whose transaction then failed (no Archive row names it):
        # kept aside, never overwritten nor trusted, and the package is built again.
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        os.replace(final, final.with_name(f".orphan-{application.number}-{stamp}"))
    archive = Archive(application_id=application.id, path=str(relative), tag_digest="", files=0)
    archive.application = application
    now = datetime.now(UTC)
    metadata = archival.assign(session, archive, fonds=fonds, on=beijing_today(now))
    work = Path(tempfile.mkdtemp(dir=final.parent, prefix=".building-"))
    try:
        count = _contents(session, vault, store, application, work, metadata)
        bagit.make_bag(
            str(work),
            {
                "Source-Organization": "山东省一体化政务服务平台（齐鲁）",
                "External-Identifier": application.number,
                "External-Description": "政务服务办件电子档案（单套制）",
                "Bagging-Date": datetime.now(UTC).date().isoformat(),
            },
            checksums=["sha256", "sm3"],
        )
        digest = archival.tag_digest(work)
        _seal(work)
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    archive.tag_digest, archive.files, archive.created_at = digest, count, now
    session.add(archive)
    session.flush()
    report = archival.check(session, data_dir, archive, scanner=scanner, fonds=fonds)
    if not report.passed:  # not kept: the outbox tries again, the package is set aside then
        failed = [f"{i['检测项']}：{i['说明']}" for i in report.items if i["结果"] == archival.FAIL]
        raise QiluError("archive.check_failed", "四性检测未通过：" + "；".join(failed))
    return archive


def _contents(
    session: Session,
    vault: Vault,
    store: FileStore,
    application: Application,
    root: Path,
    archival_metadata: dict[str, Any],
) -> int:
    person = session.get_one(Person, application.applicant_person_id)
    entity = session.get(LegalEntity, application.entity_id) if application.entity_id else None
    number = vault.decrypt(person.id_number_cipher, "id_number")
    subject = application.chain or application.item
    assert subject is not None
    _json(
        root / "metadata.json",
        {
            "申请编号": application.number,
            "事项或一件事": {"编码": subject.code, "名称": subject.name, "版本": subject.version},
            "申请人": {"姓名": person.name, "公民身份号码": number[:6] + "********" + number[-4:]},
            "申请单位": {"名称": entity.name, "统一社会信用代码": entity.uscc} if entity else None,
            "渠道": "窗口" if application.channel == "window" else "网上",
            "办理地": application.division_code,
            "提交时间": application.submitted_at,
            "办结时间": application.finished_at,
            "档案元数据": archival_metadata,
        },
    )
    _json(
        root / "form.json",
        {
            "answers": application.answers,
            "form": application.form,
            "disputed": application.disputed,
        },
    )
    decisions = []
    for case in application.cases:
        decisions.append(
            {
                "办件编码": case.number,
                "办件编号": case.national_number,
                "实施编码": case.implementation_code,
                "事项": case.item.name,
                "实施机关": case.department.name,
                "状态": STATE_NAMES[case.state],
                "结论": case.decision,
                "理由": case.decision_reason,
                "秒批": case.instant,
                "规则结论": case.findings,
                "步骤": [
                    {
                        "序号": s.seq,
                        "操作": s.action,
                        "由": s.from_state,
                        "至": s.to_state,
                        "经办人": s.actor_person_id,
                        "理由": s.reason,
                        "时间": s.at,
                    }
                    for s in steps_of(session, case.id)
                ],
            }
        )
    _json(root / "decisions.json", decisions)
    licences = session.scalars(
        select(Licence).where(Licence.case_id.in_([c.id for c in application.cases]))
    ).all()
    _json(
        root / "licences.json",
        [
            {
                "编号": lic.number,
                "电子证照标识": lic.identifier,
                "类型": lic.licence_type,
                "签名": lic.signature.hex(),
                "内容": lic.content,
                "OFD": f"{lic.number}.ofd",
            }
            for lic in licences
        ],
    )
    # The licences themselves as the national layout documents, sealed (单套制: the record
    # is the electronic original).
    (root / "licences").mkdir()
    for lic in licences:
        fields = [(label, value) for _, label, value in labelled_content(lic)]
        (root / "licences" / f"{lic.number}.ofd").write_bytes(ofd_of(session, vault, lic, fields))
    subjects = [f"application:{application.number}"] + [
        f"case:{c.number}" for c in application.cases
    ]
    entries = session.scalars(
        select(AuditEvent)
        .where(or_(AuditEvent.subject.in_(subjects)))
        .order_by(AuditEvent.occurred_at, AuditEvent.id)
    ).all()
    _json(
        root / "audit.json",
        [
            {
                "chain": e.chain,
                "seq": e.seq,
                "time": e.occurred_at,
                "action": e.action,
                "actor": e.actor_person_id,
                "subject": e.subject,
                "details": e.details,
                "hash": e.hash.hex(),
            }
            for e in entries
        ],
    )
    materials = session.scalars(
        select(ApplicationMaterial).where(ApplicationMaterial.application_id == application.id)
    ).all()
    folder = root / "materials"
    folder.mkdir()
    listed = []
    for n, material in enumerate(materials, start=1):
        entry: dict[str, Any] = {"材料": material.material, "来源": material.source}
        if material.digest:
            name = f"{n:03d}-{safe_file_name(material.file_name or '')}"
            (folder / name).write_bytes(store.get(material.digest))
            entry["文件"] = name
        listed.append(entry)
    _json(root / "materials.json", listed)
    written = sum(1 for m in materials if m.digest) + len(licences)
    return 7 + written + _documents(session, store, application, root)


def _documents(session: Session, store: FileStore, application: Application, root: Path) -> int:
    """The documents issued on the cases, sealed, with their PDFs as written; returns how many
    PDF files it wrote."""
    issued = [d for ds in of_cases(session, [c.id for c in application.cases]).values() for d in ds]
    folder = root / "documents"
    folder.mkdir()
    written = 0
    for document in issued:
        if document.pdf_digest is not None:
            (folder / f"{document.number}.pdf").write_bytes(store.get(document.pdf_digest))
            written += 1
    _json(
        root / "documents.json",
        [
            {
                "文书编号": d.number,
                "种类": d.content["title"],
                "内容": d.content,
                "签名": d.signature.hex(),
                "PDF": f"{d.number}.pdf" if d.pdf_digest else None,
            }
            for d in issued
        ],
    )
    return written


def _seal(root: Path) -> None:
    """Read-only on disk: the package is never changed after it is written."""
    for path in sorted(root.rglob("*"), reverse=True):
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    root.chmod(root.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def verify(data_dir: Path, archive: Archive) -> list[str]:
    """Problems with a package, in Chinese; none means intact."""
    root = data_dir / archive.path
    if not root.is_dir():
        return [f"{archive.path}：归档包不存在"]
    return archival.verify_fixity(root, archive)


ARCHIVE = "services.archive"


def archive_when_finished(session: Session, application: Application) -> None:
    """If the application has just finished, its package is to be written after this
    transaction commits (the outbox); a failure there never undoes the decision."""
    if application.status == "done":
        enqueue(session, ARCHIVE, str(application.id), {"application": application.id})


def run_archive(
    session: Session,
    payload: dict[str, Any],
    *,
    vault: Vault,
    data_dir: Path,
    fonds: str,
    scanner: str | None = None,
    store: FileStore | None = None,
) -> None:
    """The outbox's handler: write the package (again, if an earlier try did not finish)."""
    application = session.get(Application, int(payload["application"]))
    if application is None or application.status != "done":
        return
    files = store or file_store(data_dir)
    archive_application(session, vault, files, data_dir, application, fonds=fonds, scanner=scanner)


def pending(session: Session, limit: int = 500) -> list[Application]:
    """Finished applications not yet archived."""
    archived = select(Archive.application_id)
    return list(
        session.scalars(
            select(Application)
            .where(Application.status == "done", Application.id.not_in(archived))
            .order_by(Application.id)
            .limit(limit)
        )
    )
