"""Quality rules, contracts and retention: a provider's rules (range, cross-field, cross-resource)
checked on the newest records with the provider alerted below its threshold once a day; a
consumer's contract under its grant; records past their resource's 保存期限 removed with their
history and feed entries, one audit entry a batch, a disputed record kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.codes.uscc import make_uscc
from qilu.data import quality, retention
from qilu.data.catalog import get_resource, install_standard_catalog
from qilu.data.loading import load_rows
from qilu.data.models import DataChange, DataRecord, Dispute, RecordChange
from qilu.identity.roles import OPERATOR
from qilu.messages import service as messages
from qilu.pii import Vault

from ..factories import make_person, make_staff
from .test_feed import LI, WANG, _token, consumer, person

KNOWN, STRANGER = LI, "370102198001010015"  # 李强 is in the population library; the other not


def company(uscc: str, representative: str, established: str) -> dict[str, Any]:
    return {
        "uscc": uscc,
        "name": f"示例企业{uscc[-4:]}",
        "industry": "I",
        "division": "370102",
        "legal_representative": "某人",
        "legal_representative_id_number": representative,
        "established_on": established,
        "status": "存续",
    }


@pytest.fixture
def loaded(session: Session, vault: Vault, departments: None) -> None:
    install_standard_catalog(session)
    load_rows(
        session, vault, "JC-RK-001", enumerate([person(WANG), person(LI)], 1),
        source="t", actor=OPERATOR,
    )  # fmt: skip
    rows = [
        company(make_uscc("9", "1", "370102", "MA3C0001"), KNOWN, "2015-06-01"),
        company(make_uscc("9", "1", "370102", "MA3C0002"), STRANGER, "2001-01-01"),  # unknown
        company(make_uscc("9", "1", "370102", "MA3C0003"), KNOWN, "1900-01-01"),  # too early
    ]
    load_rows(session, vault, "JC-FR-001", enumerate(rows, 1), source="t", actor=OPERATOR)
    session.flush()


def test_rules_are_checked_on_the_records_and_the_provider_alerted_once_a_day(
    session: Session, vault: Vault, loaded: None
) -> None:
    steward = make_staff(
        session, make_person(session, vault, name="市场监管"), "370000-market_regulation",
        "data_steward",
    )  # fmt: skip
    check = quality.check_rules(session, vault, get_resource(session, "JC-FR-001"))
    assert check is not None
    known, founded = check.results
    assert (known["checked"], known["failed"]) == (3, 1)
    assert (founded["checked"], founded["failed"]) == (3, 1)
    assert check.passing == pytest.approx(1 / 3)
    assert quality.check_rules(session, vault, get_resource(session, "JC-KJ-001")) is None

    assert quality.watch(session, vault) == 1  # 33% < 98%
    assert quality.watch(session, vault) == 0  # once a day
    (alert,) = messages.inbox(session, steward.id)
    assert "低于阈值" in alert.title and "法定代表人须为人口库中的人员" in alert.body


def test_a_consumer_reads_its_contract_under_its_grant(
    session: Session, vault: Vault, loaded: None, client: TestClient
) -> None:
    consumer(session, rows={"household_division": "370102"})
    token = {"Authorization": _token(client, session)}
    answer = client.get("/api/v1/data/JC-RK-001/contract", headers=token)
    assert answer.status_code == 200, answer.text
    contract = answer.json()
    assert [f["name"] for f in contract["schema"]] == ["id_number", "name", "household_division"]
    masked = {f["name"]: f["masked"] for f in contract["schema"]}
    assert masked == {"id_number": True, "name": False, "household_division": False}
    assert contract["grant"]["rows"] == {"household_division": "370102"}
    assert contract["freshness"]["update_cycle"] == "每日" and not contract["freshness"]["overdue"]
    assert contract["quality"]["completeness"]["name"] == 1.0
    assert "sex" not in contract["quality"]["completeness"]  # not granted: not in the contract
    assert answer.headers["qilu-signature"]  # evidenced like every shared call
    other = client.get("/api/v1/data/ZT-SB-001/contract", headers=token)
    assert other.status_code == 403 and other.json()["error"]["code"] == "sharing.no_grant"


def test_records_past_their_period_go_with_their_history_and_a_disputed_one_stays(
    session: Session, vault: Vault, departments: None
) -> None:
    install_standard_catalog(session)  # 疫情防控人员信息 is kept 180 days after its last change
    rows = [{"id_number": number, "test_result": "阴性"} for number in (WANG, LI, STRANGER)]
    load_rows(session, vault, "ZX-YQ-001", enumerate(rows, 1), source="t", actor=OPERATOR)
    load_rows(
        session, vault, "ZX-YQ-001", enumerate([{**rows[0], "test_result": "阳性"}], 1),
        source="t", actor=OPERATOR,
    )  # fmt: skip
    resource = get_resource(session, "ZX-YQ-001")
    ids = list(
        session.scalars(
            select(DataRecord.id)
            .where(DataRecord.resource_id == resource.id)
            .order_by(DataRecord.id)
        )
    )
    old = datetime.now(UTC) - timedelta(days=200)
    session.execute(update(DataRecord).where(DataRecord.id.in_(ids[:2])).values(updated_at=old))
    session.add(
        Dispute(
            resource_id=resource.id, record_id=ids[1], fields=["test_result"], claim_cipher=b"x",
            raised_by_department_id=resource.provider_id, status="open", raised_at=old,
            due_on=old.date(),
        )
    )  # fmt: skip
    session.flush()
    assert retention.expire_records(session) == {"ZX-YQ-001": 1}
    left = set(session.scalars(select(DataRecord.id).where(DataRecord.resource_id == resource.id)))
    assert left == {ids[1], ids[2]}  # the old one went; the disputed one and the new one stay
    for table in (RecordChange, DataChange):
        gone = session.scalar(
            select(func.count()).select_from(table).where(table.record_id == ids[0])
        )
        assert gone == 0
    (entry,) = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "data.retention_expired")
    ).all()
    assert entry.details["records"] == 1 and entry.details["retention_days"] == 180
    assert retention.expire_records(session) == {}
