"""The operations team's doors: 系统运行 (`/admin/system`) for people, `/metrics` for Prometheus.

`/metrics` answers only to the bearer token in QILU_METRICS_TOKEN (and not at all while none is
set): request rates and queue depths tell an outsider how the platform is used, and behind a
reverse proxy every request would seem to come from the proxy's own address, so the caller's
address proves nothing.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response

from qilu.errors import QiluError, Refused
from qilu.identity import roles
from qilu.identity.access import require
from qilu.operations import metrics
from qilu.operations.system import system_status
from qilu.routes import DbSession, get_settings, render

router = APIRouter(include_in_schema=False)
# The platform as a whole: administrators whose reach is the province.
SystemAdmin = Annotated[roles.Staff, Depends(require("admin.system", roles.PROVINCE))]


class MetricsTokenRequired(QiluError):
    status_code = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="metrics"'}


@router.get("/admin/system", response_class=HTMLResponse)
def system_page(request: Request, db: DbSession, actor: SystemAdmin) -> HTMLResponse:
    settings = get_settings(request)
    status = system_status(db, request.app.state.engine, settings.data_dir)
    return render(request, "operations/system.html", status=status)


@router.get("/metrics")
def metrics_page(request: Request, db: DbSession) -> Response:
    token = get_settings(request).metrics_token
    if token is None:
        raise Refused("metrics.disabled", "未设置 QILU_METRICS_TOKEN，指标接口未开放")
    offered = request.headers.get("authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    if not secrets.compare_digest(offered.encode(), expected.encode()):
        raise MetricsTokenRequired("metrics.token", "需要指标接口的访问令牌", field="Authorization")
    body = metrics.exposition(db)
    return Response(body, media_type=metrics.CONTENT_TYPE)


def install(app: FastAPI) -> None:
    app.include_router(router)
