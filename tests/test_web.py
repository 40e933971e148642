from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from qilu.db import head_revision
from qilu.routes import measured
from qilu.web import create_app

from .conftest import make_settings


def test_healthz_reports_the_database(client: TestClient, settings: object) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["reachable"] is True
    assert body["database"]["revision"] == head_revision()
    assert body["database"]["backend"] in ("sqlite", "postgresql")


def test_healthz_says_unavailable_when_the_database_is_down(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, "postgresql://qilu:pw@127.0.0.1:1/qilu")
    with TestClient(create_app(settings)) as client:
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"]["reachable"] is False
    assert "pw@" not in body["database"]["error"]


def test_pages_load_nothing_from_outside(client: TestClient) -> None:
    for path in ("/", "/codes", "/api/docs"):
        response = client.get(path)
        assert response.status_code == 200
        assert "http://" not in response.text.replace("http://testserver/", "/")
        assert "https://" not in response.text
        assert response.headers["content-security-policy"].startswith("default-src 'self'")


def test_static_assets_are_served_locally(client: TestClient) -> None:
    for path in (
        "/static/qilu.css",
        "/static/vendor/htmx/htmx.min.js",
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/api-docs.js",
    ):
        assert client.get(path).status_code == 200, path


def test_openapi_document_lists_the_api(client: TestClient) -> None:
    spec = client.get("/api/openapi.json").json()
    assert spec["info"]["title"] == "Qilu 齐鲁 API"
    assert "/api/v1/codes/check" in spec["paths"]
    assert "/healthz" in spec["paths"]
    lookup = spec["paths"]["/api/v1/data/{code}/lookup"]["post"]
    assert {"401", "403", "404", "429"} <= set(lookup["responses"])
    assert "x-operator" in {p["name"] for p in lookup["parameters"]}
    assert "/api/v1/data/{code}/records" in spec["paths"]


def test_missing_page_is_a_chinese_page_and_api_gets_json(client: TestClient) -> None:
    page = client.get("/no-such-page")
    assert page.status_code == 404
    assert "页面不存在" in page.text and "<html" in page.text
    assert "请检查网址是否正确" in page.text
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.json() == {"error": {"code": "http.404", "message": "页面不存在"}}


def test_server_errors_do_not_leak_internals(app: FastAPI) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals /etc/qilu")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert "服务器内部错误" in response.text
    assert response.headers["x-request-id"] in response.text


def test_a_unit_of_work_ends_even_when_every_route_thread_is_busy(tmp_path: Path) -> None:
    """Routes may all be blocked waiting for a row lock that a finished request still holds
    until it commits: that commit must not queue for a route thread, or nothing moves again."""
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    import anyio

    from qilu.routes import get_session

    app = create_app(make_settings(tmp_path))

    async def scenario() -> bool:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 1
        busy = anyio.Event()
        release = anyio.Event()

        async def route_waiting_for_the_lock() -> None:
            async with anyio.to_thread.current_default_thread_limiter():
                busy.set()
                await release.wait()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(route_waiting_for_the_lock)
            await busy.wait()
            unit = get_session(SimpleNamespace(app=app))  # type: ignore[arg-type]
            await unit.__anext__()
            ended = False
            with anyio.move_on_after(5):
                try:
                    await unit.__anext__()
                except StopAsyncIteration:
                    ended = True
            release.set()
        return ended

    with ThreadPoolExecutor(1) as pool:  # page tests may have an event loop in this thread
        assert pool.submit(anyio.run, scenario).result()


def test_a_unit_of_work_commits_before_its_response_leaves(tmp_path: Path) -> None:
    """The client may act on a response at once (exchange the code it was just given): by the
    time the first byte of the response is sent, the request's writes must be committed."""
    from concurrent.futures import ThreadPoolExecutor

    import anyio
    from sqlalchemy.orm import Session, sessionmaker

    from qilu.db import upgrade

    app = create_app(make_settings(tmp_path))
    upgrade(app.state.engine)
    events: list[str] = []

    class Recording(Session):
        def commit(self) -> None:
            super().commit()
            events.append("commit")

    app.state.sessions = sessionmaker(app.state.engine, class_=Recording)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            events.append(f"response {message['status']}")

    # In a thread of its own: page tests may have an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, app, scope, receive, send).result()
    assert events == ["commit", "response 200"]


