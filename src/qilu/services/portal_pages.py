"""The portal's 办事 pages (the 爱山东 role), phone first: find an item or a chain in plain
Chinese, answer the questionnaire, fill one form, hand in materials, submit, follow one status,
answer a correction, rate, and see the licences one holds; 免申即享 offers; large-font mode."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, date, datetime
from functools import cache, partial
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from qilu.codes.divisions import SHANDONG, divisions
from qilu.errors import NotFound, QiluError
from qilu.filestore import file_store
from qilu.identity import family
from qilu.identity.access import SignedIn, Viewer, require_signed_in
from qilu.identity.enterprises import acting_identity
from qilu.identity.models import FamilyProxy
from qilu.ratelimit import RateLimits
from qilu.routes import (
    LARGE_FONT,
    DbSession,
    PostedForm,
    ReadSession,
    RowId,
    check_csrf,
    client_address,
    get_settings,
    get_vault,
    redraw_on_refusal,
    render,
    settle_refusal,
)
from qilu.services import (
    applications,
    archive,
    bookings,
    cases,
    catalog,
    documents,
    implementation,
    licences,
    offers,
    progress,
    ratings,
    showing,
    trust,
)
from qilu.services.chains import NotEligible
from qilu.services.models import Application, ServiceChain
from qilu.services.specs import DEPTH_NAMES, LEVEL_NAMES, SUBJECT_NAMES, shipped_catalog
from qilu.workdays import beijing_today, clock

router = APIRouter(include_in_schema=False)
Posted = [Depends(check_csrf)]
STATUS_NAMES = {
    "draft": "草稿",
    "submitted": "已提交",
    "in_progress": "办理中",
    "correcting": "需要补正",
    "done": "已办结",
    "closed": "已关闭",
}


def acting_applicant(request: Request, db: DbSession, viewer: SignedIn) -> applications.Applicant:
    """The viewer, and the enterprise they act for if that still holds at this request."""
    identity = acting_identity(db, viewer, client_address=client_address(request))
    return applications.Applicant(viewer.account.person, identity)


@router.get("/services", response_class=HTMLResponse)
def hall(request: Request, db: ReadSession, q: str = "", who: str = "") -> HTMLResponse:
    """办事大厅: search, browse by life event or enterprise stage; counts come from the data."""
    subject = who if who in ("person", "enterprise") else None
    hits = catalog.search(db, q, subject=subject) if q.strip() else []
    return render(
        request,
        "services/hall.html",
        q=q,
        who=subject or "",
        hits=hits,
        suggestions=[] if hits or not q.strip() else catalog.did_you_mean(db, q, subject=subject),
        overview=catalog.overview(db),
        subjects=SUBJECT_NAMES,
    )


@router.get("/services/suggest", response_class=HTMLResponse)
def suggest(request: Request, db: ReadSession, q: str = "") -> HTMLResponse:
    """Suggestions as one types in a search box (htmx swaps them in under it)."""
    query = q.strip()[:40]
    hits = catalog.search(db, query)[:8] if query else []
    return render(
        request,
        "services/suggest.html",
        hits=hits or (catalog.did_you_mean(db, query) if query else []),
        exact=bool(hits),
        q=query,
    )


@router.get("/services/items/{code}", response_class=HTMLResponse)
def item_guide(
    request: Request,
    db: ReadSession,
    code: str,
    division: Annotated[str, Query(max_length=6)] = "",
) -> HTMLResponse:
    """The guide (办事指南) and, for a place chosen, the item's whole 实施清单 there."""
    item = catalog.current_item(db, code)
    shipped = shipped_catalog()
    place = divisions().get(division) if division else None
    department, problem = None, None
    if place is not None and place.is_current and division.startswith("37"):
        try:
            department = catalog.competent_department(db, item, division)
        except QiluError as error:
            problem = error.message
    elif division:
        problem = "请选择山东省内的市或县（市、区）"
    implementation_code = catalog.implementation_code(item, department) if department else ""
    return render(
        request,
        "services/item.html",
        item=item,
        spec=item.spec,
        materials=[shipped.material(m) for m in item.spec["materials"]],
        levels=LEVEL_NAMES,
        subjects=SUBJECT_NAMES,
        depths=DEPTH_NAMES,
        start_key=_key(),
        places=_places(),
        division=division if department else "",
        place_name=divisions().full_name(division) if department else "",
        place_problem=problem,
        groups=implementation.grouped(
            implementation.elements(
                item, shipped, department=department, implementation_code=implementation_code
            )
        ),
    )


