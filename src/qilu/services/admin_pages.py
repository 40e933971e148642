"""Administration of the service catalog: administrators edit an item's elements; each edit is
a new version with its reason, and applications already made keep the version they used."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from qilu.codes.divisions import divisions
from qilu.errors import NotFound, QiluError
from qilu.identity import roles
from qilu.identity.access import require
from qilu.identity.assurance import HIGH_RISK
from qilu.routes import DbSession, PostedForm, check_csrf, redraw_on_refusal, render
from qilu.services import catalog, implementation
from qilu.services.specs import DEPTH_NAMES, GUIDE_ELEMENTS, LEVEL_NAMES, shipped_catalog

router = APIRouter(prefix="/admin/items", include_in_schema=False)
Posted = [Depends(check_csrf)]
# One catalog for the whole province (同源发布): only administrators whose reach is the province.
CatalogAdmin = Annotated[roles.Staff, Depends(require("services.catalog", roles.PROVINCE))]
ChangingCatalog = Annotated[
    roles.Staff, Depends(require("services.catalog", roles.PROVINCE, level=HIGH_RISK))
]


@router.get("", response_class=HTMLResponse)
def items_page(request: Request, db: DbSession, actor: CatalogAdmin, q: str = "") -> HTMLResponse:
    hits = [h for h in catalog.search(db, q) if h.kind == "item"] if q.strip() else []
    return render(request, "services/admin_items.html", q=q, hits=hits)


@router.get("/coverage", response_class=HTMLResponse)
def coverage_page(request: Request, db: DbSession, actor: CatalogAdmin) -> HTMLResponse:
    """The national 高效办成一件事 lists against the province's chains."""
    rows = catalog.national_coverage(db)
    counts = {
        name: sum(1 for r in rows if r.status == key)
        for key, name in catalog.COVERAGE_NAMES.items()
    }
    return render(
        request,
        "services/admin_coverage.html",
        rows=rows,
        counts=counts,
        names=catalog.COVERAGE_NAMES,
    )


@router.get("/export")
def export_list(
    request: Request,
    db: DbSession,
    actor: CatalogAdmin,
    division: Annotated[str, Query(max_length=6)] = "",
) -> Response:
    """The 实施清单 of a city or county (every item implemented there, every element) as
    JSON, for the national catalogue or a department's own system."""
    place = divisions().get(division[:6])
    if place is None or not place.is_current or not division.startswith("37"):
        raise NotFound("division.not_found", "没有这个山东省的行政区划", field="division")
    listed = implementation.listing(db, place.code, shipped_catalog())
    body = json.dumps(
        {"行政区划": place.code, "名称": divisions().full_name(place.code), "实施清单": listed},
        ensure_ascii=False,
        indent=1,
    )
    return Response(
        body,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="shishi-{place.code}.json"'},
    )


@router.get("/{code}", response_class=HTMLResponse)
def item_page(request: Request, db: DbSession, actor: CatalogAdmin, code: str) -> HTMLResponse:
    return _item(request, db, code, error=None)


def _item(
    request: Request,
    db: DbSession,
    code: str,
    *,
    error: QiluError | None,
    status: int = 200,
    typed: dict[str, object] | None = None,
) -> HTMLResponse:
    """The item's form: its stored elements, or after a refusal what was typed."""
    item = catalog.current_item(db, code)
    spec = {**item.spec, **(typed or {})}
    faq = "\n".join(f"{e['q']}｜{e['a']}" for e in item.spec.get("faq") or [])
    return render(
        request,
        "services/admin_item.html",
        status_code=status,
        item=item,
        spec=spec,
        faq_text=spec.get("faq_text", faq),
        guide_elements=GUIDE_ELEMENTS,
        versions=catalog.item_versions(db, code),
        levels=LEVEL_NAMES,
        depths=DEPTH_NAMES,
        error=error,
    )


EMPTY: dict[str, object] = {"guide": {}, "faq": []}  # what an item written before them holds


def _typed(form: PostedForm) -> dict[str, object]:
    """What was typed, to show again after a refusal (the FAQ as its text)."""
    text = {k: str(v).strip() for k, v in form.items()}
    guide = {label: text.get(f"guide.{label}", "") for label in GUIDE_ELEMENTS}
    kept = {k: v for k, v in text.items() if not k.startswith("guide.") and k != "faq"}
    return {**kept, "guide": guide}


def _changes(form: PostedForm) -> dict[str, object]:
    """The edited elements as the catalog holds them (lists one per line, numbers as numbers;
    a number that is not one is left as typed, for the item's check to name)."""
    text = {k: str(v).strip() for k, v in form.items()}
    changes: dict[str, object] = {
        "name": text.get("name", ""),
        "conditions": text.get("conditions", ""),
        "basis": text.get("basis", ""),
        "fee": text.get("fee", ""),
        "materials": [m.strip() for m in text.get("materials", "").splitlines() if m.strip()],
        "keywords": [
            k.strip() for k in text.get("keywords", "").replace("，", ",").split(",") if k.strip()
        ],
        "province_wide": text.get("province_wide") == "yes",
    }
    for name in ("legal_days", "promised_days", "visits", "depth"):
        value = text.get(name, "")
        changes[name] = int(value) if value.isdecimal() else value
    changes["guide"] = {
        label: text[f"guide.{label}"] for label in GUIDE_ELEMENTS if text.get(f"guide.{label}")
    }
    changes["faq"] = catalog.faq_from_text(text.get("faq", ""))
    return changes


@router.post("/{code}", dependencies=Posted)
def save_item(
    request: Request,
    db: DbSession,
    actor: ChangingCatalog,
    code: str,
    form: PostedForm,
    note: Annotated[str, Form()] = "",
) -> Response:
    current = catalog.current_item(db, code).spec
    faq_text = str(form.get("faq") or "")
    with redraw_on_refusal(
        db,
        lambda error: _item(
            request,
            db,
            code,
            error=error,
            status=400,
            typed={**_typed(form), "note": note, "faq_text": faq_text},
        ),
    ):
        typed = _changes(form)
        changes = {k: v for k, v in typed.items() if current.get(k, EMPTY.get(k)) != v}
        catalog.change_item(db, code, changes, actor=actor, note=note)
    return RedirectResponse(f"/admin/items/{code}?saved=1", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
