from __future__ import annotations

from pathlib import Path

from qilu.codes.idcard import parse_id_number
from qilu.db import make_engine
from qilu.demo.service import prepare_demo

from ..conftest import make_settings


def test_demo_is_generated_once_then_reused(tmp_path: Path) -> None:
    settings = make_settings(tmp_path).model_copy(update={"demo_scale": 400})
    engine = make_engine(settings)
    first = prepare_demo(engine, settings)
    assert not first.reused
    assert first.residents == 400
    second = prepare_demo(engine, settings)
    assert second.reused
    assert (second.residents, second.entities) == (first.residents, first.entities)
    assert [i.id_number for i in second.identities] == [i.id_number for i in first.identities]


def test_demo_identities_are_real_records_of_each_role(tmp_path: Path) -> None:
    settings = make_settings(tmp_path).model_copy(update={"demo_scale": 400})
    summary = prepare_demo(make_engine(settings), settings)
    roles = [identity.role for identity in summary.identities]
    # At this scale only the first departments have staff; the county window is staffed from
    # about 16,000 residents on (every department gets its first post, province first).
    assert roles == ["居民", "法定代表人", "数据管理", "数据管理（人口库）"]
    for identity in summary.identities:
        assert parse_id_number(identity.id_number).number == identity.id_number
    assert "山东省大数据局" in summary.identities[2].note
    assert "山东省公安厅" in summary.identities[3].note  # the 人口 library's own steward
    text = summary.describe("http://127.0.0.1:8000")
    assert "http://127.0.0.1:8000/healthz" in text and "已生成合成数据" in text


def test_demo_accounts_sign_in_and_staff_hold_their_roles(tmp_path: Path) -> None:
    from sqlalchemy.orm import Session

    from qilu.demo.service import DEMO_PASSWORD
    from qilu.identity.accounts import authenticate
    from qilu.identity.roles import roles_of
    from qilu.pii import load_vault

    settings = make_settings(tmp_path).model_copy(update={"demo_scale": 20_000})
    engine = make_engine(settings)
    summary = prepare_demo(engine, settings)
    assert summary.client_id
    assert "--client-id " + summary.client_id in summary.describe("http://127.0.0.1:8000")
    clerk = next(i for i in summary.identities if i.role == "窗口受理")
    with Session(engine) as session, session.begin():
        result = authenticate(
            session,
            load_vault(settings),
            id_number=clerk.id_number,
            password=DEMO_PASSWORD,
            profile="standard",
            client_address="t",
        )
        assert "window_clerk" in {g.role for g in roles_of(session, result.account.person_id)}
        admin = next(i for i in summary.identities if i.role == "管理员")
        found = authenticate(
            session,
            load_vault(settings),
            id_number=admin.id_number,
            password=DEMO_PASSWORD,
            profile="standard",
            client_address="t",
        )
        assert {g.role for g in roles_of(session, found.account.person_id)} == {"admin"}
        # Issue 13: the enterprise was in 莱西市 and the newborn's 社保卡 case went to 奎文区,
        # where nobody could take them. Now every department a journey reaches is staffed.
        from qilu.demo.service import DEMO_COUNTY, journey_departments
        from qilu.identity.models import LegalEntity, Person

        vault = load_vault(settings)
        resident = next(i for i in summary.identities if i.role == "居民")
        person = (
            session.query(Person)
            .filter(Person.id_number_index == vault.blind_index(resident.id_number, "id_number"))
            .one()
        )
        assert person.household_division_code == DEMO_COUNTY
        uscc = next(i for i in summary.identities if i.role == "法定代表人").note[-19:-1]
        entity = session.query(LegalEntity).filter(LegalEntity.uscc == uscc).one()
        assert entity.division_code == DEMO_COUNTY
        reached = journey_departments(session)
        assert len(reached) >= 3
        approver = next(i for i in summary.identities if i.role == "审批")
        desk = {result.account.person_id: "window_clerk"}
        approving = authenticate(
            session,
            load_vault(settings),
            id_number=approver.id_number,
            password=DEMO_PASSWORD,
            profile="standard",
            client_address="t",
        )
        desk[approving.account.person_id] = "approver"
        for person_id, role in desk.items():
            held = {(g.department_id, g.role) for g in roles_of(session, person_id)}
            assert {(d.id, role) for d in reached} <= held
    assert prepare_demo(engine, settings).client_id == summary.client_id