@cache
def _places() -> list[tuple[str, list[tuple[str, str]]]]:
    """Shandong's cities, each with its counties, for choosing where to see an item's list."""
    table = divisions()
    return [
        (
            city.name,
            [(city.code, f"{city.name}（市级）")]
            + [(county.code, county.name) for county in table.current("county", city.code)],
        )
        for city in table.current("city", SHANDONG)
    ]


@router.get("/services/chains/{code}", response_class=HTMLResponse)
def chain_guide(request: Request, db: ReadSession, code: str) -> HTMLResponse:
    # Answers in the address: a visitor sent to sign in first comes back to them (start_chain).
    answers = answers_from(request.query_params)
    return _chain_page(request, db, catalog.current_chain(db, code), error=None, answers=answers)


def _chain_page(
    request: Request,
    db: DbSession,
    chain: ServiceChain,
    *,
    error: QiluError | None,
    answers: dict[str, str],
    status: int = 200,
    for_grant: FamilyProxy | None = None,
) -> HTMLResponse:
    """A chain's guide and questionnaire; under `for_grant`, answered for the family member
    who authorised the viewer (亲友代办)."""
    names = catalog.item_names(db, [e["item"] for e in chain.spec["items"]])
    return render(
        request,
        "services/chain.html",
        status_code=status,
        for_grant=for_grant,
        chain=chain,
        spec=chain.spec,
        names=names,
        error=error,
        answers=answers,
        catalog_fields=shipped_catalog().fields,
        start_key=_key(),
    )


def _key() -> str:
    """A one-off key in each start form: the same form sent twice makes one draft."""
    return secrets.token_urlsafe(16)


@router.post("/services/chains/{code}/start", dependencies=Posted)
def start_chain(
    request: Request, db: DbSession, visitor: Viewer, code: str, form: PostedForm
) -> Response:
    answers = answers_from(form)
    # Not signed in yet: sign in, then back to the guide with the answers given (issue 13).
    back = f"/services/chains/{quote(code)}?" + urlencode({f"q.{k}": v for k, v in answers.items()})
    viewer = require_signed_in(request, visitor, back=back)
    chain = catalog.current_chain(db, code)
    try:
        started = applications.start_as(
            db,
            get_vault(request),
            acting_applicant(request, db, viewer),
            chain_code=code,
            answers=answers,
            submission_key=str(form.get("start_key") or "") or None,
        )
    except NotEligible as exit_page:
        settle_refusal(db, exit_page)
        return render(request, "services/exit.html", chain=chain, explanation=exit_page.explanation)
    except QiluError as error:
        settle_refusal(db, error)
        return _chain_page(request, db, chain, error=error, answers=answers, status=400)
    return RedirectResponse(f"/services/applications/{started.application.id}", status_code=303)


@router.post("/services/items/{code}/start", dependencies=Posted)
def start_item(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    code: str,
    start_key: Annotated[str, Form()] = "",
) -> Response:
    started = applications.start_as(
        db,
        get_vault(request),
        acting_applicant(request, db, viewer),
        item_code=code,
        submission_key=start_key or None,
    )
    return RedirectResponse(f"/services/applications/{started.application.id}", status_code=303)


@router.get("/services/applications/{application_id}", response_class=HTMLResponse)
def application_page(
    request: Request, db: DbSession, viewer: SignedIn, application_id: RowId
) -> HTMLResponse:
    application = applications.owned(db, application_id, acting_applicant(request, db, viewer))
    return _application(request, db, application, error=None)


