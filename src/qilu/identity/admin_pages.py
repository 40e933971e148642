"""Administration pages: department systems (OIDC clients) and civil servants' roles.

Viewing needs the permission; every change also needs a level-4 authentication from the last
ten minutes. The rules (who may act where, separation of duties) live in the services.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from qilu.codes.idcard import mask_id_number
from qilu.errors import QiluError
from qilu.identity import oidc_clients, roles
from qilu.identity.access import require
from qilu.identity.assurance import HIGH_RISK
from qilu.identity.service import id_number_of, matching_person
from qilu.routes import (
    DbSession,
    RowId,
    check_csrf,
    get_settings,
    get_vault,
    redraw_on_refusal,
    render,
)

router = APIRouter(prefix="/admin", include_in_schema=False)
Posted = [Depends(check_csrf)]
ClientAdmin = Annotated[roles.Staff, Depends(require("admin.clients"))]
RoleAdmin = Annotated[roles.Staff, Depends(require("admin.roles"))]
# Every change needs a level-4 authentication from the last ten minutes.
ChangingClients = Annotated[roles.Staff, Depends(require("admin.clients", level=HIGH_RISK))]
ChangingRoles = Annotated[roles.Staff, Depends(require("admin.roles", level=HIGH_RISK))]


@router.get("", response_class=HTMLResponse)
def index(
    request: Request, actor: Annotated[roles.Staff, Depends(require("admin.enter"))]
) -> HTMLResponse:
    sections = {
        permission: roles.allows(actor, permission)
        for permission in ("admin.clients", "admin.roles", "services.catalog", "admin.system")
    }
    return render(request, "identity/admin_index.html", sections=sections, grants=actor.grants)


@router.get("/clients", response_class=HTMLResponse)
def clients_page(request: Request, db: DbSession, actor: ClientAdmin) -> HTMLResponse:
    return _clients(request, db, actor, form={}, error=None, created=None)


def _clients(
    request: Request,
    db: DbSession,
    actor: roles.Staff,
    *,
    form: dict[str, object],
    error: QiluError | None,
    created: oidc_clients.NewClient | None,
    status: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "identity/admin_clients.html",
        status,
        clients=oidc_clients.clients_visible_to(db, actor),
        form=form,
        error=error,
        created=created,
    )


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@router.post("/clients", dependencies=Posted)
def register_client(
    request: Request,
    db: DbSession,
    actor: ChangingClients,
    name: Annotated[str, Form(max_length=100)],
    redirect_uris: Annotated[str, Form(max_length=4000)],
    post_logout_redirect_uris: Annotated[str, Form(max_length=4000)] = "",
    kind: Annotated[str, Form(pattern="^(public|confidential|private_key_jwt)$")] = "confidential",
    first_party: Annotated[bool, Form()] = False,
    jwks: Annotated[str, Form(max_length=20_000)] = "",
    allowed_scopes: Annotated[list[str] | None, Form(max_length=3)] = None,
    jwt_access_tokens: Annotated[bool, Form()] = False,
    sm2_id_tokens: Annotated[bool, Form()] = False,
    backchannel_logout_uri: Annotated[str, Form(max_length=500)] = "",
    frontchannel_logout_uri: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    form: dict[str, object] = {
        "name": name,
        "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": post_logout_redirect_uris,
        "kind": kind,
        "first_party": first_party,
        "jwks": jwks,
        "allowed_scopes": allowed_scopes or [],
        "jwt_access_tokens": jwt_access_tokens,
        "sm2_id_tokens": sm2_id_tokens,
        "backchannel_logout_uri": backchannel_logout_uri,
        "frontchannel_logout_uri": frontchannel_logout_uri,
    }
    with redraw_on_refusal(
        db,
        lambda error: _clients(
            request, db, actor, form=form, error=error, created=None, status=400
        ),
    ):
        integration = oidc_clients.Integration(
            jwks=oidc_clients.parse_jwks(jwks) if kind == "private_key_jwt" else None,
            allowed_scopes=tuple(allowed_scopes or ()),
            jwt_access_tokens=jwt_access_tokens,
            sm2_id_tokens=sm2_id_tokens,
            backchannel_logout_uri=backchannel_logout_uri.strip() or None,
            frontchannel_logout_uri=frontchannel_logout_uri.strip() or None,
        )
        created = oidc_clients.register_client(
            db,
            name=name,
            redirect_uris=_lines(redirect_uris),
            public=kind == "public",
            first_party=first_party,
            post_logout_redirect_uris=_lines(post_logout_redirect_uris),
            integration=integration,
            actor=actor,
        )
    return _clients(request, db, actor, form={}, error=None, created=created)


@router.post("/clients/service", dependencies=Posted)
def register_service_client(
    request: Request,
    db: DbSession,
    actor: ChangingClients,
    service_name: Annotated[str, Form(max_length=100)],
    department: Annotated[str, Form(max_length=32)],
    rate_per_second: Annotated[str, Form(max_length=6)] = "",
) -> Response:
    form: dict[str, object] = {
        "service_name": service_name,
        "department": department,
        "rate_per_second": rate_per_second,
    }
    with redraw_on_refusal(
        db,
        lambda error: _clients(
            request, db, actor, form=form, error=error, created=None, status=400
        ),
    ):
        if rate_per_second.strip() and not rate_per_second.strip().isdecimal():
            raise QiluError("client.rate", "每秒请求上限须为整数", field="rate_per_second")
        created = oidc_clients.register_service_client(
            db,
            name=service_name,
            department_code=department.strip(),
            rate_per_second=int(rate_per_second) if rate_per_second.strip() else None,
            actor=actor,
        )
    return _clients(request, db, actor, form={}, error=None, created=created)


@router.post("/clients/{client_id}/disable", dependencies=Posted)
def disable_client(db: DbSession, actor: ChangingClients, client_id: str) -> Response:
    oidc_clients.disable_client(db, client_id, actor=actor)
    return RedirectResponse("/admin/clients", status_code=303)


@router.get("/roles", response_class=HTMLResponse)
def roles_page(
    request: Request, db: DbSession, actor: RoleAdmin, department: str = ""
) -> HTMLResponse:
    return _roles(request, db, actor, department, form={}, error=None)


def _roles(
    request: Request,
    db: DbSession,
    actor: roles.Staff,
    department: str,
    *,
    form: dict[str, object],
    error: QiluError | None,
    status: int = 200,
) -> HTMLResponse:
    vault = get_vault(request)
    grants = list(actor.grants)
    held = roles.held_roles(db, grants, department_code=department or None)
    return render(
        request,
        "identity/admin_roles.html",
        status,
        held=held,
        masked={h.id: mask_id_number(id_number_of(vault, h.person)) for h in held},
        role_names=roles.ROLES,
        department=department,
        scopes=[g for g in grants if g.role in roles.PERMISSIONS["admin.roles"].roles],
        viewer_person_id=actor.person_id,
        form=form,
        error=error,
    )


@router.post("/roles", dependencies=Posted)
def grant(
    request: Request,
    db: DbSession,
    actor: ChangingRoles,
    name: Annotated[str, Form(max_length=64)],
    id_number: Annotated[str, Form(max_length=40)],
    department_code: Annotated[str, Form(max_length=32)],
    role: Annotated[str, Form(max_length=32)],
) -> Response:
    form: dict[str, object] = {
        "name": name,
        "id_number": id_number,
        "department_code": department_code,
        "role": role,
    }
    with redraw_on_refusal(
        db, lambda error: _roles(request, db, actor, "", form=form, error=error, status=400)
    ):
        person = matching_person(db, get_vault(request), name, id_number)
        if person is None:
            raise QiluError(
                "role.identity_mismatch",
                "姓名与身份号码不匹配，或人口库中没有此人",
                field="id_number",
            )
        roles.grant_role(
            db,
            person_id=person.id,
            department_code=department_code.strip(),
            role=role,
            profile=get_settings(request).security_profile,
            actor=actor,
        )
    return RedirectResponse(f"/admin/roles?department={department_code.strip()}", 303)


@router.post("/roles/{role_id}/revoke", dependencies=Posted)
def revoke(db: DbSession, actor: ChangingRoles, role_id: RowId) -> Response:
    roles.revoke_role(db, role_id, actor=actor)
    return RedirectResponse("/admin/roles", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
