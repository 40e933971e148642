"""Documents a department issues on a case: 受理回执 when it accepts, 不予受理决定书 and
不予行政许可决定书 when it refuses, 补正材料告知书 when it asks for a correction (一次性告知).

Each is written when the step is taken, in the same transaction, and sealed with the
department's key as its licences are (SM2 over the canonical JSON of what it says), so
the page, the PDF and anyone checking the QR on paper all read one fixed wording. The QR holds
the document's number and seal; `/documents/verify` answers whether the department issued
exactly that.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qilu import pdf, seals
from qilu.audit.service import record
from qilu.errors import NotFound
from qilu.filestore import FileStore
from qilu.identity.models import LegalEntity, Person
from qilu.outbox.service import enqueue
from qilu.pii import Vault
from qilu.services.licences import canonical, department_key
from qilu.services.models import (
    Application,
    ApplicationMaterial,
    Case,
    CaseDocument,
    DepartmentKey,
)
from qilu.workdays import beijing_today

VERIFY_PATH = "/documents/verify"

TITLES = {
    "receipt": "受理回执",
    "not_accepted": "不予受理决定书",
    "refused": "不予行政许可决定书",
    "correction": "补正材料告知书",
}
# The number's suffix per kind: 回执, 不予受理, 不予许可, 补正 (a case may be corrected twice).
SUFFIXES = {"receipt": "HZ", "not_accepted": "BSL", "refused": "BXK", "correction": "BZ"}
# What a step issues (the step's action → the document's kind).
ISSUED_BY = {
    "accept": "receipt",
    "not_accept": "not_accepted",
    "refuse": "refused",
    "correct": "correction",
}
APPEAL = (
    "如不服本决定，可自收到本决定之日起六十日内依法申请行政复议，"
    "或者六个月内依法向人民法院提起行政诉讼。"
)
SOURCES = {"licence": "电子证照", "library": "共享数据", "promise": "承诺后补"}


def applicant_name(session: Session, application: Application) -> str:
    """Who applied, as documents name them: the enterprise for its applications."""
    if application.entity_id is not None:
        return session.get_one(LegalEntity, application.entity_id).name
    return session.get_one(Person, application.applicant_person_id).name


def _received(session: Session, case: Case) -> list[str]:
    """The materials this case's item asks for, as received (for the receipt)."""
    wanted = case.item.spec["materials"]
    rows = session.scalars(
        select(ApplicationMaterial)
        .where(ApplicationMaterial.application_id == case.application_id)
        .order_by(ApplicationMaterial.id)
    )
    return [f"{m.material}（{_source(m)}）" for m in rows if m.material in wanted]


def _source(material: ApplicationMaterial) -> str:
    if material.source == "upload":
        return f"上传 {material.file_name}"
    return SOURCES.get(material.source, material.source)


def _blocks(session: Session, case: Case, kind: str, reason: str) -> list[dict[str, Any]]:
    """What the document says, as paragraphs (`p`) and numbered lists (`ol`)."""
    item = case.item.name
    if kind == "receipt":
        submitted = beijing_today(case.application.submitted_at)
        return [
            {
                "p": f"您于{submitted:%Y年%m月%d日}提交的“{item}”申请，本机关已于"
                f"{case.accepted_on:%Y年%m月%d日}受理。承诺办理时限"
                f"{case.item.spec['promised_days']}个工作日，应于{case.due_on:%Y年%m月%d日}"
                "前办结（补正期间不计入）。"
            },
            {"p": "已收到的材料："},
            {"ol": _received(session, case) or ["无需提交材料"]},
            {"p": "可凭申请编号在“办件查询”中查看进度。"},
        ]
    if kind == "correction":
        asked = case.correction or {}
        due = date.fromisoformat(asked["due_on"])
        blocks: list[dict[str, Any]] = [
            {
                "p": f"您申请的“{item}”，经审查，需补正以下内容。本机关一次性告知如下，请于"
                f"{due:%Y年%m月%d日}前补正；补正期间办理时限暂停，补正后继续计算。"
            },
            {"ol": list(asked.get("labels", []))},
        ]
        if asked.get("reason"):
            blocks.append({"p": f"补正理由：{asked['reason']}"})
        ask = f"如有疑问，请联系{case.department.name}。"
        blocks.append({"p": f"逾期未补正的，视为放弃申请。{ask}"})
        return blocks
    verdict = "不予受理" if kind == "not_accepted" else "不予行政许可"
    return [
        {"p": f"您申请的“{item}”，经审查，本机关决定{verdict}。"},
        {"p": f"理由：{reason or '未说明'}"},
        {"p": APPEAL},
    ]


