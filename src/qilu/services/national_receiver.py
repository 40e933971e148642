"""A local stand-in for the 国家政务服务平台's receiving end (`qilu national receiver`): it checks
each message's SM2 signature against the platform's published keys, each record against the
national field set of its kind and the codes in it against their standards (办件编号 and 实施编码
by GB/T 39554.1, USCCs by GB 32100, ID numbers by GB 11643, licence identifiers by GB/T
36903), acknowledges what passes, refuses the rest saying which record, field and why, and
answers the daily reconciliation. It keeps what it accepted in memory, and in a JSON Lines
file if given one."""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from qilu import seals
from qilu.codes.errors import CodeError
from qilu.codes.idcard import parse_id_number
from qilu.codes.items import parse_basic, parse_case_number, parse_implementation
from qilu.codes.licence_ids import parse_identifier
from qilu.codes.uscc import parse_uscc
from qilu.services.national import ENVELOPE, ID_CARD, REQUIRED, USCC, canonical

Keys = Callable[[str], bytes | None]
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def jwks_keys(url: str) -> Keys:
    """SM2 public keys by kid, read from a JWKS address (Qilu's /oidc/jwks/sm2), read again when
    an unknown kid arrives (a rotated key)."""
    known: dict[str, bytes] = {}

    def find(kid: str) -> bytes | None:
        if kid not in known:
            for key in httpx.get(url, timeout=10).json()["keys"]:
                x, y = (base64.urlsafe_b64decode(key[c] + "==") for c in ("x", "y"))
                known[key["kid"]] = b"\x04" + x + y
        return known.get(kid)

    return find


def _problem(check: Callable[[], Any]) -> str | None:
    try:
        check()
    except CodeError as error:
        return error.message
    except ValueError as error:
        return str(error)
    return None


def _time(value: Any) -> None:
    datetime.strptime(str(value), TIME_FORMAT)


