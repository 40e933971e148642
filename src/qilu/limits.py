"""Bounded input: how large a request body may be, enforced before the application reads it.

A request announcing more than its route's limit (`Content-Length`) is answered 413 at once; one
that does not announce it (chunked) is cut off when the bytes read pass the limit. The limits are
settings (README, "Configuration"); a route that takes files gets a larger one than a form.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qilu.settings import Settings

MIB = 1024 * 1024
# Files a material may have at once (the catalog's largest `max_files`), plus the form around them.
FILES_PER_UPLOAD = 5

_UPLOADS = re.compile(r"^/services/applications/[^/]+/materials$")
_LOADS = re.compile(r"^/workbench/data/[^/]+/loads$")
_PUSHES = re.compile(r"^/api/v1/data/[^/]+/records$")
_FILES = re.compile(r"^/api/v1/data/[^/]+/files/[^/]+$")


def body_limit(settings: Settings, method: str, path: str) -> int:
    """The most bytes a request to `path` may carry."""
    if method == "POST" and _UPLOADS.match(path):
        return settings.max_upload_bytes * FILES_PER_UPLOAD + MIB
    if (method == "POST" and _LOADS.match(path)) or (method == "PUT" and _FILES.match(path)):
        return settings.max_load_bytes
    if method == "POST" and _PUSHES.match(path):
        return settings.max_api_body_bytes
    return settings.max_body_bytes


class BodyTooLarge(HTTPException):
    """Raised from `receive`; an HTTPException so FastAPI's body parsing passes it on as is."""

    def __init__(self, limit: int):
        super().__init__(413, f"提交的内容超过上限（{limit // 1024} KB）")
        self.limit = limit


class BodyLimit:
    """ASGI middleware enforcing `body_limit` on every HTTP request."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit(self.settings, scope["method"], scope["path"])
        announced = dict(scope["headers"]).get(b"content-length", b"0")
        too_large = not announced.isdigit() or int(announced) > limit
        seen = 0

        # Raised when the application reads the body (inside it, so the error handlers answer);
        # a route that reads nothing is not bothered.
        async def counted() -> Message:
            nonlocal seen
            if too_large:
                raise BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)
