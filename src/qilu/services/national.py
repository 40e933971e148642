"""Reporting upward to the 国家政务服务平台: 办件 (受理, 过程, 办结), 好差评 (the rating and its
rectification) and e-licences (签发 and every change of state), each a record in the national
field set, signed with the platform's SM2 key and sent through the outbox until the platform
acknowledges or refuses it; and the daily reconciliation of what was sent against what the
platform holds.

Field sets. The 办件 records carry the fields of the national exchange tables for 办件受理 /
办理过程 / 办结信息 (as provinces implement them: ``project_no``, ``catalog_code``, ``task_code``,
``applyer_*``, ``org_code``, ``accept_date``, ``promise_date``, ``project_type``; ``event_name``,
``process_name``, ``handle_explain``; ``result_date``, ``result_type``, ``result_cetr_no``), the
好差评 records the items of 国办发〔2019〕51号 (channel, the 办件 and item rated, the five-level
grade and its indicators, the rectification and the call back), the licence records the
catalogue and state data of GB/T 36902–36904 with an operation type. Where the national code
lists are not published (业务动作, 办结结果, 操作类型, 评价渠道) Qilu's own codes are used and
listed here; a province maps them when it connects.

Collecting. Reports are made from what the services already keep (case steps, ratings,
rectifications, licence events) by a collector the sweeper runs every few seconds, so no path
that changes a case can forget to report it. Each append-only table is read past a mark; rows
newer than `SETTLE` are read again until the mark passes them (a transaction that took an id
early and committed late is not skipped), and a report exists once per (kind, source).

The message: ``{"kind", "batch", "region", "sent_at", "records": [...], "kid", "signature"}``,
the signature SM2 (GB/T 32918, via `qilu.seals`) over the canonical JSON of everything else,
under the key published at ``/oidc/jwks/sm2``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, selectinload

from qilu.audit.service import record
from qilu.codes.divisions import SHANDONG
from qilu.errors import QiluError
from qilu.identity.models import LegalEntity, Person
from qilu.identity.signing_keys import sm2_key
from qilu.outbox.service import Recorder, enqueue
from qilu.pii import Vault
from qilu.services.licences import ACTION_NAMES, HOLDER_COLUMN, STATE_NAMES
from qilu.services.models import (
    Case,
    CaseStep,
    Licence,
    LicenceEvent,
    NationalMark,
    NationalReport,
    Rating,
    Rectification,
)
from qilu.workdays import beijing_today

log = structlog.get_logger("qilu.national")
REPORT = "national.report"
BODY_COLUMN = "national_report"  # the associated data its body is sealed with
SETTLE = timedelta(minutes=5)  # longer than any transaction that writes a step
BATCH = 200
TIMEOUT = 10.0
BEIJING = timedelta(hours=8)

# Qilu's codes where the national lists are not published (see the module's docstring).
EVENT_CODES = {  # 业务动作
    "submit": "01",
    "accept": "02",
    "not_accept": "03",
    "review": "04",
    "correct": "05",
    "grant": "06",
    "refuse": "07",
    "finish": "08",
    "release": "09",
    "transfer": "10",
    "redo": "11",
}
RESULT_CODES = {"granted": "1", "refused": "2", "not_accepted": "3"}  # 办结结果
OPERATION_CODES = {  # 证照操作类型
    "issue": "1",
    "change": "2",
    "renew": "3",
    "revoke": "4",
    "suspend": "5",
    "restore": "6",
}
CHANNEL_ONLINE = "1"  # 评价渠道: 网上办事大厅 (Qilu's portal, where ratings are given)
ID_CARD, USCC = "111", "001"  # 证件类型: 居民身份证 (GA/T 517), 统一社会信用代码

ENVELOPE = ("kind", "batch", "region", "sent_at", "records", "kid", "signature")
# The fields each kind of record must carry (the receiver checks them; so do the tests).
REQUIRED: dict[str, tuple[str, ...]] = {
    "accept": (
        "project_no",
        "catalog_code",
        "task_code",
        "task_name",
        "task_version",
        "apply_type",
        "applyer_type",
        "applyer_name",
        "applyer_page_type",
        "applyer_page_code",
        "org_code",
        "org_name",
        "apply_date",
        "accept_date",
        "promise_date",
        "project_type",
        "project_name",
        "cd_operation",
        "cd_time",
    ),
    "process": (
        "project_no",
        "event_name",
        "process_name",
        "handle_user_name",
        "handle_explain",
        "event_start_time",
        "event_end_time",
        "cd_operation",
        "cd_time",
    ),
    "result": (
        "project_no",
        "result_date",
        "result_type",
        "result_explain",
        "result_cetr_name",
        "result_cetr_no",
        "is_delivery_results",
        "cd_operation",
        "cd_time",
    ),
    "rating": (
        "project_no",
        "task_code",
        "task_name",
        "org_code",
        "org_name",
        "channel",
        "grade",
        "indicators",
        "comment",
        "rated_at",
        "cd_operation",
        "cd_time",
    ),
    "rectify": (
        "project_no",
        "org_code",
        "rectify_status",
        "rectify_note",
        "callback_note",
        "closed_at",
        "cd_operation",
        "cd_time",
    ),
    "licence": (
        "cert_identifier",
        "cert_type_code",
        "cert_type_name",
        "cert_no",
        "cert_version",
        "issuer_code",
        "issuer_name",
        "holder_type",
        "holder_name",
        "holder_code",
        "valid_from",
        "valid_until",
        "cert_state",
        "operation",
        "operation_name",
        "operation_time",
        "operation_reason",
        "cd_operation",
        "cd_time",
    ),
}


def _time(moment: datetime | None) -> str:
    """A moment as the platform writes it: Beijing time, to the second."""
    if moment is None:
        return ""
    return f"{(moment.astimezone(UTC) + BEIJING).replace(tzinfo=None):%Y-%m-%d %H:%M:%S}"


def _envelope(operation: str = "I") -> dict[str, str]:
    return {"cd_operation": operation, "cd_time": _time(datetime.now(UTC))}


@dataclass(frozen=True)
class Pending:
    kind: str
    source_id: int
    subject: str
    body: dict[str, Any]


def _applicant(session: Session, vault: Vault, case: Case) -> dict[str, str]:
    application = case.application
    if application.entity_id is not None:
        entity = session.get_one(LegalEntity, application.entity_id)
        person = session.get_one(Person, entity.legal_representative_id)
        return {
            "applyer_type": "2",
            "applyer_name": entity.name,
            "applyer_page_type": USCC,
            "applyer_page_code": entity.uscc,
            "legal": person.name,
        }
    person = session.get_one(Person, application.applicant_person_id)
    return {
        "applyer_type": "1",
        "applyer_name": person.name,
        "applyer_page_type": ID_CARD,
        "applyer_page_code": vault.decrypt(person.id_number_cipher, "id_number"),
        "legal": "",
    }


def _names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(select(Person.id, Person.name).where(Person.id.in_(wanted))).all())


def _case_reports(session: Session, vault: Vault, steps: list[CaseStep]) -> list[Pending]:
    """受理, 过程 and 办结 records of these steps (a case without a national number, written
    by a release before it, is not reported)."""
    cases = {
        c.id: c
        for c in session.scalars(
            select(Case)
            .where(Case.id.in_({s.case_id for s in steps}))
            .options(
                selectinload(Case.item),
                selectinload(Case.department),
                selectinload(Case.application),
            )
        )
    }
    people = _names(session, {s.actor_person_id for s in steps})
    starts = dict(
        session.execute(
            select(CaseStep.case_id, func.min(CaseStep.at))
            .where(CaseStep.case_id.in_(set(cases)))
            .group_by(CaseStep.case_id)
        ).all()
    )
    out: list[Pending] = []
    for step in steps:
        case = cases[step.case_id]
        number = case.national_number
        if number is None:
            continue
        handler = people.get(step.actor_person_id or 0, "系统（秒批）")
        if step.action == "accept":
            item = case.item
            out.append(
                Pending(
                    "accept",
                    step.id,
                    number,
                    {
                        "project_no": number,
                        "catalog_code": item.code,
                        "task_code": case.implementation_code,
                        "task_handle_item": "",
                        "task_name": item.name,
                        "task_version": item.version,
                        "apply_type": "2" if case.application.channel == "window" else "1",
                        **_applicant(session, vault, case),
                        "org_code": case.department.uscc,
                        "org_name": case.department.name,
                        "apply_date": _time(starts.get(case.id)),
                        "accept_date": _time(step.at),
                        "promise_date": case.due_on.isoformat() if case.due_on else "",
                        "project_type": "1" if item.spec["promised_days"] == 0 else "2",
                        "handle_user_name": handler,
                        "project_name": f"{case.application.number} {item.name}",
                        **_envelope(),
                    },
                )
            )
        out.append(
            Pending(
                "process",
                step.id,
                number,
                {
                    "project_no": number,
                    "event_name": EVENT_CODES.get(step.action, "99"),
                    "process_name": step.action,
                    "handle_user_name": handler,
                    "handle_explain": step.reason or "",
                    "event_start_time": _time(step.at),
                    "event_end_time": _time(step.at),
                    **_envelope(),
                },
            )
        )
        if step.to_state in ("done", "not_accepted"):
            out.append(Pending("result", step.id, number, _result(session, case, step)))
    return out


def _result(session: Session, case: Case, step: CaseStep) -> dict[str, Any]:
    issued = session.scalars(select(Licence).where(Licence.case_id == case.id)).all()
    decision = case.decision or ("not_accepted" if step.to_state == "not_accepted" else "granted")
    return {
        "project_no": case.national_number,
        "result_date": _time(step.at),
        "result_type": RESULT_CODES.get(decision, "1"),
        "result_explain": case.decision_reason or "",
        "result_cetr_name": ";".join(lic.licence_type for lic in issued),
        "result_cetr_no": ";".join(lic.identifier or lic.number for lic in issued),
        "is_delivery_results": "0",
        "satisfaction": "",
        **_envelope(),
    }


def _rating_reports(session: Session, ratings: list[Rating]) -> list[Pending]:
    """好差评: one record per 办件 of the rated application (一事一评 of each)."""
    out: list[Pending] = []
    for rating in ratings:
        for case in rating.application.cases:
            if case.national_number is None:
                continue
            out.append(
                Pending(
                    "rating",
                    rating.id,
                    case.national_number,
                    {
                        "project_no": case.national_number,
                        "task_code": case.implementation_code,
                        "task_name": case.item.name,
                        "org_code": case.department.uscc,
                        "org_name": case.department.name,
                        "channel": CHANNEL_ONLINE,
                        "grade": rating.overall,
                        "indicators": rating.scores,
                        "comment": rating.comment,
                        "rated_at": _time(rating.created_at),
                        **_envelope(),
                    },
                )
            )
    return out


def _rectify_reports(session: Session, tasks: list[Rectification]) -> list[Pending]:
    out = []
    for task in tasks:
        cases = [c for c in task.rating.application.cases if c.department_id == task.department_id]
        number = next((c.national_number for c in cases if c.national_number), None)
        if number is None:
            continue
        out.append(
            Pending(
                "rectify",
                task.id,
                number,
                {
                    "project_no": number,
                    "org_code": task.department.uscc,
                    "rectify_status": task.status,
                    "rectify_note": task.fix_note or task.decided_note or "",
                    "callback_note": task.callback_note or "",
                    "appeal_reason": task.appeal_reason or "",
                    "closed_at": _time(task.closed_at),
                    **_envelope("U"),
                },
            )
        )
    return out


def _licence_reports(session: Session, vault: Vault, events: list[LicenceEvent]) -> list[Pending]:
    licences = {
        lic.id: lic
        for lic in session.scalars(
            select(Licence).where(Licence.id.in_({e.licence_id for e in events}))
        )
    }
    # The identifier each version had: the current one's, and those kept by the events that
    # replaced the others.
    versions: dict[tuple[int, int], str] = {}
    for lic in licences.values():
        if lic.identifier:
            versions[(lic.id, lic.version or 1)] = lic.identifier
    for replacing in session.scalars(
        select(LicenceEvent).where(
            LicenceEvent.licence_id.in_(set(licences)), LicenceEvent.action.in_(("change", "renew"))
        )
    ):
        old = replacing.replaced or {}
        if old.get("identifier"):
            versions[(replacing.licence_id, old.get("version") or 1)] = old["identifier"]
    out = []
    for event in events:
        licence = licences[event.licence_id]
        identifier = versions.get((licence.id, event.version))
        if identifier is None:
            continue
        replaced = event.replaced or {}
        cipher = licence.holder_code_cipher
        code = vault.decrypt(cipher, HOLDER_COLUMN) if cipher else ""
        out.append(
            Pending(
                "licence",
                event.id,
                identifier,
                {
                    "cert_identifier": identifier,
                    "replaces_identifier": replaced.get("identifier") or "",
                    "cert_type_code": identifier.split(".")[5],
                    "cert_type_name": licence.licence_type,
                    "cert_no": licence.number,
                    "cert_version": event.version,
                    "issuer_code": licence.issuer.uscc,
                    "issuer_name": licence.issuer.name,
                    "holder_type": "1" if licence.holder_kind == "person" else "2",
                    "holder_name": licence.holder_name,
                    "holder_code": code,
                    "valid_from": licence.valid_from.isoformat(),
                    "valid_until": licence.valid_until.isoformat() if licence.valid_until else "",
                    "cert_state": STATE_NAMES.get(event.to_state, event.to_state),
                    "trust_grade": licence.trust_grade,
                    "operation": OPERATION_CODES[event.action],
                    "operation_name": ACTION_NAMES[event.action],
                    "operation_time": _time(event.at),
                    "operation_reason": event.reason or "",
                    **_envelope("I" if event.action == "issue" else "U"),
                },
            )
        )
    return out


@dataclass(frozen=True)
class Source:
    """An append-only table reports are made from, read past a mark; `witness` is the kind
    every one of its rows reports (so a row with a report of that kind is done)."""

    name: str
    model: Any
    moment: Any  # its time column
    build: Callable[[Session, Vault, list[Any]], list[Pending]]
    witness: str


SOURCES = (
    Source("steps", CaseStep, CaseStep.at, _case_reports, "process"),
    Source("ratings", Rating, Rating.created_at, lambda s, v, r: _rating_reports(s, r), "rating"),
    Source("licences", LicenceEvent, LicenceEvent.at, _licence_reports, "licence"),
)


def collect(session: Session, vault: Vault, *, send: bool, now: datetime | None = None) -> int:
    """Make the reports not yet made (and, if `send`, put each in the outbox); returns how
    many were made."""
    now = now or datetime.now(UTC)
    made = 0
    for source in SOURCES:
        model = source.model
        mark = session.get(NationalMark, source.name)
        after = mark.last_id if mark else 0
        # NOT EXISTS, by the (kind, source_id, subject) index, only for rows past the mark.
        reported = exists().where(
            NationalReport.kind == source.witness, NationalReport.source_id == model.id
        )
        rows = list(
            session.scalars(
                select(model).where(model.id > after, ~reported).order_by(model.id).limit(BATCH)
            )
        )
        made += _store(session, source.build(session, vault, rows), vault, send=send, now=now)
        # Everything up to the newest row older than SETTLE is reported now (or was), unless
        # this batch stopped short of it.
        settled = session.scalar(
            select(func.max(model.id)).where(model.id > after, source.moment < now - SETTLE)
        )
        if settled is None:
            continue
        last = settled if len(rows) < BATCH else min(settled, rows[-1].id)
        if mark is None:
            session.add(NationalMark(name=source.name, last_id=last))
        else:
            mark.last_id = last
    closed = list(
        session.scalars(
            select(Rectification)
            .where(
                Rectification.closed_at.is_not(None),
                ~exists().where(
                    NationalReport.kind == "rectify", NationalReport.source_id == Rectification.id
                ),
            )
            .order_by(Rectification.id)
            .limit(BATCH)
        )
    )
    made += _store(session, _rectify_reports(session, closed), vault, send=send, now=now)
    if made:  # personal data leaves for the national platform: said in the audit log
        record(session, "national.reports_made", details={"reports": made, "sent": send})
    return made


def _store(
    session: Session, pending: list[Pending], vault: Vault, *, send: bool, now: datetime
) -> int:
    table = NationalReport.__table__
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    made = 0
    for report in pending:
        body = json.dumps(report.body, ensure_ascii=False, sort_keys=True)
        report_id = session.execute(
            dialect.insert(table)
            .values(
                kind=report.kind,
                source_id=report.source_id,
                subject=report.subject,
                body_cipher=vault.encrypt(body, BODY_COLUMN),
                status="pending",
                attempts=0,
                created_at=now,
            )
            .on_conflict_do_nothing(
                index_elements=[table.c.kind, table.c.source_id, table.c.subject]
            )
            .returning(table.c.id)
        ).scalar_one_or_none()
        if report_id is None:  # another sweeper made it
            continue
        made += 1
        if send:
            enqueue(session, REPORT, str(report_id), {"report": report_id})
    return made


def canonical(message: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in message.items() if k != "signature"}
    return json.dumps(unsigned, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def message_of(session: Session, vault: Vault, report: NationalReport) -> dict[str, Any]:
    """The signed message carrying one report."""
    kid, key = sm2_key(session, vault)
    message: dict[str, Any] = {
        "kind": report.kind,
        "batch": f"{SHANDONG}-{report.id}",
        "region": SHANDONG,
        "sent_at": _time(datetime.now(UTC)),
        "records": [json.loads(vault.decrypt(report.body_cipher, BODY_COLUMN))],
        "kid": kid,
    }
    message["signature"] = key.sign(canonical(message)).hex()
    return message


def deliver(
    session: Session, payload: dict[str, Any], *, vault: Vault, url: str
) -> Callable[[], Recorder | None] | None:
    """The outbox's handler: send one report; an acknowledgement or a refusal is recorded (a
    refusal is final: the platform said why, and sending it again would not change it); a
    failure to reach the platform, or its failure, is tried again."""
    report = session.get(NationalReport, int(payload["report"]))
    if report is None or report.status != "pending":
        return None
    report.attempts += 1
    message, report_id = message_of(session, vault, report), report.id

    def post() -> Recorder:
        response = httpx.post(url, json=message, timeout=TIMEOUT)
        if response.status_code >= 500:
            raise RuntimeError(f"国家平台返回 {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise RuntimeError(f"国家平台返回了无法解析的应答（{response.status_code}）") from None
        accepted = response.status_code == 200 and str(answer.get("code")) == "0"

        def record_answer(session: Session) -> None:
            row = session.get_one(NationalReport, report_id)
            row.status = "acknowledged" if accepted else "refused"
            row.answer_code = str(answer.get("code", response.status_code))[:20]
            row.answer_reason = None if accepted else json.dumps(answer, ensure_ascii=False)
            row.answered_at = datetime.now(UTC)

        return record_answer

    return post


def resend(session: Session) -> int:
    """Put every report still pending in the outbox (after the endpoint was set or changed)."""
    pending = session.scalars(select(NationalReport.id).where(NationalReport.status == "pending"))
    count = 0
    for report_id in pending:
        enqueue(session, REPORT, f"{report_id}", {"report": report_id})
        count += 1
    return count


@dataclass(frozen=True)
class Reconciliation:
    day: date
    ours: dict[str, dict[str, int]]  # kind -> status -> count
    theirs: dict[str, int] | None  # kind -> records the platform holds for the day
    refused: list[tuple[str, str, str]]  # (kind, subject, reason)

    @property
    def mismatched(self) -> list[str]:
        """Kinds where what we count as acknowledged is not what the platform holds."""
        if self.theirs is None:
            return []
        kinds = set(self.theirs) | set(self.ours)
        return sorted(
            k for k in kinds if self.ours.get(k, {}).get("acknowledged", 0) != self.theirs.get(k, 0)
        )


def reconcile(session: Session, day: date | None = None, url: str | None = None) -> Reconciliation:
    """What was made on `day` (Beijing) by kind and state, the refusals with their reasons, and
    what the platform says it holds for that day (asked at `url`/summary, if given)."""
    day = day or beijing_today() - timedelta(days=1)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) - BEIJING
    within = (NationalReport.created_at >= start, NationalReport.created_at < start + timedelta(1))
    ours: dict[str, dict[str, int]] = {}
    for kind, status, count in session.execute(
        select(NationalReport.kind, NationalReport.status, func.count())
        .where(*within)
        .group_by(NationalReport.kind, NationalReport.status)
    ):
        ours.setdefault(kind, {})[status] = count
    refused = [
        (kind, subject, reason or "")
        for kind, subject, reason in session.execute(
            select(NationalReport.kind, NationalReport.subject, NationalReport.answer_reason)
            .where(*within, NationalReport.status == "refused")
            .order_by(NationalReport.id)
        )
    ]
    theirs = None
    if url:
        answer = httpx.get(
            f"{url.rstrip('/')}/summary", params={"day": day.isoformat()}, timeout=10
        )
        answer.raise_for_status()
        theirs = {str(k): int(v) for k, v in answer.json()["counts"].items()}
    return Reconciliation(day, ours, theirs, refused)


def reconcile_yesterday(session: Session, url: str | None, today: date) -> Reconciliation | None:
    """Once a day (the hourly work calls it): reconcile yesterday, once, and keep the outcome
    in the audit log; a refusal or a mismatch is logged as a warning for the operators."""
    mark = session.get(NationalMark, "reconciled")
    day = today - timedelta(days=1)
    stamp = int(f"{day:%Y%m%d}")
    if mark is not None and mark.last_id >= stamp:
        return None
    try:
        result = reconcile(session, day, url)
    except httpx.HTTPError as error:  # the platform is away: tried again next hour
        log.warning("national.reconcile_unreachable", error=str(error))
        return None
    if mark is None:
        session.add(NationalMark(name="reconciled", last_id=stamp))
    else:
        mark.last_id = stamp
    details = {
        "day": day.isoformat(),
        "ours": result.ours,
        "theirs": result.theirs,
        "refused": len(result.refused),
        "mismatched": result.mismatched,
    }
    record(session, "national.reconciled", details=details)
    if result.refused or result.mismatched:
        log.warning("national.reconcile_differs", **details)
    return result


QUERY_PATH = "/licences/query"


def fetch_licences(
    session: Session,
    vault: Vault,
    url: str,
    *,
    holder_code: str,
    holder_name: str,
    licence_type: str,
    purpose: str,
) -> list[dict[str, Any]]:
    """Licences of `licence_type` the national platform's 电子证照 library holds for a holder
    (issued in any province), asked under the holder's authorisation for `purpose`: a signed
    message like the reports, answered with the licences in force."""
    kid, key = sm2_key(session, vault)
    message: dict[str, Any] = {
        "kind": "licence_query",
        "region": SHANDONG,
        "sent_at": _time(datetime.now(UTC)),
        "query": {"holder_code": holder_code, "licence_type": licence_type, "purpose": purpose},
        "authorisation": {
            "holder_name": holder_name,
            "scope": "本次办理调取，仅用于所述事由",
            "at": _time(datetime.now(UTC)),
        },
        "kid": kid,
    }
    message["signature"] = key.sign(canonical(message)).hex()
    try:
        response = httpx.post(f"{url.rstrip('/')}{QUERY_PATH}", json=message, timeout=TIMEOUT)
        answer = response.json()
    except (httpx.HTTPError, ValueError):
        raise QiluError(
            "national.unreachable", "暂时无法连接国家政务服务平台，请稍后再试或上传材料"
        ) from None
    if response.status_code != 200 or str(answer.get("code")) != "0":
        raise QiluError("national.refused", f"国家政务服务平台未受理查询：{answer.get('message')}")
    found = answer.get("licences", [])
    return [dict(licence) for licence in found if licence.get("cert_state") == "有效"]