def _application(
    request: Request,
    db: DbSession,
    application: Application,
    *,
    error: QiluError | None,
    status: int = 200,
    typed_rating: dict[str, Any] | None = None,
) -> HTMLResponse:
    vault = get_vault(request)
    plan = applications.plan_of(db, application)
    today = beijing_today()
    holder = applications.wallet_of(db, vault, application)
    materials = applications.material_statuses(db, application, plan, holder, today)
    case_rows = application.cases
    issued = licences.issued_for(db, case_rows)
    rating = ratings.rating_of(db, application)
    problems = {
        p["field"]: p["reason"] for p in (error.details.get("problems", []) if error else [])
    }
    if error and error.field and error.field not in problems:
        problems[error.field] = error.message
    exempt = sum(1 for m in materials if m.source in ("library", "licence", "chain"))
    corrections = applications.corrections_of(application)
    return render(
        request,
        "services/application.html",
        status_code=status,
        application=application,
        plan=plan,
        materials=materials,
        cases=case_rows,
        issued=issued,
        issued_documents=documents.of_cases(db, [c.id for c in case_rows]),
        rating=rating,
        typed_rating=typed_rating or {"scores": {}, "comment": ""},
        rectifications=ratings.rectifications_of(db, rating) if rating else [],
        rectification_names=ratings.RECTIFICATION_NAMES,
        error=error,
        problems=problems,
        exempt=exempt,
        corrections=corrections,
        today=today,
        clock=clock,
        states=cases.STATE_NAMES,
        statuses=STATUS_NAMES,
        timeline=progress.timeline(db, application),
        due_label=progress.due_label,
        benefit_terms=cases.benefit_terms,
        # 亲友代办: whose application this is, said to whoever made it for them
        made_for=documents.applicant_name(db, application)
        if application.channel == "family"
        else None,
        may_withdraw=progress.may_withdraw(application),
        indicators=ratings.INDICATORS,
        scores=ratings.SCORE_NAMES,
        subject=application.chain or application.item,
    )


def answers_from(form: Any) -> dict[str, str]:
    """The questionnaire's answers in a posted form (fields `q.<question>`)."""
    return {k.removeprefix("q."): str(v) for k, v in form.items() if k.startswith("q.")}


def _form_values(form: Any) -> tuple[dict[str, str], dict[str, str]]:
    values = {k.removeprefix("f."): str(v) for k, v in form.items() if k.startswith("f.")}
    wrong = {k.removeprefix("wrong."): str(v) for k, v in form.items() if k.startswith("wrong.")}
    return values, wrong


@router.post("/services/applications/{application_id}/save", dependencies=Posted)
def save(
    request: Request, db: DbSession, viewer: SignedIn, application_id: RowId, form: PostedForm
) -> Response:
    """Explicit save (the button) and autosave (the page's script, which wants JSON back)."""
    application = applications.owned(
        db, application_id, acting_applicant(request, db, viewer), "apply"
    )
    values, wrong = _form_values(form)
    applications.save_draft(db, application, values, wrong)
    if request.headers.get("x-autosave"):
        return JSONResponse({"saved_at": application.saved_at.isoformat()})
    return RedirectResponse(f"/services/applications/{application_id}?saved=1", status_code=303)


@router.post("/services/applications/{application_id}/materials", dependencies=Posted)
def upload(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    application_id: RowId,
    material: Annotated[str, Form()],
    files: Annotated[list[UploadFile], Form()],
) -> Response:
    application = applications.owned(
        db, application_id, acting_applicant(request, db, viewer), "apply"
    )
    settings = get_settings(request)
    store = file_store(settings.data_dir)
    with redraw_on_refusal(
        db, lambda error: _application(request, db, application, error=error, status=400)
    ):
        for upload_file in files:
            if not upload_file.filename:
                continue
            applications.add_upload(
                db,
                store,
                application,
                material,
                file_name=upload_file.filename,
                content_type=upload_file.content_type or "application/octet-stream",
                # Never more than one byte past the limit is read, whatever the file's size.
                content=upload_file.file.read(settings.max_upload_bytes + 1),
                max_bytes=settings.max_upload_bytes,
            )
    return RedirectResponse(f"/services/applications/{application_id}#materials", status_code=303)


@router.post(
    "/services/applications/{application_id}/materials/{file_id}/remove", dependencies=Posted
)
def remove_upload(
    request: Request, db: DbSession, viewer: SignedIn, application_id: RowId, file_id: RowId
) -> Response:
    """删除 an uploaded file (to replace it, upload the right one after)."""
    application = applications.owned(
        db, application_id, acting_applicant(request, db, viewer), "apply"
    )
    with redraw_on_refusal(
        db, lambda error: _application(request, db, application, error=error, status=400)
    ):
        applications.remove_upload(db, application, file_id)
    return RedirectResponse(f"/services/applications/{application_id}#materials", status_code=303)


