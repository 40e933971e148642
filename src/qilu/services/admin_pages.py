"""Administration of the service catalog: administrators edit an item's elements; each edit is
a new version with its reason, and applications already made keep the version they used."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from qilu.errors import QiluError
from qilu.identity import roles
from qilu.identity.access import require
from qilu.identity.assurance import HIGH_RISK
from qilu.routes import DbSession, PostedForm, check_csrf, redraw_on_refusal, render
from qilu.services import catalog
from qilu.services.specs import DEPTH_NAMES, LEVEL_NAMES

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
    return render(
        request,
        "services/admin_item.html",
        status_code=status,
        item=item,
        spec={**item.spec, **(typed or {})},
        versions=catalog.item_versions(db, code),
        levels=LEVEL_NAMES,
        depths=DEPTH_NAMES,
        error=error,
    )


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
    typed = _changes(form)
    changes = {k: v for k, v in typed.items() if current.get(k) != v}
    with redraw_on_refusal(
        db,
        lambda error: _item(
            request, db, code, error=error, status=400, typed={**typed, "note": note}
        ),
    ):
        catalog.change_item(db, code, changes, actor=actor, note=note)
    return RedirectResponse(f"/admin/items/{code}?saved=1", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
