"""The code-check page: a window clerk pastes numbers and sees what is wrong with each."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

from qilu.codes.check import check_code
from qilu.routes import render

MAX_VALUES = 100

router = APIRouter(include_in_schema=False)


@router.get("/codes", response_class=HTMLResponse)
def check_page(request: Request, values: str = "") -> HTMLResponse:
    lines = [line for line in values.splitlines() if line.strip()][:MAX_VALUES]
    results = [check_code(line) for line in lines]
    return render(request, "codes/check.html", values=values, results=results)


def install(app: FastAPI) -> None:
    app.include_router(router)
