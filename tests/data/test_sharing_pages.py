"""Sharing in the workbench: a department's steward asks; the provider's steward approves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.data.catalog import install_standard_catalog
from qilu.data.models import DataResource, ShareGrant
from qilu.identity.models import Department, Person
from qilu.pii import Vault

from ..factories import make_person, make_staff
from ..identity.test_pages import ID, csrf, register

PROVIDER_ID = "370102199003073516"


def steward_of(session: Session, person: Person, department: str) -> None:
    make_staff(session, person, department, "data_steward")


def test_ask_then_the_providers_steward_approves_in_the_workbench(
    app: FastAPI, client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    install_standard_catalog(session)
    me = make_person(session, vault, name="王芳", id_number=ID)
    register(client)
    steward_of(session, me, "370102-approval")  # the consumer
    form = client.get("/workbench/sharing/requests/JC-RK-001")
    assert 'value="370102-approval"' in form.text and 'value="id_number"' in form.text
    until = (datetime.now(UTC) + timedelta(days=180)).date().isoformat()
    asked = client.post(
        "/workbench/sharing/requests/JC-RK-001",
        data={
            "consumer": "370102-approval",
            "fields": ["id_number", "name"],
            "purpose": "户籍业务办理时核验身份",
            "legal_basis": "《山东省政务信息资源共享管理办法》",
            "valid_until": until,
            "may_list": "yes",
            "row_field": "household_division",
            "row_value": "370102",
            "csrf_token": csrf(client),
        },
    )
    assert asked.status_code == 200 and "待我审批" not in asked.text
    grant = session.scalars(select(ShareGrant)).one()
    assert grant.status == "pending" and grant.fields == ["id_number", "name"]
    assert grant.may_list and grant.row_conditions == {"household_division": "370102"}
    own = client.post(
        f"/workbench/sharing/{grant.id}/decision",
        data={"decision": "approve", "reason": "符合条件", "csrf_token": csrf(client)},
    )
    assert own.status_code == 403 and grant.status == "pending"  # not a steward of the provider
    provider = make_person(session, vault, name="李强", id_number=PROVIDER_ID)
    steward_of(session, provider, "370000-public_security")
    with TestClient(app) as other:
        register(other, name="李强", id_number=PROVIDER_ID)
        waiting = other.get("/workbench/sharing").text
        assert "待我审批（1）" in waiting and "限户籍地行政区划为 370102" in waiting
        done = other.post(
            f"/workbench/sharing/{grant.id}/decision",
            data={"decision": "approve", "reason": "符合条件", "csrf_token": csrf(other)},
        )
    assert done.status_code == 200 and "待我审批" not in done.text
    assert grant.status == "granted" and "已批准" in client.get("/workbench/sharing").text


def test_a_refused_request_comes_back_with_what_was_typed(
    client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    install_standard_catalog(session)
    me = make_person(session, vault, name="王芳", id_number=ID)
    register(client)
    steward_of(session, me, "370102-approval")
    session.commit()  # the refusal rolls its own request back, not this setup
    answer = client.post(
        "/workbench/sharing/requests/JC-RK-001",
        data={"consumer": "370102-approval", "fields": ["name"], "purpose": "核验",
              "valid_until": "2099-01-01", "csrf_token": csrf(client)},
    )  # fmt: skip
    assert answer.status_code == 400, answer.text[-1500:]
    assert 'value="核验"' in answer.text and 'value="name" checked' in answer.text
    assert "请写明使用目的" in answer.text  # by the field, in Chinese
    assert session.scalars(select(ShareGrant)).first() is None
    insured = client.get("/workbench/sharing/requests/ZT-SB-001").text
    assert "data-conditions" in insured and "用途限于：社保待遇" in insured
    outside = client.post(
        "/workbench/sharing/requests/ZT-SB-001",
        data={"consumer": "370102-approval", "fields": ["id_number", "insured"],
              "purpose": "办理人才引进资格核验", "legal_basis": "《社会保险法》",
              "may_list": "yes", "valid_until": "2099-01-01", "csrf_token": csrf(client)},
    )  # fmt: skip
    assert outside.status_code == 400
    assert "不符合共享条件：该资源只允许按主键逐条查询" in outside.text
    assert 'value="办理人才引进资格核验"' in outside.text
    assert session.scalars(select(ShareGrant)).first() is None


def test_a_refusal_without_its_rule_comes_back_with_the_error_and_the_reason_kept(
    app: FastAPI, client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    install_standard_catalog(session)
    provider = make_person(session, vault, name="李强", id_number=PROVIDER_ID)
    steward_of(session, provider, "370000-public_security")
    asker = make_person(session, vault, name="王芳", id_number=ID)
    steward_of(session, asker, "370102-approval")
    grant = ShareGrant(
        resource_id=session.scalars(
            select(DataResource.id).where(DataResource.code == "JC-RK-001")
        ).one(),
        consumer_id=session.scalars(
            select(Department.id).where(Department.code == "370102-approval")
        ).one(),
        fields=["id_number", "name"], purpose="户籍业务办理时核验身份", legal_basis="《办法》",
        valid_until=datetime.now(UTC) + timedelta(days=30), status="pending",
        requested_at=datetime.now(UTC), due_on=datetime.now(UTC).date(),
    )  # fmt: skip
    session.add(grant)
    register(client, name="李强", id_number=PROVIDER_ID)
    session.commit()  # a refused post rolls back to here, keeping the signed-in session
    page = client.get("/workbench/sharing").text
    assert "data-due" in page and "最小必要" in page  # the deadline and the rules to refuse on
    refused = client.post(
        f"/workbench/sharing/{grant.id}/decision",
        data={"decision": "refuse", "reason": "核验身份无需姓名", "csrf_token": csrf(client)},
    )
    assert refused.status_code == 400
    assert f'id="rule-{grant.id}-error"' in refused.text and "所依据的规则" in refused.text
    assert 'value="核验身份无需姓名"' in refused.text and grant.status == "pending"
    done = client.post(
        f"/workbench/sharing/{grant.id}/decision",
        data={
            "decision": "refuse",
            "rule": "not_needed",
            "reason": "核验身份无需姓名",
            "csrf_token": csrf(client),
        },
    )
    assert done.status_code == 200 and grant.status == "refused"
    with TestClient(app) as other:
        register(other)
        mine = other.get("/workbench/sharing").text
    assert "data-rule" in mine and "最小必要" in mine and "核验身份无需姓名" in mine