@router.post("/services/applications/{application_id}/materials/fetch", dependencies=Posted)
def fetch_material(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    application_id: RowId,
    material: Annotated[str, Form(max_length=100)],
    consent: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    """跨省免提交: fetch a licence issued elsewhere from the national platform, with consent."""
    application = applications.owned(
        db, application_id, acting_applicant(request, db, viewer), "apply"
    )
    settings = get_settings(request)
    with redraw_on_refusal(
        db, lambda error: _application(request, db, application, error=error, status=400)
    ):
        applications.fetch_elsewhere(
            db,
            get_vault(request),
            file_store(settings.data_dir),
            application,
            material,
            url=settings.national_url,
            consent=consent == "yes",
            actor_person_id=viewer.account.person_id,
        )
    return RedirectResponse(f"/services/applications/{application_id}#materials", status_code=303)


@router.post("/services/applications/{application_id}/promise", dependencies=Posted)
def promise(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    application_id: RowId,
    material: Annotated[str, Form(max_length=100)],
) -> Response:
    application = applications.owned(
        db, application_id, acting_applicant(request, db, viewer), "apply"
    )
    applications.promise(db, application, material)
    return RedirectResponse(f"/services/applications/{application_id}#materials", status_code=303)


@router.post("/services/applications/{application_id}/submit", dependencies=Posted)
def submit(
    request: Request, db: DbSession, viewer: SignedIn, application_id: RowId, form: PostedForm
) -> Response:
    application = applications.owned(
        db, application_id, acting_applicant(request, db, viewer), "apply"
    )
    values, wrong = _form_values(form)
    vault = get_vault(request)
    try:
        if application.status == "draft":
            applications.save_draft(db, application, values, wrong)
        applications.submit(
            db,
            vault,
            application,
            actor_person_id=viewer.account.person_id,
            consent_to_licences=form.get("use_licences") == "yes",
        )
    except QiluError as error:
        # Keep what was typed: the draft is saved even when the submission is refused.
        db.rollback()
        application = applications.owned(
            db, application_id, acting_applicant(request, db, viewer), "apply"
        )
        if application.status == "draft":
            applications.save_draft(db, application, values, wrong)
            db.commit()
        return _application(request, db, application, error=error, status=400)
    archive.archive_when_finished(db, application)
    return RedirectResponse(f"/services/applications/{application_id}?submitted=1", status_code=303)


@router.post("/services/applications/{application_id}/resubmit", dependencies=Posted)
def resubmit(
    request: Request, db: DbSession, viewer: SignedIn, application_id: RowId, form: PostedForm
) -> Response:
    """The applicant's answer to a correction (补正): changed facts, then the clock runs again."""
    application = applications.owned(
        db, application_id, acting_applicant(request, db, viewer), "apply"
    )
    values, _ = _form_values(form)
    with redraw_on_refusal(
        db, lambda error: _application(request, db, application, error=error, status=400)
    ):
        applications.answer_correction(
            db, get_vault(request), application, values, actor_person_id=viewer.account.person_id
        )
    return RedirectResponse(
        f"/services/applications/{application_id}?resubmitted=1", status_code=303
    )


@router.post("/services/applications/{application_id}/rate", dependencies=Posted)
def rate(
    request: Request, db: DbSession, viewer: SignedIn, application_id: RowId, form: PostedForm
) -> Response:
    application = applications.owned(
        db, application_id, acting_applicant(request, db, viewer), "apply"
    )
    scores = {k: int(v) for k in ratings.INDICATORS if (v := str(form.get(k, ""))).isdecimal()}
    typed = {"scores": scores, "comment": str(form.get("comment", ""))}
    with redraw_on_refusal(
        db,
        lambda error: _application(
            request, db, application, error=error, status=400, typed_rating=typed
        ),
    ):
        ratings.rate(
            db,
            application,
            person_id=viewer.account.person_id,
            scores=scores,
            comment=str(form.get("comment", "")),
        )
    return RedirectResponse(f"/services/applications/{application_id}?rated=1", status_code=303)


@router.get("/services/items/{code}/booking", response_class=HTMLResponse)
def booking_page(request: Request, db: DbSession, viewer: SignedIn, code: str) -> HTMLResponse:
    """预约: the half days open at the person's window for an item that needs a visit."""
    return _booking(request, db, viewer, code, error=None)


def _booking(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    code: str,
    *,
    error: QiluError | None,
    chosen: str = "",
) -> HTMLResponse:
    person = viewer.account.person
    return render(
        request,
        "services/booking.html",
        status_code=400 if error else 200,
        item=catalog.current_item(db, code),
        slots=bookings.slots(db, person, code),
        error=error,
        chosen=chosen,
    )


@router.post("/services/items/{code}/booking", dependencies=Posted)
def book(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    code: str,
    slot: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    day, _, period = slot.partition("/")
    with redraw_on_refusal(
        db, lambda error: _booking(request, db, viewer, code, error=error, chosen=slot)
    ):
        try:
            when = date.fromisoformat(day)
        except ValueError:
            raise QiluError("booking.slot", "请选择预约的日期和时段", field="slot") from None
        bookings.book(db, viewer.account.person, code, when, period)
    return RedirectResponse("/account/bookings?booked=1", status_code=303)


@router.get("/account/bookings", response_class=HTMLResponse)
def my_bookings(request: Request, db: DbSession, viewer: SignedIn) -> HTMLResponse:
    return render(
        request,
        "services/my_bookings.html",
        rows=bookings.bookings_of(db, viewer.account.person_id),
        periods=bookings.PERIODS,
        today=beijing_today(),
    )


@router.post("/account/bookings/{booking_id}/cancel", dependencies=Posted)
def cancel_booking(db: DbSession, viewer: SignedIn, booking_id: RowId) -> Response:
    bookings.cancel(db, booking_id, viewer.account.person_id)
    return RedirectResponse("/account/bookings?cancelled=1", status_code=303)


@router.get("/account/family", response_class=HTMLResponse)
def family_page(request: Request, db: DbSession, viewer: SignedIn) -> HTMLResponse:
    """亲友代办: whom I have authorised, who has authorised me, and applying for them."""
    return _family(request, db, viewer, error=None, form={})


def _family(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    *,
    error: QiluError | None,
    form: dict[str, str],
) -> HTMLResponse:
    me = viewer.account.person_id
    for_me = family.granted_to(db, me)
    return render(
        request,
        "services/family.html",
        status_code=400 if error else 200,
        given=family.granted_by(db, me),
        for_me=[(g, applications.made_for(db, g.principal_person_id, me)) for g in for_me],
        tiles=catalog.named(db, catalog.CARE_SERVICES),
        chains=catalog.named(db, catalog.FAMILY_CHAINS),
        relations=family.RELATIONS,
        now=datetime.now(UTC),
        error=error,
        form=form,
    )


@router.post("/account/family", dependencies=Posted)
def grant_family(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    name: Annotated[str, Form(max_length=64)] = "",
    id_number: Annotated[str, Form(max_length=40)] = "",
    relation: Annotated[str, Form(max_length=8)] = "",
    days: Annotated[str, Form(max_length=4)] = "",
) -> Response:
    form = {"name": name, "id_number": id_number, "relation": relation, "days": days}
    with redraw_on_refusal(db, lambda error: _family(request, db, viewer, error=error, form=form)):
        family.grant(
            db,
            get_vault(request),
            viewer.account.person,
            name=name,
            id_number=id_number,
            relation=relation,
            days=int(days) if days.isdecimal() else 0,
        )
    return RedirectResponse("/account/family?granted=1", status_code=303)


@router.post("/account/family/{grant_id}/revoke", dependencies=Posted)
def revoke_family(db: DbSession, viewer: SignedIn, grant_id: RowId) -> Response:
    family.revoke(db, grant_id, viewer.account.person_id)
    return RedirectResponse("/account/family?revoked=1", status_code=303)


@router.get("/account/family/{grant_id}/chains/{code}", response_class=HTMLResponse)
def family_chain(
    request: Request, db: DbSession, viewer: SignedIn, grant_id: RowId, code: str
) -> HTMLResponse:
    """A 一件事's questionnaire, answered for the resident who authorised me."""
    authorised = family.usable(db, grant_id, viewer.account.person_id)
    chain = catalog.current_chain(db, code)
    return _chain_page(request, db, chain, error=None, answers={}, for_grant=authorised)


@router.post("/account/family/{grant_id}/start", dependencies=Posted)
def start_for_family(
    request: Request, db: DbSession, viewer: SignedIn, grant_id: RowId, form: PostedForm
) -> Response:
    """Apply for the resident who authorised me, an item or a 一件事: the application is
    theirs, made by me; the authorisation is checked again here, not taken from the page."""
    authorised = family.usable(db, grant_id, viewer.account.person_id)
    chain_code = str(form.get("chain") or "")[:16] or None
    answers = answers_from(form)
    start = partial(
        applications.start,
        db,
        get_vault(request),
        applicant=authorised.principal,
        channel="family",
        clerk_person_id=viewer.account.person_id,
        submission_key=str(form.get("start_key") or "")[:40] or None,
    )
    if chain_code is None:
        started = start(item_code=str(form.get("item") or "")[:16])
    else:
        chain = catalog.current_chain(db, chain_code)
        try:
            started = start(chain_code=chain_code, answers=answers)
        except NotEligible as exit_page:
            settle_refusal(db, exit_page)
            return render(
                request, "services/exit.html", chain=chain, explanation=exit_page.explanation
            )
        except QiluError as error:
            settle_refusal(db, error)
            return _chain_page(
                request, db, chain, error=error, answers=answers, status=400, for_grant=authorised
            )
    return RedirectResponse(f"/services/applications/{started.application.id}", status_code=303)


@router.get("/account/applications", response_class=HTMLResponse)
def my_applications(
    request: Request, db: DbSession, viewer: SignedIn, tab: str = ""
) -> HTMLResponse:
    """我的办件 in tabs (办理中, 待补正, 已办结, 草稿), with counts; 待补正 first when any wait."""
    applicant = acting_applicant(request, db, viewer)
    counts = progress.tab_counts(db, applicant)
    if tab not in progress.TABS:
        tab = "correcting" if counts["correcting"] else "doing"
    return render(
        request,
        "services/my_applications.html",
        rows=progress.in_tab(db, applicant, tab),
        tab=tab,
        tabs=progress.TABS,
        counts=counts,
        offers=offers.offers_of(db, viewer.account.person_id),
        statuses=STATUS_NAMES,
    )


@router.post("/services/applications/{application_id}/withdraw", dependencies=Posted)
def withdraw(request: Request, db: DbSession, viewer: SignedIn, application_id: RowId) -> Response:
    application = applications.owned(
        db, application_id, acting_applicant(request, db, viewer), "apply"
    )
    with redraw_on_refusal(
        db, lambda error: _application(request, db, application, error=error, status=400)
    ):
        progress.withdraw(db, application, actor_person_id=viewer.account.person_id)
    return RedirectResponse(f"/services/applications/{application_id}?withdrawn=1", 303)


@router.post("/services/applications/{application_id}/delete", dependencies=Posted)
def delete_draft(
    request: Request, db: DbSession, viewer: SignedIn, application_id: RowId
) -> Response:
    application = applications.owned(
        db, application_id, acting_applicant(request, db, viewer), "apply"
    )
    with redraw_on_refusal(
        db, lambda error: _application(request, db, application, error=error, status=400)
    ):
        progress.delete_draft(db, application, actor_person_id=viewer.account.person_id)
    return RedirectResponse("/account/applications?tab=draft&deleted=1", status_code=303)


@router.get("/services/progress", response_class=HTMLResponse)
def progress_page(request: Request) -> HTMLResponse:
    """办件查询 without signing in: the application number and the applicant's ID number."""
    return render(request, "services/progress.html", typed={}, problems={}, found=None)


@router.post("/services/progress", response_class=HTMLResponse, dependencies=Posted)
def look_up(request: Request, db: DbSession, form: PostedForm) -> HTMLResponse:
    typed = {k: str(form.get(k, ""))[:40] for k in ("number", "id_number")}
    limits: RateLimits = request.app.state.rate_limits
    try:
        try:
            found = progress.look_up(db, get_vault(request), typed["number"], typed["id_number"])
        except NotFound:
            # Guessing ID numbers for a known application number: one miss a second per address.
            limits.hit(f"progress-miss:{client_address(request)}", 1)
            raise
    except QiluError as error:
        return render(
            request,
            "services/progress.html",
            status_code=error.status_code,
            typed=typed,
            problems={error.field or "number": error.message},
            found=None,
        )
    return render(
        request,
        "services/progress.html",
        typed={"number": typed["number"]},
        problems={},
        found=found,
        timeline=progress.timeline(db, found),
        due_label=progress.due_label,
        states=cases.STATE_NAMES,
        statuses=STATUS_NAMES,
    )


@router.post("/account/offers/{offer_id}/accept", dependencies=Posted)
def accept_offer(request: Request, db: DbSession, viewer: SignedIn, offer_id: RowId) -> Response:
    application = offers.accept(db, get_vault(request), offer_id, viewer.account.person)
    archive.archive_when_finished(db, application)
    return RedirectResponse(f"/services/applications/{application.id}", status_code=303)


@router.post("/account/offers/{offer_id}/decline", dependencies=Posted)
def decline_offer(db: DbSession, viewer: SignedIn, offer_id: RowId) -> Response:
    offers.decline(db, offer_id, viewer.account.person)
    return RedirectResponse("/account/applications", status_code=303)


def _wallet(
    request: Request, db: DbSession, viewer: SignedIn, scope: str
) -> tuple[licences.Wallet, str]:
    """Whose licences the viewer sees (their enterprise's when acting for one, with `scope`)
    and the holder's name: the blind index licences are held (or kept) under."""
    applicant = acting_applicant(request, db, viewer)
    if scope == "view" and not applicant.may("view"):
        scope = "licence"  # an agent who may only use licences may still see them
    applicant.require(scope)
    person, entity = applicant.person, applicant.entity
    if entity:
        return licences.entity_wallet(get_vault(request), entity.uscc), entity.name
    return licences.person_wallet(get_vault(request), person), person.name


@router.get("/account/licences", response_class=HTMLResponse)
def my_licences(request: Request, db: DbSession, viewer: SignedIn) -> HTMLResponse:
    index, holder = _wallet(request, db, viewer, "view")
    return render(
        request,
        "services/my_licences.html",
        held=licences.licences_of(db, index),
        copies=trust.copies_of(db, index),
        grades=trust.GRADE_NAMES,
        holder=holder,
        wallet=index,
        today=beijing_today(),
    )


@router.get("/account/licences/{number}.json")
def licence_document(request: Request, db: DbSession, viewer: SignedIn, number: str) -> Response:
    """The licence as a signed document the holder can hand to anyone who verifies it."""
    index, _ = _wallet(request, db, viewer, "licence")
    licence = showing.owned_licence(db, number, index)
    body = {
        "document": licences.document_of(licence, licence.issuer),
        "signature": licence.signature.hex(),
    }
    return JSONResponse(
        body, headers={"Content-Disposition": f'attachment; filename="{number}.json"'}
    )


@router.get("/account/licences/{number}.pdf")
def licence_pdf(request: Request, db: DbSession, viewer: SignedIn, number: str) -> Response:
    """The licence's face as a PDF to print or send, with the QR that verifies it: handed
    out like the signed file (an enterprise's only with 使用电子证照)."""
    index, _ = _wallet(request, db, viewer, "licence")
    licence = showing.owned_licence(db, number, index)
    settings = get_settings(request)
    fields = [(label, value) for _, label, value in showing.labelled_content(licence)]
    body = licences.pdf_of(licence, fields, settings.cjk_font, settings.issuer, beijing_today())
    return Response(
        body, media_type="application/pdf", headers=documents.pdf_response_headers(number)
    )


@router.get("/account/licences/{number}.ofd")
def licence_ofd(request: Request, db: DbSession, viewer: SignedIn, number: str) -> Response:
    """The licence as an OFD layout document (the national format), sealed with SM2: handed
    out like the signed file and the PDF."""
    index, _ = _wallet(request, db, viewer, "licence")
    licence = showing.owned_licence(db, number, index)
    fields = [(label, value) for _, label, value in showing.labelled_content(licence)]
    body = licences.ofd_of(db, get_vault(request), licence, fields)
    return Response(
        body,
        media_type="application/ofd",
        headers={"Content-Disposition": f'attachment; filename="{number}.ofd"'},
    )


@router.get("/account/licences/{number}", response_class=HTMLResponse)
def licence_page(request: Request, db: DbSession, viewer: SignedIn, number: str) -> HTMLResponse:
    """One licence: its face (照面) to look at or print, 亮证, the signed file, its history
    and every use made of it (用证记录)."""
    index, _ = _wallet(request, db, viewer, "view")
    licence = showing.owned_licence(db, number, index)
    events, uses = licences.history_of(db, licence)
    return render(
        request,
        "services/licence.html",
        licence=licence,
        kept=licence.keeper_code_index in index,
        status=showing.status_of(licence, beijing_today()),
        names=licences.STATUS_NAMES,
        actions=licences.ACTION_NAMES,
        choosable=showing.choosable(licence),
        events=events,
        uses=uses,
    )


@router.get("/account/licences/{number}/face.svg")
def licence_face(request: Request, db: DbSession, viewer: SignedIn, number: str) -> Response:
    """照面: the licence's face as an image, with the QR that verifies it."""
    index, _ = _wallet(request, db, viewer, "view")
    licence = showing.owned_licence(db, number, index)
    templates: Jinja2Templates = request.app.state.templates
    face = templates.get_template("services/licence_face.svg").render(
        licence=licence,
        content=showing.labelled_content(licence),
        qr=licences.qr_svg(licence, get_settings(request).issuer),
    )
    return Response(face, media_type="image/svg+xml", headers={"Cache-Control": "private"})


@router.get("/account/licences/{number}/show", response_class=HTMLResponse)
def show_licence(
    request: Request,
    db: DbSession,
    viewer: SignedIn,
    number: str,
    f: Annotated[list[str] | None, Query(max_length=30)] = None,
    fragment: bool = False,
) -> HTMLResponse:
    """亮证: a one-minute QR showing only the ticked fields; the page fetches a new one before
    the old one expires (`fragment`: just the code, for that refresh)."""
    index, _ = _wallet(request, db, viewer, "licence")
    licence = showing.owned_licence(db, number, index)
    token, shown = showing.show(db, licence, f or [])
    url = f"{get_settings(request).issuer}{showing.SHOWN_PATH}/{token}"
    return render(
        request,
        "services/licence_show_qr.html" if fragment else "services/licence_show.html",
        licence=licence,
        chosen=shown.fields,
        choosable=showing.choosable(licence),
        qr=showing.qr_for(url),
        url=url,
        shown=shown,
        seconds=int(showing.LIFETIME.total_seconds()),
    )


@router.get(showing.SHOWN_PATH + "/{token}", response_class=HTMLResponse)
def shown_licence(request: Request, db: DbSession, token: str) -> HTMLResponse:
    """What a verifier sees after scanning a 亮证 code (no sign-in)."""
    return render(
        request,
        "services/licence_shown.html",
        shown=showing.verify(db, token[:64]),
        names=showing.SHOWN_NAMES,
    )


@router.get("/licences/verify", response_class=HTMLResponse)
def verify_page(
    request: Request, db: ReadSession, number: str = "", seal: str = ""
) -> HTMLResponse:
    """Public (no sign-in): a licence's QR code leads here and says whether it holds."""
    verdict = licences.verify_number(db, number, seal, beijing_today()) if number else None
    return render(request, "services/verify.html", verdict=verdict, names=licences.STATUS_NAMES)


@router.post("/licences/verify", response_class=HTMLResponse)
def verify_upload(request: Request, db: DbSession, file: UploadFile) -> HTMLResponse:
    """Public: an uploaded licence file, the signed JSON or the OFD, checked."""
    data = file.file.read()
    try:
        if data[:2] == b"PK":  # an OFD package is a ZIP
            verdict = licences.verify_ofd(db, data, beijing_today())
        else:
            presented = json.loads(data)
            verdict = licences.verify_document(
                db, presented["document"], str(presented["signature"]), beijing_today()
            )
    except (ValueError, KeyError, TypeError):
        verdict = licences.Verdict("forged", None, "文件不是齐鲁签发的电子证照")
    return render(request, "services/verify.html", verdict=verdict, names=licences.STATUS_NAMES)


@router.post("/settings/large-font")
def large_font(request: Request, on: Annotated[str, Form()] = "1") -> Response:
    """适老化: a larger type size everywhere, kept in a cookie (no sign-in needed)."""
    back = request.headers.get("referer") or "/"
    response = RedirectResponse(back if back.startswith(str(request.base_url)) else "/", 303)
    response.set_cookie(LARGE_FONT, on, max_age=365 * 86400, samesite="lax")
    return response


def install(app: FastAPI) -> None:
    app.include_router(router)
