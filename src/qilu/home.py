"""The home page, search first: what do you need (suggestions as you type), 热门服务, shortcuts to
one's applications and licences; in 长辈版 the ten services older residents use most as big
tiles. Below, what the platform is made of and how much the registers hold."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse

from qilu.codes.divisions import SHANDONG, divisions
from qilu.identity.service import register_counts
from qilu.routes import LARGE_FONT, DbSession, render
from qilu.services import catalog


@dataclass(frozen=True)
class Part:
    name: str
    clause: str
    summary: str
    href: str | None  # None while the part is being built


# The platform's parts, as the action plan names them (DESIGN.md maps them to modules).
PARTS = (
    Part(
        "一号通行",
        "一(四)",
        "以身份号码和统一社会信用代码为唯一标识，一次认证、全网通行。",
        "/account",
    ),
    Part(
        "一体化大数据平台",
        "一(四)",
        "人口、法人、空间地理、电子证照四大基础库，目录、共享与授权。",
        "/account/data",
    ),
    Part(
        "一网通办 · 一链办理",
        "一(一)",
        "事项清单、情形引导、一表申请、并联审批、秒批与电子证照。",
        "/services",
    ),
    Part("监测预警", "二(二)、四(二)", "危化品、运输车辆、水利与生态环境感知，告警与调度。", None),
    Part("全景地图", "一(三)", "全省一张图：展示、分析、调度与指挥。", None),
    Part("督导评估", "五", "行动计划任务、牵头单位、目标与进度，评估评价。", None),
    Part(
        "号码核验",
        "一(四)",
        "核验公民身份号码（GB 11643）与统一社会信用代码（GB 32100）。",
        "/codes",
    ),
    Part("开放接口", "一(四)", "OpenAPI 文档，供各部门业务系统对接。", "/api/docs"),
)

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: DbSession) -> HTMLResponse:
    table = divisions()
    care = request.cookies.get(LARGE_FONT) == "1"
    return render(
        request,
        "home.html",
        care_tiles=catalog.named(session, catalog.CARE_SERVICES) if care else [],
        popular=catalog.popular_now(session),
        parts=PARTS,
        counts=register_counts(session),
        cities=len(table.current("city", within=SHANDONG)),
        counties=len(table.current("county", within=SHANDONG)),
    )


def install(app: FastAPI) -> None:
    app.include_router(router)
