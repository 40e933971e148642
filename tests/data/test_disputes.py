"""数据异议: the person a record is about, or a consuming department, disputes fields of it;
every reader sees the flag; the provider answers by the working-day deadline — the record
stands, is corrected through the loader (history and feed kept), or the dispute is refused with
a reason — and is reminded, then escalated to the 大数据局; the disputer hears of the answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.data import disputes, feed, reading, sharing
from qilu.data.catalog import get_resource, install_standard_catalog
from qilu.data.loading import find_record, load_rows
from qilu.data.models import DataRecord, Dispute, RecordChange
from qilu.errors import QiluError
from qilu.identity.models import Person
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.roles import OPERATOR
from qilu.identity.service import find_person
from qilu.messages.models import Message
from qilu.pii import Vault
from qilu.workdays import add_working_days, beijing_today

from ..factories import make_person, make_service_client, make_staff
from ..identity.test_pages import ID, csrf, register

CONSUMER = "370102-approval"
STEWARD_ID = "370102199003073516"
OVERSEER_ID = "370102198001010015"


def person_row(**changes: str) -> dict[str, Any]:
    return {
        "id_number": ID,
        "name": "王芳",
        "sex": "2",
        "birth_date": "1949-12-31",
        "household_division": "370102",
        "address": "历下区泉城路 1 号",
        **changes,
    }


@pytest.fixture
def world(session: Session, vault: Vault, departments: None) -> dict[str, Any]:
    """A resident with a population record; a steward at its provider and at the 大数据局;
    a consuming department with a grant."""
    install_standard_catalog(session)
    load_rows(session, vault, "JC-RK-001", [(1, person_row())], source="t", actor=OPERATOR)
    resident = find_person(session, vault, ID)  # the load made the identity register's entry
    assert resident is not None
    steward = make_person(session, vault, name="李强", id_number=STEWARD_ID)
    make_staff(session, steward, "370000-public_security", "data_steward")
    overseer = make_person(session, vault, name="赵磊", id_number=OVERSEER_ID)
    make_staff(session, overseer, sharing.OVERSEER, "data_steward")
    asked = sharing.request_access(
        session, "JC-RK-001", consumer=CONSUMER, fields=["id_number", "name", "address"],
        clear_fields=["name", "address"], may_list=True, purpose="户籍业务核验", legal_basis="依据",
        valid_until=datetime.now(UTC) + timedelta(days=30), actor=OPERATOR,
        now=datetime.now(UTC) - timedelta(minutes=1),
    )  # fmt: skip
    sharing.decide(session, asked.id, approve=True, reason="同意", actor=OPERATOR)
    system = ServiceCaller.of(make_service_client(session, CONSUMER).client)
    return {"resident": resident, "steward": steward, "overseer": overseer, "system": system}


def inbox(session: Session, person: Person) -> list[str]:
    return [m.title for m in session.scalars(select(Message).where(Message.person_id == person.id))]


def staff(session: Session, person: Person) -> Any:
    from qilu.identity import roles

    return roles.staff(session, person.id)


def test_a_resident_disputes_their_record_and_every_reader_sees_the_flag(
    session: Session, vault: Vault, world: dict[str, Any]
) -> None:
    made = disputes.raise_by_person(
        session, vault, world["resident"], "JC-RK-001", ["address"], "住址应为历下区泉城路 2 号"
    )
    assert made.status == "open" and made.fields == ["address"]
    assert made.due_on == add_working_days(beijing_today(), disputes.DAYS)
    assert "人口基础信息有一条数据异议待核实" in inbox(session, world["steward"])
    answer = reading.lookup(session, vault, world["system"], "JC-RK-001", ID)
    assert answer.records[0].disputed == ["address"]
    assert get_resource(session, "JC-RK-001").disputes_open == 1
    (raised,) = session.scalars(select(AuditEvent).where(AuditEvent.action == "data.disputed"))
    assert raised.details["fields"] == ["address"] and "泉城路" not in str(raised.details)
    with pytest.raises(QiluError) as twice:
        disputes.raise_by_person(
            session, vault, world["resident"], "JC-RK-001", ["name"], "姓名写错了一个字"
        )
    assert twice.value.code == "dispute.already_open"


@pytest.mark.parametrize(
    ("fields", "claim", "code"),
    [
        ([], "住址写错了", "dispute.fields"),
        (["nonsense"], "住址写错了", "dispute.fields"),
        (["address"], "错", "dispute.claim"),
    ],
)
def test_a_dispute_names_real_fields_and_says_what_is_wrong(
    session: Session,
    vault: Vault,
    world: dict[str, Any],
    fields: list[str],
    claim: str,
    code: str,
) -> None:
    with pytest.raises(QiluError) as refused:
        disputes.raise_by_person(session, vault, world["resident"], "JC-RK-001", fields, claim)
    assert refused.value.code == code
    assert session.scalars(select(Dispute)).all() == []


def test_a_correction_goes_through_the_loader_with_its_history_and_tells_the_disputer(
    session: Session, vault: Vault, world: dict[str, Any]
) -> None:
    made = disputes.raise_by_person(
        session, vault, world["resident"], "JC-RK-001", ["address"], "住址应为历下区泉城路 2 号"
    )
    steward = staff(session, world["steward"])
    with pytest.raises(QiluError) as outside:
        disputes.answer(
            session, vault, made.id, outcome="corrected", reason="",
            corrections={"name": "王芳芳"}, actor=steward,
        )  # fmt: skip
    assert outside.value.code == "dispute.corrections"
    with pytest.raises(QiluError) as bad:
        disputes.answer(
            session, vault, made.id, outcome="corrected", reason="",
            corrections={"address": "路" * 300}, actor=steward,
        )  # fmt: skip
    assert bad.value.code == "dispute.correction_invalid" and made.status == "open"
    disputes.answer(
        session, vault, made.id, outcome="corrected", reason="",
        corrections={"address": "历下区泉城路 2 号"}, actor=steward,
    )  # fmt: skip
    assert made.status == "corrected" and made.correction_load_id is not None
    assert find_record(session, vault, "JC-RK-001", [ID])["address"] == "历下区泉城路 2 号"
    stored = session.scalars(select(DataRecord)).one()
    assert stored.version == 2
    assert session.scalars(select(RecordChange)).one().load_id == made.correction_load_id
    page = feed.read_changes(session, vault, world["system"], "JC-RK-001", after=1)
    assert [c.data["address"] for c in page.changes] == ["历下区泉城路 2 号"]
    assert "您提出的数据异议：已更正" in inbox(session, world["resident"])
    assert get_resource(session, "JC-RK-001").disputes_open == 0
    assert (
        reading.lookup(session, vault, world["system"], "JC-RK-001", ID).records[0].disputed == []
    )


def test_only_the_providers_steward_answers_and_a_refusal_states_its_reason(
    session: Session, vault: Vault, world: dict[str, Any]
) -> None:
    made = disputes.raise_by_person(
        session, vault, world["resident"], "JC-RK-001", ["name"], "姓名应为王芳芳"
    )
    with pytest.raises(QiluError) as stranger:
        disputes.answer(
            session, vault, made.id, outcome="confirmed", reason="核实无误",
            actor=staff(session, world["overseer"]),
        )  # fmt: skip
    assert stranger.value.code == "role.denied" or stranger.value.status_code == 403
    steward = staff(session, world["steward"])
    with pytest.raises(QiluError) as reasonless:
        disputes.answer(session, vault, made.id, outcome="rejected", reason="", actor=steward)
    assert reasonless.value.field == "reason"
    disputes.answer(
        session, vault, made.id, outcome="confirmed", reason="经核对户籍档案，姓名无误",
        actor=steward,
    )  # fmt: skip
    assert made.status == "confirmed" and made.answer == "经核对户籍档案，姓名无误"
    assert find_record(session, vault, "JC-RK-001", [ID])["name"] == "王芳"
    assert "您提出的数据异议：核实无误" in inbox(session, world["resident"])


def test_a_dispute_near_its_deadline_is_reminded_then_escalated_once(
    session: Session, vault: Vault, world: dict[str, Any]
) -> None:
    made = disputes.raise_by_person(
        session, vault, world["resident"], "JC-RK-001", ["address"], "住址应为泉城路 2 号"
    )
    made.due_on = add_working_days(beijing_today(), 1)
    assert disputes.watch(session) == (1, 0)
    assert disputes.watch(session) == (0, 0)  # reminded once
    assert "人口基础信息的数据异议即将到期" in inbox(session, world["steward"])
    made.due_on = beijing_today() - timedelta(days=1)
    assert disputes.watch(session) == (0, 1)
    assert disputes.watch(session) == (0, 0)
    assert "人口基础信息的数据异议已超期未答复" in inbox(session, world["overseer"])
    assert made.escalated_at is not None and made.status == "open"


def test_a_consuming_department_disputes_through_the_api(
    client: TestClient, session: Session, vault: Vault, world: dict[str, Any]
) -> None:
    registered = make_service_client(session, CONSUMER)
    token = client.post(
        "/oidc/token",
        data={"grant_type": "client_credentials", "scope": "data.read"},
        auth=(registered.client.client_id, registered.secret),
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    body = {"key": ID, "fields": ["address"], "claim": "与本部门核验的住址不一致"}
    made = client.post("/api/v1/data/JC-RK-001/disputes", json=body, headers=headers)
    assert made.status_code == 201, made.text
    assert made.json()["fields"] == ["address"]
    shown = client.post("/api/v1/data/JC-RK-001/lookup", json={"key": ID}, headers=headers)
    assert shown.json()["records"][0]["disputed"] == ["address"]
    beyond = {**body, "fields": ["sex"]}
    refused = client.post("/api/v1/data/JC-RK-001/disputes", json=beyond, headers=headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "sharing.field_not_granted"


def test_a_resident_disputes_on_my_data_and_what_was_typed_is_kept(
    client: TestClient, session: Session, world: dict[str, Any]
) -> None:
    register(client)
    session.commit()  # to the test's savepoint: a refused post rolls back its own work only
    page = client.get("/account/data")
    assert 'data-dispute-resource="JC-RK-001"' in page.text
    assert page.text.count('id="disputes"') == 1 and "<title>我的数据" in page.text
    missing = client.post(
        "/account/data/disputes",
        data={"resource": "JC-RK-001", "claim": "住址应为泉城路 2 号", "csrf_token": csrf(client)},
    )
    assert missing.status_code == 400 and "请选择有误的信息项" in missing.text
    assert "住址应为泉城路 2 号" in missing.text  # what was typed is kept
    sent = client.post(
        "/account/data/disputes",
        data={"resource": "JC-RK-001", "fields": ["address"], "claim": "住址应为泉城路 2 号",
              "csrf_token": csrf(client)},
    )  # fmt: skip
    assert sent.status_code == 200 and "待核实" in sent.text
    assert session.scalars(select(Dispute)).one().fields == ["address"]


def test_the_steward_answers_in_the_workbench(
    client: TestClient, session: Session, vault: Vault, world: dict[str, Any]
) -> None:
    made = disputes.raise_by_person(
        session, vault, world["resident"], "JC-RK-001", ["address"], "住址应为泉城路 2 号"
    )
    register(client, name="李强", id_number=STEWARD_ID)
    session.commit()  # a refused post rolls back its own work only
    waiting = client.get("/workbench/disputes")
    assert waiting.status_code == 200 and "住址应为泉城路 2 号" in waiting.text
    assert "历下区泉城路 1 号" in waiting.text  # the value now, beside the field
    wrong = client.post(
        f"/workbench/disputes/{made.id}",
        data={"outcome": "rejected", "reason": "", "csrf_token": csrf(client)},
    )
    assert wrong.status_code == 400 and "请写明核实情况或不予受理的理由" in wrong.text
    done = client.post(
        f"/workbench/disputes/{made.id}",
        data={"outcome": "corrected", "c.address": "历下区泉城路 2 号", "reason": "",
              "csrf_token": csrf(client)},
    )  # fmt: skip
    assert done.status_code == 200 and "没有待核实的数据异议" in done.text
    assert made.status == "corrected"