def issue(session: Session, vault: Vault, case: Case, action: str, reason: str) -> None:
    """The document `action` issues on `case`, if any: written, sealed and audited with the
    step, so a step and its document commit together or not at all."""
    kind = ISSUED_BY.get(action)
    if kind is None:
        return
    department = case.department
    key, private = department_key(session, vault, department)
    earlier = session.scalar(
        select(func.count())
        .select_from(CaseDocument)
        .where(CaseDocument.case_id == case.id, CaseDocument.kind == kind)
    )
    number = f"{case.number}-{SUFFIXES[kind]}{(earlier or 0) + 1}"
    now = datetime.now(UTC)
    content = {
        "title": TITLES[kind],
        "case": case.number,
        "application": case.application.number,
        "addressee": applicant_name(session, case.application),
        "blocks": _blocks(session, case, kind, reason),
        "issuer": department.name,
        "issuer_uscc": department.uscc,
        "issued_on": beijing_today(now).isoformat(),
    }
    document = CaseDocument(
        number=number,
        kind=kind,
        case_id=case.id,
        content=content,
        key_id=key.id,
        signature=private.sign(canonical(_sealed(number, kind, content))),
        issued_at=now,
    )
    session.add(document)
    session.flush()
    enqueue(session, PDF, document.number, {"document": document.id})
    record(
        session,
        "services.document_issued",
        subject=f"case:{case.number}",
        details={"document": number, "kind": kind, "issuer": department.code},
    )


PDF = "services.document_pdf"


def write_pdf(
    session: Session, payload: dict[str, Any], *, font: Path, base_url: str, store: FileStore
) -> None:
    """The outbox's handler: write the document's PDF once, after the step has committed, and
    keep it in the file store (a document never changes, so neither does its PDF)."""
    document = session.get(CaseDocument, int(payload["document"]))
    if document is None or document.pdf_digest is not None:
        return
    document.pdf_digest = store.put(pdf_of(document, font, base_url))


def pdf_bytes(document: CaseDocument, font: Path, base_url: str, store: FileStore) -> bytes:
    """The PDF as written after commit; written now (not kept) if the outbox has not got to
    it yet, so a download never waits on the worker."""
    if document.pdf_digest is not None:
        return store.get(document.pdf_digest)
    return pdf_of(document, font, base_url)


def _sealed(number: str, kind: str, content: dict[str, Any]) -> dict[str, Any]:
    """What the seal covers: the number, the kind and every word of the document."""
    return {"number": number, "kind": kind, "content": content}


def of_cases(session: Session, case_ids: list[int]) -> dict[int, list[CaseDocument]]:
    """The documents issued on these cases, in order, by case."""
    found: dict[int, list[CaseDocument]] = {i: [] for i in case_ids}
    if case_ids:
        for document in session.scalars(
            select(CaseDocument).where(CaseDocument.case_id.in_(case_ids)).order_by(CaseDocument.id)
        ):
            found[document.case_id].append(document)
    return found


def on_application(session: Session, application: Application, number: str) -> CaseDocument:
    """A document issued on one of `application`'s cases (the caller has checked the
    application is the viewer's); any other number is not found."""
    document = session.scalars(
        select(CaseDocument)
        .join(Case, Case.id == CaseDocument.case_id)
        .where(CaseDocument.number == number, Case.application_id == application.id)
    ).one_or_none()
    if document is None:
        raise NotFound("services.no_document", "该办件没有此文书", field="number")
    return document


def on_case(session: Session, case: Case, number: str) -> CaseDocument:
    """A document issued on `case` (the caller has checked the viewer may see the case)."""
    document = session.scalars(
        select(CaseDocument).where(CaseDocument.number == number, CaseDocument.case_id == case.id)
    ).one_or_none()
    if document is None:
        raise NotFound("services.no_document", "该办件没有此文书", field="number")
    return document


@dataclass(frozen=True)
class Verdict:
    valid: bool
    document: CaseDocument | None
    reason: str


def verify(session: Session, number: str, seal: str) -> Verdict:
    """Did the department issue exactly this document? (number and seal from its QR)"""
    found = session.scalars(select(CaseDocument).where(CaseDocument.number == number)).one_or_none()
    # An unknown number and a wrong seal get one answer: the check is no oracle on which
    # application numbers exist.
    if found is None or not secrets.compare_digest(seal, found.signature.hex()):
        return Verdict(False, None, "签发记录中没有与二维码相符的文书")
    key = session.get_one(DepartmentKey, found.key_id)
    sealed = canonical(_sealed(found.number, found.kind, found.content))
    if not seals.verify(key.algorithm, key.public_key, found.signature, sealed):
        return Verdict(False, None, "签名与签发机构的印章密钥不符，记录可能被篡改")
    return Verdict(True, found, "签名有效，该文书由签发机构出具，内容如下")


def verify_url(document: CaseDocument, base_url: str) -> str:
    query = f"number={document.number}&seal={document.signature.hex()}"
    return f"{base_url.rstrip('/')}{VERIFY_PATH}?{query}"


def pdf_of(document: CaseDocument, font: Path, base_url: str) -> bytes:
    """The document as a PDF: the same words, the seal, and the QR that verifies it."""
    return pdf.document(
        font=font,
        content=document.content,
        number=document.number,
        seal_hex=document.signature.hex(),
        verify_url=verify_url(document, base_url),
        created=document.issued_at,
    )


def pdf_response_headers(name: str) -> dict[str, str]:
    """Download headers for a PDF named `name` (ASCII: numbers only)."""
    return {"Content-Disposition": f'inline; filename="{name}.pdf"', "Cache-Control": "private"}
