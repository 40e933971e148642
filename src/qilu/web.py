"""The ASGI application: pages, the JSON API with its OpenAPI document, health and errors."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import anyio
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qilu import __version__, home
from qilu.codes import api as codes_api
from qilu.codes import pages as codes_pages
from qilu.data import api as data_api
from qilu.data import (
    apis_api,
    bulk_api,
    catalog_api,
    dispute_pages,
    exchange_pages,
    open_pages,
    resident_pages,
    sharing_pages,
)
from qilu.data import pages as data_pages
from qilu.db import check_database, current_revision, make_engine, make_readers, make_sessionmaker
from qilu.errors import InvalidRequest, QiluError, validation_problems
from qilu.identity import (
    admin_pages,
    cross_device_pages,
    enterprise_pages,
    federation_pages,
    oidc,
)
from qilu.identity import api as identity_api
from qilu.identity import pages as identity_pages
from qilu.identity.access import PasswordExpired, SignInRequired
from qilu.identity.assurance import StepUpRequired
from qilu.limits import BodyLimit, BodyTooLarge
from qilu.logs import configure_logging
from qilu.messages import pages as message_pages
from qilu.monitor import pages as monitor_pages
from qilu.operations import metrics
from qilu.operations import pages as operations_pages
from qilu.pii import load_vault
from qilu.routes import (
    CSRF_COOKIE,
    LARGE_FONT,
    Redrawn,
    beijing,
    measured,
    new_csrf_token,
    render,
)
from qilu.services import admin_pages as services_admin_pages
from qilu.services import document_pages, portal_pages, workbench_pages
from qilu.settings import Settings
from qilu.workers import sweep_forever

log = structlog.get_logger("qilu.web")

# Nothing loads from outside: scripts, styles, fonts and images come from this server only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

HSTS = "max-age=31536000"
# Pages about one person (their account, their applications, staff work): never cached.
PRIVATE_PATHS = ("/account", "/admin", "/workbench", "/services/applications", "/oidc")

STATUS_TITLES = {
    400: "请求有误",
    403: "没有权限",
    404: "页面不存在",
    405: "不支持的请求方法",
    413: "提交的内容过大",
    422: "提交的内容有误",
    500: "服务器内部错误",
    503: "服务暂不可用",
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; every domain wires itself in through its `install(app)`."""
    settings = settings or Settings()
    configure_logging(settings)
    if not settings.cookie_secure:
        # Plain-HTTP deployments (the demo, tests): let Authlib serve OAuth over http.
        os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")
    app = FastAPI(
        lifespan=_lifespan,
        title="Qilu 齐鲁 API",
        version=__version__,
        description="数字山东一体化平台的 HTTP 接口。错误统一返回 `{code, message, field}`。",
        openapi_url="/api/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    engine = make_engine(settings)
    app.state.settings = settings
    app.state.vault = load_vault(settings)
    app.state.engine = engine
    app.state.sessions = make_sessionmaker(engine)
    app.state.readers = make_readers(engine)
    templates = Jinja2Templates(directory=_template_folders())
    templates.env.globals["version"] = __version__
    templates.env.globals["large_font_cookie"] = LARGE_FONT
    templates.env.filters["beijing"] = beijing
    templates.env.filters["measured"] = measured
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=str(_package_path("static"))), name="static")
    _install_errors(app)
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(RequestShell, cookie_secure=settings.cookie_secure)
    # Pages, styles and scripts go compressed to browsers that ask (htmx: 52 KB → 16 KB).
    app.add_middleware(GZipMiddleware, minimum_size=500)
    _install_shell_routes(app)
    for install in INSTALLS:
        install(app)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Beside the requests, the outbox sweeper (unless workers of their own do it)."""
    settings: Settings = app.state.settings
    async with anyio.create_task_group() as tasks:
        if settings.outbox_interval > 0:
            tasks.start_soon(sweep_forever, app.state.sessions, settings, app.state.vault)
        yield
        tasks.cancel_scope.cancel()


# Each domain wires its routes in. Requests are matched against the routers in this order, so
# the ones department systems call all the time (OIDC, the identity API) come first.
INSTALLS = (
    oidc.install,
    identity_api.install,
    data_api.install,
    apis_api.install,
    bulk_api.install,
    catalog_api.install,
    codes_api.install,
    codes_pages.install,
    identity_pages.install,
    cross_device_pages.install,
    federation_pages.install,
    message_pages.install,
    enterprise_pages.install,
    admin_pages.install,
    services_admin_pages.install,
    operations_pages.install,
    data_pages.install,
    sharing_pages.install,
    dispute_pages.install,
    exchange_pages.install,
    open_pages.install,
    resident_pages.install,
    portal_pages.install,
    document_pages.install,
    workbench_pages.install,
    monitor_pages.install,
    home.install,
)
DOMAINS = ("codes", "identity", "messages", "data", "services", "operations", "monitor", "demo")


def _package_path(name: str) -> Path:
    return Path(str(files("qilu").joinpath(name)))


def _template_folders() -> list[Path]:
    """The shell's templates, then each domain's own (named `<domain>/…` inside it)."""
    domain_folders = [_package_path(f"{domain}/templates") for domain in DOMAINS]
    return [_package_path("templates"), *(f for f in domain_folders if f.is_dir())]


# Where machines call: errors are JSON there, never a page (the browser ends of OIDC,
# authorize and logout, stay pages).
_MACHINE_PATHS = (
    "/api/",
    "/oidc/token",
    "/oidc/revoke",
    "/oidc/introspect",
    "/oidc/par",
    "/oidc/userinfo",
    "/oidc/jwks",
    "/metrics",
)


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(_MACHINE_PATHS) or path in (
        "/healthz",
        "/.well-known/openid-configuration",
    )


def _error_response(
    request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    if _wants_json(request):
        return JSONResponse({"error": body}, status_code=status, headers=headers)
    title = STATUS_TITLES.get(status, "出错了")
    response = render(
        request, "error.html", status_code=status, status=status, title=title, error=body
    )
    response.headers.update(headers or {})
    return response


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(QiluError)
    async def domain_error(request: Request, error: QiluError) -> Response:
        if isinstance(error, SignInRequired) and not _wants_json(request):
            target = quote(str(error.details.get("next", "/")), safe="/")
            return RedirectResponse(f"/account/sign-in?next={target}", status_code=303)
        if isinstance(error, PasswordExpired) and not _wants_json(request):
            return RedirectResponse("/account?password_expired=1", status_code=303)
        if isinstance(error, StepUpRequired) and not _wants_json(request):
            query = urlencode({"level": error.level, "next": _return_path(request)})
            return RedirectResponse(f"/account/confirm?{query}", status_code=303)
        return _error_response(request, error.status_code, error.as_dict(), error.headers())

    @app.exception_handler(Redrawn)
    async def redrawn(request: Request, error: Redrawn) -> Response:
        return error.response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        code = f"http.{error.status_code}"
        message = str(error.detail) if isinstance(error, BodyTooLarge) else None
        message = message or STATUS_TITLES.get(error.status_code, str(error.detail))
        body = {"code": "request.too_large" if isinstance(error, BodyTooLarge) else code}
        # 405 keeps its Allow header (RFC 9110 §15.5.6).
        headers = dict(error.headers or {})
        return _error_response(request, error.status_code, body | {"message": message}, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        refusal = InvalidRequest(validation_problems(list(error.errors()), skip_location=1))
        # A page says it in Chinese with a plain 400; an API keeps the documented 422.
        status = refusal.status_code if _wants_json(request) else 400
        return _error_response(request, status, refusal.as_dict())

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> Response:
        request_id = getattr(request.state, "request_id", "-")
        log.exception("request.failed", path=request.url.path, request_id=request_id)
        body = {
            "code": "server.error",
            "message": f"服务器内部错误，请稍后重试（请求编号 {request_id}）",
        }
        # This handler runs outside the request middleware, so it labels its own response.
        return _labelled(_error_response(request, 500, body), request_id)


def _return_path(request: Request) -> str:
    """Where to come back after confirming: this page, or for a form post the page it was on."""
    if request.method == "GET":
        query = request.url.query
        return request.url.path + (f"?{query}" if query else "")
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and referer.path.startswith("/"):
        return referer.path + (f"?{referer.query}" if referer.query else "")
    return "/account"


def _labelled(response: Response, request_id: str) -> Response:
    response.headers["X-Request-ID"] = request_id
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class RequestShell:
    """What every HTTP request passes through, as plain ASGI (no extra task or stream per
    request): a request id, the CSRF cookie for forms, the security headers, one log line."""

    def __init__(self, app: ASGIApp, cookie_secure: bool):
        self.app = app
        self.cookie_secure = cookie_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = headers.get("x-request-id") or uuid.uuid4().hex[:16]
        csrf = cookie_parser(headers.get("cookie", "")).get(CSRF_COOKIE)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["csrf_token"] = csrf or new_csrf_token()
        started = time.perf_counter()
        status = 500

        async def labelled(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = MutableHeaders(scope=message)
                response_headers["X-Request-ID"] = request_id
                for name, value in SECURITY_HEADERS.items():
                    response_headers.setdefault(name, value)
                if self.cookie_secure:  # served over TLS: browsers keep to it (RFC 6797)
                    response_headers.setdefault("Strict-Transport-Security", HSTS)
                if scope["path"].startswith(PRIVATE_PATHS):  # never kept in a shared cache
                    response_headers.setdefault("Cache-Control", "no-store")
                if csrf is None:
                    response_headers.append("set-cookie", self._csrf_cookie(state["csrf_token"]))
            await send(message)

        try:
            await self.app(scope, receive, labelled)
        finally:
            duration = time.perf_counter() - started
            route = scope.get("route")
            metrics.observe(getattr(route, "path", None), scope["method"], status, duration)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round(duration * 1000, 2),
                request_id=request_id,
            )

    def _csrf_cookie(self, token: str) -> str:
        carrier = Response()
        carrier.set_cookie(
            CSRF_COOKIE, token, httponly=True, samesite="strict", secure=self.cookie_secure
        )
        return carrier.headers["set-cookie"]


def _install_shell_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["运维"], summary="健康检查")
    def healthz(request: Request) -> JSONResponse:
        """Status of the process and whether the database answers."""
        engine = request.app.state.engine
        status = check_database(engine)
        database: dict[str, Any] = {"reachable": status.reachable, "backend": status.backend}
        if status.reachable:
            database["revision"] = current_revision(engine)
        else:
            database["error"] = status.error
        body = {
            "status": "ok" if status.reachable else "unavailable",
            "version": __version__,
            "database": database,
        }
        return JSONResponse(body, status_code=200 if status.reachable else 503)

    @app.get("/api/docs", include_in_schema=False)
    def api_docs(request: Request) -> HTMLResponse:
        return render(request, "api_docs.html")
