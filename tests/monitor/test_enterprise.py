"""企业监测报警 (issue 15): an enterprise sees the alarms on its own devices, and only those, and
explains one (kept in the alarm's history, told to whoever handles it); a short or foreign
explanation is refused with the field and reason, on the page with what was typed kept."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.errors import NotFound, QiluError
from qilu.identity import sessions
from qilu.identity.access import SESSION_COOKIE
from qilu.messages.models import Message
from qilu.monitor import devices, dispatch, hj212, rules
from qilu.monitor.bus import take
from qilu.monitor.ingest import Received
from qilu.monitor.models import Alarm, AlarmEvent
from qilu.pii import Vault

from ..factories import make_account, make_entity, make_person

CSRF = "test-csrf-token"


def alarmed_stack(session: Session, code: str, owner: str | None) -> Alarm:
    rules.install(session, replace=False)
    spec = devices.DeviceSpec("hj212", code, "pollution_source", f"排口 {code}", "370102", 60,
                              owner)  # fmt: skip
    devices.register(session, spec)
    raw = hj212.encode(
        cn="2051", mn=code, st="31", pw="123456", qn=None, data_time=datetime.now(UTC),
        values={"a21026-Avg": 120.0}, flags={"a21026": "N"},
    )  # fmt: skip
    take(session, [Received("hj212", "t", raw, hj212.decode(raw), datetime.now(UTC))])
    session.flush()
    return session.scalars(select(Alarm).order_by(Alarm.id.desc())).first()  # type: ignore[return-value]


def test_an_enterprise_sees_and_explains_only_its_own_alarms(
    session: Session, vault: Vault
) -> None:
    boss = make_person(session, vault, name="法人代表")
    entity = make_entity(session, boss)
    other = make_entity(session, make_person(session, vault, name="别家"), name="别家化工有限公司")
    own = alarmed_stack(session, "MN-OWN-1", entity.uscc)
    foreign = alarmed_stack(session, "MN-OTHER-1", other.uscc)
    responder = make_person(session, vault, name="处置人")
    own.assignee_person_id, own.state = responder.id, "dispatched"

    assert [o.alarm.id for o in dispatch.owned(session, entity.id)] == [own.id]
    with pytest.raises(QiluError) as short:
        dispatch.reply(session, boss.id, entity.id, own.id, "好")
    assert short.value.field == "note"
    with pytest.raises(NotFound):
        dispatch.reply(session, boss.id, entity.id, foreign.id, "已停炉检修，正在排查脱硫系统")
    dispatch.reply(session, boss.id, entity.id, own.id, "已停炉检修，正在排查脱硫系统")
    event = session.scalars(select(AlarmEvent).where(AlarmEvent.action == "enterprise_reply")).one()
    assert (event.alarm_id, event.actor_person_id) == (own.id, boss.id)
    told = session.scalars(select(Message).where(Message.person_id == responder.id)).one()
    assert "已停炉检修" in told.body and told.link == f"/monitor/alarms/{own.id}"
    [shown] = dispatch.owned(session, entity.id)
    assert [r.note for r in shown.replies] == ["已停炉检修，正在排查脱硫系统"]


def test_the_page_keeps_what_was_typed_and_says_why(
    session: Session, vault: Vault, client: TestClient
) -> None:
    boss = make_person(session, vault, name="法人代表")
    account = make_account(session, vault, boss)
    entity = make_entity(session, boss)
    alarm = alarmed_stack(session, "MN-PAGE-1", entity.uscc)
    cookie, browser = sessions.start_session(
        session, account, assurance=3, profile="standard", client_address="t", user_agent="t"
    )
    browser.acting_for_entity_id = entity.id
    session.commit()
    client.cookies.set(SESSION_COOKIE, cookie)
    client.cookies.set("qilu_csrf", CSRF)
    page = client.get("/monitor/enterprise")
    assert page.status_code == 200 and "排口 MN-PAGE-1" in page.text and "橙色" in page.text
    refused = client.post(
        f"/monitor/enterprise/{alarm.id}/reply", data={"csrf_token": CSRF, "note": "维修"[:1]}
    )
    assert refused.status_code == 400
    assert "请写明情况说明（至少 4 个字）" in refused.text and 'aria-invalid="true"' in refused.text
    assert ">维</textarea>" in refused.text  # what was typed is kept
    done = client.post(
        f"/monitor/enterprise/{alarm.id}/reply",
        data={"csrf_token": CSRF, "note": "脱硫塔浆液泵故障，已切换备用泵"},
        follow_redirects=True,
    )
    assert done.status_code == 200 and "企业说明" in done.text and "已切换备用泵" in done.text