def test_the_demo_has_the_service_catalog_and_work_in_the_queues(tmp_path: Path) -> None:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from qilu.services.models import Application, Case, ServiceChain

    settings = make_settings(tmp_path).model_copy(update={"demo_scale": 2000})
    engine = make_engine(settings)
    summary = prepare_demo(engine, settings)
    assert (summary.items, summary.chains) == (359, 136)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ServiceChain)) == 136
        assert session.scalar(select(func.count()).select_from(Application)) >= 3
        waiting = session.scalar(
            select(func.count()).select_from(Case).where(Case.state == "submitted")
        )
        assert waiting and waiting >= 3
        # Found: the queued 临时救助 cases went to 历下区民政局, where no demo account works.
        from qilu.demo.service import journey_departments

        staffed = {d.id for d in journey_departments(session)}
        queued = set(session.scalars(select(Case.department_id).where(Case.state == "submitted")))
        assert queued <= staffed
    assert "政务服务事项 359，一链办理 136" in summary.describe("http://127.0.0.1:8000")
    prepare_demo(engine, settings)  # reused: nothing is made twice
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Application)) >= 3


def test_the_readme_data_sharing_example_can_be_followed_with_the_demo(tmp_path: Path) -> None:
    """The README's data-sharing commands, as the demo's accounts: the 大数据局 steward asks,
    the 人口 library's own steward approves, the 大数据局 system reads the printed resident
    (issue 12: its department had no steward and its ID number was not in the data)."""
    from datetime import UTC, datetime, timedelta

    from fastapi.testclient import TestClient
    from sqlalchemy.orm import Session

    from qilu.data import sharing
    from qilu.identity.models import Person
    from qilu.identity.oidc_clients import register_service_client
    from qilu.identity.roles import OPERATOR, staff
    from qilu.pii import load_vault
    from qilu.web import create_app

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert "--department 370000-bigdata" in readme and "JC-RK-001/lookup" in readme
    settings = make_settings(tmp_path).model_copy(update={"demo_scale": 400})
    engine = make_engine(settings)
    summary = prepare_demo(engine, settings)
    by_role = {identity.role: identity for identity in summary.identities}
    vault = load_vault(settings)
    with Session(engine) as session, session.begin():

        def staff_of(role: str) -> object:
            index = vault.blind_index(by_role[role].id_number, "id_number")
            person = session.query(Person).filter(Person.id_number_index == index).one()
            return staff(session, person.id)

        asked = sharing.request_access(
            session,
            "JC-RK-001",
            consumer="370000-bigdata",
            fields=["id_number", "name"],
            purpose="核验居民身份",
            legal_basis="《山东省政务信息资源共享管理办法》",
            valid_until=datetime.now(UTC) + timedelta(days=30),
            actor=staff_of("数据管理"),
        )
        if asked.status == "pending":
            sharing.decide(
                session, asked.id, approve=True, reason="同意", actor=staff_of("数据管理（人口库）")
            )
        system = register_service_client(
            session, name="大数据局共享系统", department_code="370000-bigdata", actor=OPERATOR
        )
        client_id, secret = system.client.client_id, system.secret or ""
    with TestClient(create_app(settings)) as client:
        token = client.post(
            "/oidc/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
        ).json()["access_token"]
        answer = client.post(
            "/api/v1/data/JC-RK-001/lookup",
            json={"key": by_role["居民"].id_number},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text
    assert by_role["居民"].name[0] in str(answer.json())
    engine.dispose()
