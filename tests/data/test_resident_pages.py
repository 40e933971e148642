"""我的数据 in the portal: the data-use record shows who read the resident's data and why, and
consent to sensitive data is given and withdrawn there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.data import reading, sharing
from qilu.data.catalog import install_standard_catalog
from qilu.data.loading import load_rows
from qilu.data.models import Consent
from qilu.errors import QiluError
from qilu.identity.models import Person
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.roles import OPERATOR
from qilu.pii import Vault

from ..factories import make_person, make_service_client
from ..identity.test_pages import ID, csrf, register

NOW = datetime.now(UTC)
CONSUMER = "370102-approval"


def setup_health(session: Session, vault: Vault) -> ServiceCaller:
    install_standard_catalog(session)
    rows = [{"id_number": ID, "chronic_conditions": "糖尿病", "updated_on": "2026-11-01"}]
    load_rows(session, vault, "ZT-YL-001", enumerate(rows, 1), source="t", actor=OPERATOR)
    asked = sharing.request_access(
        session, "ZT-YL-001", consumer=CONSUMER, fields=["id_number", "chronic_conditions"],
        clear_fields=["chronic_conditions"], purpose="家庭医生签约慢病随访", legal_basis="依据",
        valid_until=NOW + timedelta(days=90), actor=OPERATOR, now=NOW - timedelta(minutes=1),
    )  # fmt: skip
    sharing.decide(session, asked.id, approve=True, reason="同意", actor=OPERATOR)
    return ServiceCaller.of(make_service_client(session, CONSUMER).client)


def test_a_resident_authorises_sees_the_reads_and_withdraws(
    client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    system = setup_health(session, vault)
    make_person(session, vault, name="王芳", id_number=ID)
    register(client)
    me = session.scalars(select(Person).where(Person.name == "王芳")).one()
    page = client.get("/account/data")
    assert page.status_code == 200 and "还没有部门使用过您的个人信息" in page.text
    assert 'data-option="ZT-YL-001:370102-approval"' in page.text
    until = (NOW + timedelta(days=30)).date().isoformat()
    given = client.post(
        "/account/data/consents",
        data={"resource": "ZT-YL-001", "consumer": CONSUMER, "purpose": "家庭医生签约慢病随访",
              "valid_until": until, "csrf_token": csrf(client)},
    )  # fmt: skip
    assert given.status_code == 200 and "已授权，至" in given.text
    answer = reading.lookup(session, vault, system, "ZT-YL-001", ID)
    assert answer.records[0].data["chronic_conditions"] == "糖尿病"
    consent = session.scalars(select(Consent).where(Consent.person_id == me.id)).one()
    withdrawn = client.post(
        f"/account/data/consents/{consent.id}/withdraw", data={"csrf_token": csrf(client)}
    )
    assert withdrawn.status_code == 200 and "已撤销授权" in withdrawn.text
    try:
        reading.lookup(session, vault, system, "ZT-YL-001", ID)
    except QiluError as refused:
        assert refused.code == "sharing.consent_missing"
    else:
        raise AssertionError("a read after withdrawal must be refused")
    record = client.get("/account/data").text
    assert record.count('data-use="data.read"') == 1
    assert record.count('data-use="data.read_refused"') == 1
    assert "未经您授权，已拒绝" in record and "家庭医生签约慢病随访" in record
    uses = record[record.index("数据使用记录") :]
    assert "历下区行政审批服务局" in uses and CONSUMER not in uses  # named, not coded
    assert "慢性病" in record  # the field, by its label


def test_a_consent_with_a_bad_date_is_refused_on_the_form(
    client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    setup_health(session, vault)
    make_person(session, vault, name="王芳", id_number=ID)
    register(client)
    session.commit()  # the refusal rolls back to here (the test's outer transaction stays)
    refused = client.post(
        "/account/data/consents",
        data={"resource": "ZT-YL-001", "consumer": CONSUMER, "purpose": "家庭医生签约慢病随访",
              "valid_until": "2020-01-01", "csrf_token": csrf(client)},
    )  # fmt: skip
    assert refused.status_code == 400 and "授权期限须在今天之后" in refused.text
    assert session.scalars(select(Consent)).all() == []
    assert 'data-option="ZT-YL-001:370102-approval"' in refused.text  # the form, to try again
