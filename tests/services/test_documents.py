"""Documents issued on cases (受理回执, 决定书, 补正告知书) and licences as PDFs: written with the
step, sealed with the department's key, the same words on the page, in the PDF (read back with
pypdf, an independent reader) and behind the QR; a forged or altered one fails the check."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import select

from qilu import pdf
from qilu.filestore import LocalFileStore, file_store
from qilu.identity.models import Department, Person
from qilu.outbox.models import OutboxEffect
from qilu.services import archive, cases, documents, licences
from qilu.services.models import Case, CaseDocument
from qilu.settings import Settings

from ..factories import make_person
from .conftest import Province
from .test_corrections import correct, relief
from .test_results import certificate, finished_newborn
from .test_showing import signed_in_as

# PDFs are written in the server's CJK font (Debian's fonts-noto-cjk, which CI installs).
needs_font = pytest.mark.skipif(
    not Settings().cjk_font.is_file(), reason="no CJK font (apt-get install fonts-noto-cjk)"
)


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


def issued(province: Province, case: Case) -> list[CaseDocument]:
    return list(
        province.session.scalars(
            select(CaseDocument).where(CaseDocument.case_id == case.id).order_by(CaseDocument.id)
        )
    )


def read_pdf(body: bytes) -> tuple[str, list[str]]:
    """The PDF's text and the addresses its links open (the QR is one)."""
    reader = PdfReader(io.BytesIO(body))
    text = "".join(page.extract_text() for page in reader.pages)
    links = [
        str(annotation.get_object()["/A"]["/URI"])
        for page in reader.pages
        for annotation in page.get("/Annots", [])
        if "/A" in annotation.get_object()
    ]
    # pypdf reads fpdf2's two-byte glyph codes (an embedded Identity encoding CMap) with a NUL
    # before each character; the ToUnicode map it applies is right, so the NULs are dropped.
    return text.replace("\x00", "").replace(" ", ""), links


def decide(province: Province, case: Case, approver: Person, action: str, reason: str) -> None:
    cases.act(
        province.session,
        province.vault,
        case.id,
        action,
        actor_person_id=approver.id,
        expected_version=case.version,
        reason=reason,
    )


def test_each_step_issues_its_document_sealed_by_the_department(
    province: Province, store: LocalFileStore
) -> None:
    application, case, approver = relief(province, store)
    [receipt] = issued(province, case)
    assert receipt.kind == "receipt" and receipt.number == f"{case.number}-HZ1"
    assert receipt.content["addressee"] == province.resident.name
    assert receipt.content["issuer"] == case.department.name
    words = str(receipt.content["blocks"])
    assert f"{case.due_on:%Y年%m月%d日}" in words and "困难情况说明（上传 说明.png）" in words
    assert documents.verify(province.session, receipt.number, receipt.signature.hex()).valid

    correct(province, case, approver, ["field:amount"])
    cases.resume(province.session, province.vault, case, actor_person_id=province.resident.id)
    correct(province, case, approver, ["material:困难情况说明"])
    cases.resume(province.session, province.vault, case, actor_person_id=province.resident.id)
    decide(province, case, approver, "refuse", "家庭收入超过救助标准")
    kinds = [(d.kind, d.number.removeprefix(case.number)) for d in issued(province, case)]
    assert kinds == [
        ("receipt", "-HZ1"),
        ("correction", "-BZ1"),
        ("correction", "-BZ2"),
        ("refused", "-BXK1"),
    ]
    *_, second, refusal = issued(province, case)
    assert "申请金额" not in str(second.content) and "困难情况说明" in str(second.content)
    assert "家庭收入超过救助标准" in str(refusal.content) and "行政复议" in str(refusal.content)
    assert application.number == refusal.content["application"]


def test_the_check_refuses_an_altered_or_unknown_document(
    province: Province, store: LocalFileStore
) -> None:
    _, case, _ = relief(province, store)
    [receipt] = issued(province, case)
    seal = receipt.signature.hex()
    wrong_seal = documents.verify(province.session, receipt.number, "00" + seal[2:])
    unknown = documents.verify(province.session, receipt.number + "9", seal)
    assert not wrong_seal.valid and wrong_seal == unknown  # one answer: no oracle on numbers
    # Someone with the database rewrites the words: the seal no longer covers them.
    receipt.content = {**receipt.content, "addressee": "别人"}
    province.session.flush()
    verdict = documents.verify(province.session, receipt.number, seal)
    assert not verdict.valid and "篡改" in verdict.reason


