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
    assert prepare_demo(engine, settings).client_id == summary.client_id


def test_the_demo_has_the_service_catalog_and_work_in_the_queues(tmp_path: Path) -> None:
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from qilu.services.models import Application, Case, ServiceChain

    settings = make_settings(tmp_path).model_copy(update={"demo_scale": 2000})
    engine = make_engine(settings)
    summary = prepare_demo(engine, settings)
    assert (summary.items, summary.chains) == (352, 133)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(ServiceChain)) == 133
        assert session.scalar(select(func.count()).select_from(Application)) >= 3
        waiting = session.scalar(
            select(func.count()).select_from(Case).where(Case.state == "submitted")
        )
        assert waiting and waiting >= 3
    assert "政务服务事项 352，一链办理 133" in summary.describe("http://127.0.0.1:8000")
    prepare_demo(engine, settings)  # reused: nothing is made twice
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Application)) >= 3
