"""Reporting to the 国家政务服务平台 (issue 16): a whole journey's 办件 (受理, 过程, 办结), its
好差评 with the rectification, and the e-licence issued and then 暂扣 reach a receiver that
checks signatures, the national field sets and the codes in them; a refusal is recorded with
its reason; an unreachable platform is tried again; the day reconciles."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session, sessionmaker

from qilu.audit.models import AuditEvent
from qilu.identity.signing_keys import sm2_key
from qilu.outbox.models import OutboxEffect
from qilu.outbox.service import enqueue, sweep
from qilu.services import licences, national, ratings
from qilu.services.models import (
    Application,
    CaseStep,
    NationalMark,
    NationalReport,
    Rectification,
)
from qilu.services.national_receiver import problems_of, receiver_app
from qilu.workdays import beijing_today

from ..servers import free_port, serving
from .conftest import Province
from .test_results import certificate, finished_newborn


@pytest.fixture
def sessions(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint")


def journey(province: Province, store: object) -> Application:
    """The newborn chain to its end, the licence 暂扣 for a check, a bad rating fixed."""
    application = finished_newborn(province, store)  # type: ignore[arg-type]
    session = province.session
    licences.suspend_licence(
        session, certificate(province), reason="核对出生信息", actor_person_id=None
    )
    rating = ratings.rate(
        session,
        application,
        person_id=province.resident.id,
        scores={"overall": 2},
        comment="社保卡制卡太慢",
    )
    task = session.scalars(
        select(Rectification).where(Rectification.rating_id == rating.id)
    ).first()
    assert task is not None
    fixer = province.official(task.department.code, "approver", "整改人")
    ratings.fix(
        session,
        task.id,
        actor_person_id=fixer.id,
        expected_version=task.version,
        fix_note="制卡流程并联办理",
        callback_note="已电话回访，申请人认可",
    )
    session.flush()
    return application


def send_all(sessions: sessionmaker[Session], province: Province, url: str) -> int:
    handlers = {national.REPORT: partial(national.deliver, vault=province.vault, url=url)}
    return sweep(sessions, handlers, limit=500)


def test_a_whole_journey_reaches_the_national_platform_and_reconciles(
    province: Province, store: object, sessions: sessionmaker[Session]
) -> None:
    journey(province, store)
    session, vault = province.session, province.vault
    kid, key = sm2_key(session, vault)
    app = receiver_app(lambda asked: key.public_key if asked == kid else None)
    made = national.collect(session, vault, send=True)
    kinds = {r.kind for r in session.scalars(select(NationalReport))}
    assert kinds == {"accept", "process", "result", "rating", "rectify", "licence"}
    assert national.collect(session, vault, send=True) == 0  # each made once
    session.commit()
    with serving(app) as base:
        url = f"{base}/reports"
        assert send_all(sessions, province, url) == made
        session.expire_all()
        reports = session.scalars(select(NationalReport)).all()
        assert {r.status for r in reports} == {"acknowledged"}, [
            (r.kind, r.answer_reason) for r in reports if r.status != "acknowledged"
        ]
        received = app.state.received
        assert len(received) == made
        by_kind: dict[str, list[dict]] = {}  # type: ignore[type-arg]
        for message in received.values():
            by_kind.setdefault(message["kind"], []).extend(message["records"])
        accepted = by_kind["accept"]
        assert {r["applyer_page_type"] for r in accepted} == {"111"}
        assert all(r["project_no"].startswith(r["task_code"]) for r in accepted)
        operations = sorted(r["operation_name"] for r in by_kind["licence"])
        assert operations == ["暂扣", "签发", "签发"]  # 出生医学证明 and 社会保障卡
        assert {r["cert_state"] for r in by_kind["licence"]} == {"有效", "暂扣"}
        assert all(r["holder_code"] for r in by_kind["licence"])  # the child's 预赋码
        assert by_kind["rectify"][0]["callback_note"] == "已电话回访，申请人认可"
        assert {r["grade"] for r in by_kind["rating"]} == {2}
        day = national.reconcile(session, beijing_today(), url)
        assert day.theirs is not None and day.mismatched == [] and day.refused == []
        assert sum(day.theirs.values()) == made


def test_a_refusal_is_recorded_with_its_reason_and_not_sent_again(
    province: Province, store: object, sessions: sessionmaker[Session]
) -> None:
    journey(province, store)
    session, vault = province.session, province.vault
    national.collect(session, vault, send=True)
    # One record loses a field the national set requires.
    broken = session.scalars(select(NationalReport).where(NationalReport.kind == "accept")).first()
    assert broken is not None
    body = json.loads(vault.decrypt(broken.body_cipher, "national_report"))
    del body["task_code"]
    broken.body_cipher = vault.encrypt(json.dumps(body), "national_report")
    session.commit()
    kid, key = sm2_key(session, vault)
    with serving(receiver_app(lambda asked: key.public_key if asked == kid else None)) as base:
        send_all(sessions, province, f"{base}/reports")
        assert send_all(sessions, province, f"{base}/reports") == 0  # nothing left to send
    session.expire_all()
    refused = session.get_one(NationalReport, broken.id)
    assert refused.status == "refused" and refused.answer_code == "E_FIELDS"
    assert "task_code" in (refused.answer_reason or "") and "缺少该字段" in (
        refused.answer_reason or ""
    )
    others = session.scalars(select(NationalReport).where(NationalReport.id != broken.id)).all()
    assert {r.status for r in others} == {"acknowledged"}
    day = national.reconcile(session, beijing_today())
    assert [(k, s) for k, s, _ in day.refused] == [("accept", broken.subject)]


def test_a_forged_signature_is_refused(province: Province, store: object) -> None:
    journey(province, store)
    session, vault = province.session, province.vault
    national.collect(session, vault, send=False)
    report = session.scalars(select(NationalReport)).first()
    assert report is not None
    message = national.message_of(session, vault, report)
    kid, key = sm2_key(session, vault)
    app = receiver_app(lambda asked: key.public_key if asked == kid else None)
    with TestClient(app) as client:
        assert client.post("/reports", json=message).json()["code"] == "0"
        tampered = {**message, "records": [{**message["records"][0], "project_no": "x"}]}
        answer = client.post("/reports", json=tampered)
        assert answer.status_code == 401 and answer.json()["code"] == "E_SIGNATURE"
        unknown = {**message, "kid": "someone-else"}
        assert client.post("/reports", json=unknown).status_code == 401


def test_an_unreachable_platform_is_tried_again_until_it_answers(
    province: Province, store: object, sessions: sessionmaker[Session]
) -> None:
    journey(province, store)
    session, vault = province.session, province.vault
    national.collect(session, vault, send=False)  # kept, not sent: no address yet
    first = session.scalars(select(NationalReport).order_by(NationalReport.id)).first()
    assert first is not None
    enqueue(session, national.REPORT, str(first.id), {"report": first.id})
    made = 1
    session.commit()
    port = free_port()
    url = f"http://127.0.0.1:{port}/reports"
    assert send_all(sessions, province, url) == 0  # nobody listens there
    session.expire_all()
    assert session.get_one(NationalReport, first.id).status == "pending"
    effects = session.scalars(select(OutboxEffect).where(OutboxEffect.kind == national.REPORT))
    waiting = list(effects)
    assert waiting and all(e.attempts == 1 and e.last_error for e in waiting)
    for effect in waiting:  # their back-off is over
        effect.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
    session.commit()
    kid, key = sm2_key(session, vault)
    app = receiver_app(lambda asked: key.public_key if asked == kid else None)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        assert send_all(sessions, province, url) == made
    finally:
        server.should_exit = True
        thread.join(5)
    session.expire_all()
    assert session.get_one(NationalReport, first.id).status == "acknowledged"
    assert session.get_one(NationalReport, first.id).attempts == 2


def test_the_receiver_checks_codes_against_their_standards() -> None:
    good = {field: "x" for field in national.REQUIRED["licence"]}
    identifier = (
        "1.2.156.3005.2.11100000000013338W087.11370800MB28559184.37080001202411010001.001.3"
    )
    good |= {
        "cert_identifier": identifier,
        "cert_no": "37080001202411010001",
        "cert_version": 1,
        "issuer_code": "11370800MB28559184",
        "holder_type": "2",
        "holder_code": "11370800MB28559184",
    }
    assert problems_of("licence", good) == []
    wrong = {**good, "cert_identifier": identifier[:-1] + "4"}
    assert problems_of("licence", wrong)[0]["field"] == "cert_identifier"
    assert problems_of("licence", {**good, "cert_version": 2})[0]["reason"].startswith("证照标识")
    assert problems_of("licence", {**good, "holder_code": "not-a-uscc"})[0]["field"] == (
        "holder_code"
    )
    missing = {k: v for k, v in good.items() if k != "issuer_name"}
    assert problems_of("licence", missing) == [{"field": "issuer_name", "reason": "缺少该字段"}]


def test_the_collector_moves_its_mark_only_past_settled_rows(
    province: Province, store: object
) -> None:
    """Rows younger than SETTLE are read again until they settle (a transaction that took an
    id early and committed late is not skipped); older ones are passed for good."""
    journey(province, store)
    session, vault = province.session, province.vault
    national.collect(session, vault, send=False)
    assert session.get(NationalMark, "steps") is None  # nothing has settled yet
    later = datetime.now(UTC) + national.SETTLE + timedelta(seconds=1)
    assert national.collect(session, vault, send=False, now=later) == 0
    newest = session.scalar(select(func.max(CaseStep.id)))
    mark = session.get(NationalMark, "steps")
    assert mark is not None and mark.last_id == newest
    finished_newborn(province, store)  # new steps past the mark are still collected
    assert national.collect(session, vault, send=False, now=later) > 0


def test_each_day_is_reconciled_once_and_kept_in_the_audit_log(
    province: Province, store: object, sessions: sessionmaker[Session]
) -> None:
    journey(province, store)
    session, vault = province.session, province.vault
    made = national.collect(session, vault, send=True)
    session.commit()
    kid, key = sm2_key(session, vault)
    with serving(receiver_app(lambda asked: key.public_key if asked == kid else None)) as base:
        url = f"{base}/reports"
        send_all(sessions, province, url)
        tomorrow = beijing_today() + timedelta(days=1)  # today is then "yesterday"
        session.expire_all()
        result = national.reconcile_yesterday(session, url, tomorrow)
        assert result is not None and result.mismatched == [] and result.refused == []
        assert national.reconcile_yesterday(session, url, tomorrow) is None  # once a day
    entry = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "national.reconciled")
    ).one()
    assert sum(entry.details["theirs"].values()) == made
