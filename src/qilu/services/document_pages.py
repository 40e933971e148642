"""Documents issued on cases, as people meet them: the applicant reads and downloads them
(page and PDF), a window clerk prints them, and anyone holding the paper checks its QR."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from qilu.filestore import file_store
from qilu.identity.access import SignedIn
from qilu.routes import DbSession, ReadSession, RowId, get_settings, render
from qilu.services import applications, documents
from qilu.services.models import Application, CaseDocument
from qilu.services.portal_pages import acting_applicant

router = APIRouter(include_in_schema=False)
BASE = "/services/applications/{application_id}/documents"


def _owned(
    request: Request, db: DbSession, viewer: SignedIn, application_id: int, number: str
) -> tuple[Application, CaseDocument]:
    application = applications.owned(db, application_id, acting_applicant(request, db, viewer))
    return application, documents.on_application(db, application, number)


def pdf_response(request: Request, document: CaseDocument) -> Response:
    settings = get_settings(request)
    store = file_store(settings.data_dir)
    body = documents.pdf_bytes(document, settings.cjk_font, settings.issuer, store)
    headers = documents.pdf_response_headers(document.number)
    return Response(body, media_type="application/pdf", headers=headers)


@router.get(BASE + "/{number}.pdf")
def document_pdf(
    request: Request, db: DbSession, viewer: SignedIn, application_id: RowId, number: str
) -> Response:
    """The document as a PDF with the department's seal and the QR that verifies it."""
    _, document = _owned(request, db, viewer, application_id, number)
    return pdf_response(request, document)


@router.get(BASE + "/{number}", response_class=HTMLResponse)
def document_page(
    request: Request, db: DbSession, viewer: SignedIn, application_id: RowId, number: str
) -> HTMLResponse:
    """受理回执, 决定书 or 补正告知书 on the page, printable, with its PDF."""
    application, document = _owned(request, db, viewer, application_id, number)
    return render(request, "services/document.html", application=application, document=document)


@router.get(documents.VERIFY_PATH, response_class=HTMLResponse)
def verify_page(
    request: Request, db: ReadSession, number: str = "", seal: str = ""
) -> HTMLResponse:
    """Public (no sign-in): a document's QR leads here and says whether the department issued
    exactly that."""
    verdict = documents.verify(db, number[:60], seal[:200]) if number else None
    return render(request, "services/document_verify.html", verdict=verdict)


def install(app: FastAPI) -> None:
    app.include_router(router)