@needs_font
def test_the_applicant_reads_downloads_and_anyone_checks_the_paper(
    client: TestClient, province: Province, store: LocalFileStore
) -> None:
    application, case, clerk = relief(province, store, accepted=False)
    decide(province, case, clerk, "not_accept", "不属于本机关职责")
    [refusal] = issued(province, case)
    assert refusal.number == f"{case.number}-BSL1"
    signed_in_as(client, province, province.resident)
    page = client.get(f"/services/applications/{application.id}")
    assert f"/documents/{refusal.number}" in page.text

    shown = client.get(f"/services/applications/{application.id}/documents/{refusal.number}")
    assert shown.status_code == 200 and "不予受理决定书" in shown.text
    assert "不属于本机关职责" in shown.text and f"{refusal.number}.pdf" in shown.text

    got = client.get(f"/services/applications/{application.id}/documents/{refusal.number}.pdf")
    assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
    assert got.content.startswith(b"%PDF-") and len(got.content) < 60_000
    text, links = read_pdf(got.content)
    assert "不予受理决定书" in text and "不属于本机关职责" in text
    assert province.resident.name in text and case.department.name in text
    assert refusal.number in text

    [qr] = links
    client.cookies.clear()  # the verifier is anyone
    address = urlsplit(qr)
    checked = client.get(f"{address.path}?{address.query}")
    assert checked.status_code == 200 and 'data-verdict="valid"' in checked.text
    assert "不属于本机关职责" in checked.text and province.resident.name in checked.text
    forged = client.get(f"{address.path}?number={refusal.number}&seal=00")
    assert 'data-verdict="forged"' in forged.text and "不属于本机关职责" not in forged.text
    assert client.get(documents.VERIFY_PATH).status_code == 200


def test_nobody_else_reaches_the_documents(
    client: TestClient, province: Province, store: LocalFileStore
) -> None:
    application, case, _ = relief(province, store)
    [receipt] = issued(province, case)
    other, _, _ = relief(province, store)
    province.session.commit()
    stranger = make_person(province.session, province.vault, name="路人")
    signed_in_as(client, province, stranger)
    base = f"/services/applications/{application.id}/documents/{receipt.number}"
    assert client.get(base).status_code == 404
    assert client.get(base + ".pdf").status_code == 404
    # The owner of another application cannot fetch this one's document through theirs.
    signed_in_as(client, province, province.resident)
    through = f"/services/applications/{other.id}/documents/{receipt.number}"
    assert client.get(through).status_code == 404
    assert client.get(base).status_code == 200


@needs_font
def test_the_window_prints_the_document_of_its_own_cases_only(
    client: TestClient, province: Province, store: LocalFileStore
) -> None:
    _, case, approver = relief(province, store)
    [receipt] = issued(province, case)
    province.session.commit()
    signed_in_as(client, province, approver)
    page = client.get(f"/workbench/cases/{case.id}")
    link = f"/workbench/cases/{case.id}/documents/{receipt.number}.pdf"
    assert link in page.text
    got = client.get(link)
    assert got.status_code == 200 and "受理回执" in read_pdf(got.content)[0]
    other = province.session.scalars(
        select(Department.code).where(Department.id != case.department_id).limit(1)
    ).one()
    elsewhere = province.official(other, "approver", "别处审批")
    signed_in_as(client, province, elsewhere)
    assert client.get(link).status_code == 404