def _checks(kind: str, record: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """The codes in a record and what checks each."""
    checks: dict[str, Callable[[], Any]] = {}
    if "project_no" in record:
        checks["project_no"] = lambda: parse_case_number(str(record["project_no"]))
    if kind == "accept":
        checks["task_code"] = lambda: parse_implementation(str(record["task_code"]))
        checks["catalog_code"] = lambda: parse_basic(str(record["catalog_code"]))
        checks["org_code"] = lambda: parse_uscc(str(record["org_code"]))
        checks["accept_date"] = lambda: _time(record["accept_date"])
        page_type, page_code = str(record["applyer_page_type"]), str(record["applyer_page_code"])
        if page_type == ID_CARD:
            checks["applyer_page_code"] = lambda: parse_id_number(page_code)
        elif page_type == USCC:
            checks["applyer_page_code"] = lambda: parse_uscc(page_code)
        else:
            checks["applyer_page_type"] = lambda: _fail("证件类型应为 111 或 001")
        if not str(record["project_no"]).startswith(str(record["task_code"])):
            checks["project_no"] = lambda: _fail("办件编号应以其实施编码开头")
        if not str(record["task_code"]).endswith(str(record["catalog_code"])):
            checks["task_code"] = lambda: _fail("实施编码应以其基本编码结尾")
    if kind in ("process", "result"):
        stamp = "event_end_time" if kind == "process" else "result_date"
        checks[stamp] = lambda: _time(record[stamp])
    if kind == "rating":
        if record["grade"] not in range(1, 6):
            checks["grade"] = lambda: _fail("评价等级应为 1–5")
        checks["task_code"] = lambda: parse_implementation(str(record["task_code"]))
    if kind == "licence":
        checks["cert_identifier"] = lambda: _licence(record)
        checks["issuer_code"] = lambda: parse_uscc(str(record["issuer_code"]))
        holder = str(record["holder_code"])
        if holder and record["holder_type"] == "1":
            checks["holder_code"] = lambda: parse_id_number(holder)
        elif holder:
            checks["holder_code"] = lambda: parse_uscc(holder)
    return checks


def _fail(reason: str) -> None:
    raise ValueError(reason)


def _licence(record: dict[str, Any]) -> None:
    parsed = parse_identifier(str(record["cert_identifier"]))
    if (parsed.number, parsed.issuer_uscc) != (record["cert_no"], record["issuer_code"]):
        raise ValueError("证照标识中的证照编号或颁发机构与记录不一致")
    if parsed.version != record["cert_version"]:
        raise ValueError("证照标识中的版本号与记录不一致")


def problems_of(kind: str, record: Any) -> list[dict[str, str]]:
    """What is wrong with one record of `kind`: missing fields, then malformed codes."""
    if not isinstance(record, dict):
        return [{"field": "", "reason": "记录应为对象"}]
    missing = [f for f in REQUIRED[kind] if f not in record or record[f] is None]
    if missing:
        return [{"field": f, "reason": "缺少该字段"} for f in missing]
    found = []
    for field, check in _checks(kind, record).items():
        reason = _problem(check)
        if reason:
            found.append({"field": field, "reason": reason})
    return found


def receiver_app(
    keys: Keys, store: Path | None = None, elsewhere: list[dict[str, Any]] | None = None
) -> FastAPI:
    """The receiving end; `elsewhere`: licence records issued in other provinces, which the
    licence query answers along with the licences Qilu reported."""
    app = FastAPI(title="国家政务服务平台（本地模拟接收端）", docs_url=None, redoc_url=None)
    received: dict[str, dict[str, Any]] = {}  # batch -> message
    lock = threading.Lock()
    app.state.received = received

    def refuse(status: int, code: str, message: str, **more: Any) -> JSONResponse:
        return JSONResponse({"code": code, "message": message, **more}, status_code=status)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/reports")
    async def accept(request: Request) -> JSONResponse:
        try:
            message = json.loads(await request.body())
        except ValueError:
            return refuse(400, "E_FORMAT", "报文不是 JSON")
        if not isinstance(message, dict) or set(ENVELOPE) - set(message):
            missing = sorted(set(ENVELOPE) - set(message)) if isinstance(message, dict) else []
            return refuse(400, "E_FORMAT", "报文缺少字段", missing=missing)
        kind = str(message["kind"])
        if kind not in REQUIRED or not isinstance(message["records"], list):
            return refuse(400, "E_KIND", f"未知的数据类别：{kind}")
        public = keys(str(message["kid"]))
        try:
            signature = bytes.fromhex(str(message["signature"]))
        except ValueError:
            signature = b""
        if public is None or not seals.verify(seals.SM2, public, signature, canonical(message)):
            return refuse(401, "E_SIGNATURE", "签名验证失败：报文被改动，或不是已登记密钥签发的")
        errors = [
            {"record": n, **problem}
            for n, record in enumerate(message["records"])
            for problem in problems_of(kind, record)
        ]
        if errors:
            return refuse(400, "E_FIELDS", "数据项不符合国家标准", errors=errors)
        with lock:
            if message["batch"] not in received:  # a batch sent again is acknowledged again
                received[message["batch"]] = message
                if store is not None:
                    with store.open("a", encoding="utf-8") as out:
                        out.write(json.dumps(message, ensure_ascii=False) + "\n")
        return JSONResponse(
            {"code": "0", "message": "接收成功", "accepted": len(message["records"])}
        )

    @app.post("/reports/licences/query")
    async def query(request: Request) -> JSONResponse:
        """Licences of a holder and type in force, for a signed query carrying the holder's
        authorisation (跨省免提交)."""
        try:
            message = json.loads(await request.body())
            asked, consent = message["query"], message["authorisation"]
            holder, wanted = str(asked["holder_code"]), str(asked["licence_type"])
            public = keys(str(message["kid"]))
            signature = bytes.fromhex(str(message["signature"]))
        except (ValueError, KeyError, TypeError):
            return refuse(400, "E_FORMAT", "查询报文格式有误")
        if public is None or not seals.verify(seals.SM2, public, signature, canonical(message)):
            return refuse(401, "E_SIGNATURE", "签名验证失败")
        if not consent.get("holder_name") or not asked.get("purpose"):
            return refuse(403, "E_CONSENT", "缺少持证人授权或查询事由")
        current: dict[str, dict[str, Any]] = {}  # identifier -> its latest record
        with lock:
            reported = [
                r for m in received.values() if m["kind"] == "licence" for r in m["records"]
            ]
        for record in [*(elsewhere or []), *reported]:
            current[str(record["cert_identifier"])] = record
            if record.get("replaces_identifier"):
                current.pop(str(record["replaces_identifier"]), None)
        found = [
            r
            for r in current.values()
            if r.get("holder_code") == holder and r.get("cert_type_name") == wanted
        ]
        return JSONResponse({"code": "0", "message": "查询成功", "licences": found})

    @app.get("/reports/summary")
    def summary(day: str) -> dict[str, Any]:
        """Records held for `day` (by the time each was made, Beijing), by kind."""
        counts: Counter[str] = Counter()
        with lock:
            for message in received.values():
                for record in message["records"]:
                    if str(record.get("cd_time", "")).startswith(day):
                        counts[message["kind"]] += 1
        return {"day": day, "counts": dict(counts)}

    return app