def test_no_route_touches_the_database_on_the_event_loop() -> None:
    """Database work is blocking: a coroutine route holding a session would stall every other
    request of the process (and deadlock one waiting for a lock another holds)."""
    import inspect
    import sys

    from fastapi.routing import APIRoute

    from qilu.routes import get_reader, get_session
    from qilu.web import INSTALLS

    def calls(dependant: object) -> set[object]:
        found = {getattr(dependant, "call", None)}
        for sub in getattr(dependant, "dependencies", []):
            found |= calls(sub)
        return found

    routes = [
        route
        for install in INSTALLS
        for route in sys.modules[install.__module__].router.routes
        if isinstance(route, APIRoute)
    ]
    assert len(routes) > 30
    blocking = [
        route.path
        for route in routes
        if inspect.iscoroutinefunction(route.endpoint)
        and calls(route.dependant) & {get_session, get_reader}
    ]
    assert blocking == []


def test_bodies_past_their_limit_are_refused_before_they_are_read(client: TestClient) -> None:
    """Found: a 400 MB anonymous POST to /licences/verify took 800 MB of server memory; the data
    API parsed 50 MB of JSON before it checked the token."""
    announced = client.post(
        "/licences/verify",
        content=b"x" * 10,
        headers={
            "Content-Length": str(2 * 1024 * 1024),
            "Content-Type": "multipart/form-data; boundary=qilu",
        },
    )
    assert announced.status_code == 413 and "提交的内容超过上限" in announced.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b"x" * 64 * 1024

    streamed = client.post(
        "/account/sign-in",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413, streamed.text
    stranger = client.post(
        "/api/v1/data/JC-RK-001/lookup", content=chunks(), headers={"Authorization": "Bearer x"}
    )
    assert stranger.status_code == 401  # the token first: a stranger's body is not read


def test_a_wrong_method_is_answered_with_allow(client: TestClient) -> None:
    refused = client.post("/api/v1/divisions")
    assert refused.status_code == 405 and refused.headers["allow"] == "GET"


def test_hsts_is_sent_when_cookies_are_secure(tmp_path: Path) -> None:
    settings = make_settings(tmp_path).model_copy(update={"cookie_secure": True})
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").headers["strict-transport-security"] == "max-age=31536000"


def test_routes_hold_no_queries() -> None:
    """Routes parse, authorise, call a service and render: queries live in the services."""
    import qilu

    package = Path(qilu.__file__).parent
    routes = [*package.rglob("*pages.py"), *package.rglob("api.py")]
    assert len(routes) > 8
    holding = [str(p.relative_to(package)) for p in routes if "select(" in p.read_text("utf-8")]
    assert holding == []


def test_static_files_and_pages_go_compressed(client: TestClient) -> None:
    script = client.get("/static/vendor/htmx/htmx.min.js", headers={"Accept-Encoding": "gzip"})
    assert script.headers["content-encoding"] == "gzip"
    assert int(script.headers["content-length"]) < 52182 / 2
    plain = client.get("/static/vendor/htmx/htmx.min.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and len(plain.content) == 52182


def test_every_page_title_is_plain_text() -> None:
    """A <title> is text: markup put in a template's title block (a script tag, once) shows
    as text in the browser's tab and does nothing."""
    root = Path(__file__).parent.parent / "src" / "qilu"
    titles = {
        str(path.relative_to(root)): match.group(1)
        for path in root.rglob("templates/**/*.html")
        for match in re.finditer(
            r"{% block title %}(.*?){% endblock %}", path.read_text(encoding="utf-8"), re.S
        )
    }
    assert len(titles) > 50
    assert {name: title for name, title in titles.items() if "<" in title} == {}


@pytest.mark.parametrize(
    ("value", "shown"),
    [(27.168238153009117, "27.168"), (212.0, "212"), (0.5, "0.5"), (-0.0001, "0"), (None, "—")],
)
def test_a_measured_value_reads_as_people_write_it(value: float | None, shown: str) -> None:
    assert measured(value) == shown