@needs_font
def test_a_licence_downloads_as_a_pdf_face_that_verifies(
    client: TestClient, province: Province, store: LocalFileStore
) -> None:
    finished_newborn(province, store)
    licence = certificate(province)
    signed_in_as(client, province, province.resident)
    assert (
        f"/account/licences/{licence.number}.pdf"
        in client.get(f"/account/licences/{licence.number}").text
    )
    got = client.get(f"/account/licences/{licence.number}.pdf")
    assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
    text, [qr] = read_pdf(got.content)
    assert "出生医学证明" in text and "王小宝" in text and licence.number in text
    assert "已注销" not in text
    address = urlsplit(qr)
    assert 'data-verdict="valid"' in client.get(f"{address.path}?{address.query}").text

    licences.revoke_licence(province.session, licence, reason="信息有误", actor_person_id=None)
    province.session.commit()
    assert "已注销" in read_pdf(client.get(f"/account/licences/{licence.number}.pdf").content)[0]
    client.cookies.clear()  # the paper printed before still leads to the truth
    assert 'data-verdict="revoked"' in client.get(f"{address.path}?{address.query}").text
    stranger = make_person(province.session, province.vault, name="路人")
    signed_in_as(client, province, stranger)
    assert client.get(f"/account/licences/{licence.number}.pdf").status_code == 404


def test_a_server_without_the_font_says_so_instead_of_failing(
    client: TestClient, province: Province, store: LocalFileStore, tmp_path: Path
) -> None:
    application, case, _ = relief(province, store)
    [receipt] = issued(province, case)
    signed_in_as(client, province, province.resident)
    settings = client.app.state.settings  # type: ignore[attr-defined]
    client.app.state.settings = settings.model_copy(  # type: ignore[attr-defined]
        update={"cjk_font": tmp_path / "none.ttc"}
    )
    got = client.get(f"/services/applications/{application.id}/documents/{receipt.number}.pdf")
    assert got.status_code == 503 and "服务器缺少中文字体" in got.text
    page = client.get(f"/services/applications/{application.id}/documents/{receipt.number}")
    assert page.status_code == 200  # the page itself needs no font on the server


@needs_font
def test_the_pdf_is_written_once_after_commit_and_served_as_written(
    client: TestClient, province: Province, store: LocalFileStore
) -> None:
    application, case, _ = relief(province, store)
    [receipt] = issued(province, case)
    effect = province.session.scalars(
        select(OutboxEffect).where(OutboxEffect.kind == documents.PDF)
    ).one()
    assert effect.payload == {"document": receipt.id} and effect.done_at is None
    assert receipt.pdf_digest is None  # nothing written inside the step's transaction

    settings = client.app.state.settings  # type: ignore[attr-defined]
    kept = file_store(settings.data_dir)
    run = partial(documents.write_pdf, font=settings.cjk_font, base_url=settings.issuer, store=kept)
    run(province.session, dict(effect.payload))
    digest = receipt.pdf_digest
    assert digest is not None and kept.get(digest).startswith(b"%PDF-")
    run(province.session, dict(effect.payload))  # run again (a crash before done): no change
    assert receipt.pdf_digest == digest
    province.session.commit()

    signed_in_as(client, province, province.resident)
    got = client.get(f"/services/applications/{application.id}/documents/{receipt.number}.pdf")
    assert got.content == kept.get(digest)


@needs_font
def test_the_archive_keeps_the_documents_and_their_pdfs(
    province: Province, store: LocalFileStore, tmp_path: Path
) -> None:
    application, case, approver = relief(province, store)
    [receipt] = issued(province, case)
    documents.write_pdf(
        province.session,
        {"document": receipt.id},
        font=Settings().cjk_font,
        base_url="https://zwfw.example.cn",
        store=store,
    )
    for action in ("review", "grant", "finish"):
        decide(province, case, approver, action, "")
    assert application.status == "done"
    package = archive.archive_application(
        province.session, province.vault, store, tmp_path, application, fonds="Q001"
    )
    data = tmp_path / package.path / "data"
    assert (data / "documents" / f"{receipt.number}.pdf").read_bytes().startswith(b"%PDF-")
    listed = json.loads((data / "documents.json").read_text("utf-8"))
    assert [d["文书编号"] for d in listed] == [receipt.number]
    assert listed[0]["签名"] == receipt.signature.hex() and listed[0]["PDF"] is not None
    assert archive.verify(tmp_path, package) == []


@needs_font
def test_closing_punctuation_never_starts_a_line() -> None:
    page = pdf.blank(Settings().cjk_font, "t", "t", datetime.now(UTC))
    text = "本机关已于2026年12月06日受理。" * 6
    for width in range(40, 160, 7):
        lines = pdf.lines_of(page, text, width)
        assert "".join(lines) == text
        assert not any(line[0] in pdf.NO_LINE_START for line in lines[1:])
