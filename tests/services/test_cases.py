"""Cases through their departments: role-scoped steps, one clerk per step, corrections that
stop the clock, dependent items waiting for a licence, 容缺 with a post-check, the blacklist
flag, and a case received in one city for another (全省通办)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qilu.codes import items as item_codes
from qilu.errors import QiluError, Refused
from qilu.identity import roles
from qilu.identity.models import LegalEntity, Person
from qilu.services import applications, cases
from qilu.services.models import Application, Case, Licence, ServiceChain, ServiceItem
from qilu.workdays import add_working_days, beijing_today

from .conftest import Province
from .test_showing import signed_in_as

RESTAURANT_FORM = {
    "business_premises": "山东省济南市历下区泉城路100号",
    "premises_area": "120",
    "business_scope": "热食类食品制售",
    "seats": "80",
    "signboard_text": "鑫华酒家",
    "signboard_size": "6x1.2",
    "reason": "增加餐饮服务经营范围",
}


def restaurant(province: Province, representative: Person, entity: LegalEntity) -> Application:
    code = province.session.scalars(
        select(ServiceChain.code).where(ServiceChain.name == "开办餐饮店", ServiceChain.is_current)
    ).one()
    started = applications.start(
        province.session,
        province.vault,
        applicant=representative,
        entity=entity,
        chain_code=code,
        answers={"area": "big", "scope": "no", "signboard": "yes"},
    )
    application = started.application
    applications.save_draft(province.session, application, RESTAURANT_FORM)
    promised = applications.promise_missing(province.session, province.vault, application)
    assert "经营场所平面图" in promised and "法定代表人身份证" not in promised  # that one is shared
    applications.submit(
        province.session, province.vault, application, actor_person_id=representative.id
    )
    return application


@pytest.fixture
def opened(province: Province) -> tuple[Application, Person, Person]:
    representative = province.resident
    entity = province.enterprise(representative)
    clerk = province.official("370102-approval", "window_clerk", "窗口甲")
    approver = province.official("370102-approval", "approver", "审批乙")
    return restaurant(province, representative, entity), clerk, approver


def case_named(application: Application, name: str) -> Case:
    return next(c for c in application.cases if c.item.name == name)


def test_the_restaurant_chain_fans_out_to_three_departments(
    opened: tuple[Application, Person, Person],
) -> None:
    application, _, _ = opened
    departments = {c.item.name: c.department.code for c in application.cases}
    assert departments == {
        "企业变更登记": "370102-approval",
        "食品经营许可": "370102-approval",
        "公众聚集场所投入使用营业前消防安全检查": "370102-emergency",
        "户外广告设施设置许可": "370102-approval",
        "城镇污水排入排水管网许可": "370102-approval",
    }
    food = case_named(application, "食品经营许可")
    assert food.state == "waiting"
    assert food.waits_for == [case_named(application, "企业变更登记").number]
    assert case_named(application, "公众聚集场所投入使用营业前消防安全检查").state == "submitted"


def test_every_case_carries_national_codes_and_a_national_number(
    province: Province, opened: tuple[Application, Person, Person]
) -> None:
    """实施编码 and 办件编号 in the GB/T 39554.1 layout: the department's USCC and level, the
    item's basic code; serials counted per implementation and day, across applications."""
    application, _, _ = opened
    today = beijing_today()
    for case in application.cases:
        code = item_codes.parse_implementation(case.implementation_code)
        assert code.agency_uscc == case.department.uscc
        assert code.use_level == "4"  # 历下区's departments are county-level
        assert str(code.basic) == case.item.code and len(case.item.code) == 12
        assert case.national_number is not None
        number = item_codes.parse_case_number(case.national_number)
        assert (str(number.implementation), number.accepted_on) == (case.implementation_code, today)
        assert number.serial == 1
    other = province.resident  # the same chain again: the same implementations, the next serial
    again = restaurant(province, other, province.enterprise(other))
    serials = {
        c.implementation_code: item_codes.parse_case_number(c.national_number or "").serial
        for c in again.cases
    }
    assert set(serials.values()) == {2}
    assert len({c.national_number for c in [*application.cases, *again.cases]}) == 10


def test_a_licence_waits_then_runs_and_the_clock_pauses_for_a_correction(
    province: Province, opened: tuple[Application, Person, Person]
) -> None:
    application, clerk, approver = opened
    session, vault = province.session, province.vault
    change = case_named(application, "企业变更登记")
    for action, who in (("accept", clerk), ("review", approver), ("grant", approver)):
        cases.act(
            session,
            vault,
            change.id,
            action,
            actor_person_id=who.id,
            expected_version=change.version,
        )
    food = case_named(application, "食品经营许可")
    assert food.state == "waiting"  # granted is not yet done
    cases.act(
        session,
        vault,
        change.id,
        "finish",
        actor_person_id=approver.id,
        expected_version=change.version,
    )
    session.refresh(food)
    assert food.state == "submitted"
    today = beijing_today()
    cases.act(
        session, vault, food.id, "accept", actor_person_id=clerk.id, expected_version=food.version
    )
    assert food.accepted_on == today and food.due_on == add_working_days(today, 5)
    cases.act(
        session,
        vault,
        food.id,
        "correct",
        actor_person_id=approver.id,
        expected_version=food.version,
        reason="平面图未标明加工区",
        redo=["material:经营场所平面图"],
    )
    session.refresh(application)
    assert (food.state, food.paused_since, application.status) == (
        "correcting",
        today,
        "correcting",
    )
    cases.resume(session, vault, food, actor_person_id=province.resident.id)
    assert food.state == "reviewing" and food.paused_since is None
    cases.act(
        session, vault, food.id, "grant", actor_person_id=approver.id, expected_version=food.version
    )
    licence = session.scalars(select(Licence).where(Licence.case_id == food.id)).one()
    assert licence.licence_type == "食品经营许可证" and licence.holder_kind == "enterprise"
    assert licence.valid_until == today.replace(year=today.year + 5)


def test_a_clerk_cannot_decide_and_an_approver_of_another_department_cannot_act(
    province: Province, opened: tuple[Application, Person, Person]
) -> None:
    application, clerk, _ = opened
    fire = case_named(application, "公众聚集场所投入使用营业前消防安全检查")
    with pytest.raises(Refused):
        cases.act(
            province.session,
            province.vault,
            fire.id,
            "accept",
            actor_person_id=clerk.id,
            expected_version=fire.version,
        )
    change = case_named(application, "企业变更登记")
    cases.act(
        province.session,
        province.vault,
        change.id,
        "accept",
        actor_person_id=clerk.id,
        expected_version=change.version,
    )
    with pytest.raises(Refused):
        cases.act(
            province.session,
            province.vault,
            change.id,
            "review",
            actor_person_id=clerk.id,
            expected_version=change.version,
        )


def test_two_clerks_cannot_both_take_one_step(
    province: Province, opened: tuple[Application, Person, Person]
) -> None:
    application, clerk, _ = opened
    other = province.official("370102-approval", "window_clerk", "窗口丙")
    change = case_named(application, "企业变更登记")
    seen = change.version
    cases.act(
        province.session,
        province.vault,
        change.id,
        "accept",
        actor_person_id=clerk.id,
        expected_version=seen,
    )
    with pytest.raises(QiluError) as refused:
        cases.act(
            province.session,
            province.vault,
            change.id,
            "not_accept",
            actor_person_id=other.id,
            expected_version=seen,
            reason="材料不全",
        )
    assert refused.value.code == "case.conflict"
    assert [s.action for s in cases.steps_of(province.session, change.id)] == ["submit", "accept"]


def test_a_database_level_race_is_caught_too(
    province: Province, opened: tuple[Application, Person, Person]
) -> None:
    application, clerk, _ = opened
    change = case_named(application, "企业变更登记")
    # Another transaction moved the row after this session read it.
    province.session.execute(
        Case.__table__.update().where(Case.id == change.id).values(version=change.version + 1)
    )
    with pytest.raises(QiluError) as refused:
        cases.act(
            province.session,
            province.vault,
            change.id,
            "accept",
            actor_person_id=clerk.id,
            expected_version=change.version,
        )
    assert refused.value.code == "case.conflict"


def test_refusing_a_prerequisite_ends_what_waits_for_it(
    province: Province, opened: tuple[Application, Person, Person]
) -> None:
    application, clerk, _ = opened
    change = case_named(application, "企业变更登记")
    cases.act(
        province.session,
        province.vault,
        change.id,
        "not_accept",
        actor_person_id=clerk.id,
        expected_version=change.version,
        reason="经营范围表述不规范",
    )
    food = case_named(application, "食品经营许可")
    province.session.refresh(food)
    assert food.state == "cancelled"
    with pytest.raises(QiluError) as refused:
        cases.act(
            province.session,
            province.vault,
            change.id,
            "not_accept",
            actor_person_id=clerk.id,
            expected_version=change.version,
            reason="x",
        )
    assert refused.value.code == "case.state"


def test_a_refusal_needs_a_reason(
    province: Province, opened: tuple[Application, Person, Person]
) -> None:
    application, clerk, _ = opened
    change = case_named(application, "企业变更登记")
    with pytest.raises(QiluError) as refused:
        cases.act(
            province.session,
            province.vault,
            change.id,
            "not_accept",
            actor_person_id=clerk.id,
            expected_version=change.version,
        )
    assert refused.value.field == "reason"


def test_accepting_with_a_promised_material_puts_the_case_in_the_post_check_queue(
    province: Province, opened: tuple[Application, Person, Person]
) -> None:
    application, clerk, _ = opened
    change = case_named(application, "企业变更登记")
    cases.act(
        province.session,
        province.vault,
        change.id,
        "accept",
        actor_person_id=clerk.id,
        expected_version=change.version,
        promise_missing=True,
    )
    assert change.post_check == "pending" and cases.PROMISED in change.flags


def test_a_blacklisted_applicant_is_flagged_and_never_approved_instantly(
    province: Province,
) -> None:
    province.library(
        "ZT-XY-001",
        [
            {
                "subject_code": province.resident_id_number,
                "subject_name": "王丽",
                "list_type": "黑名单",
                "reason": "拒不履行法院判决",
                "listed_on": "2026-01-05",
            }
        ],
    )
    item = province.session.scalars(
        select(ServiceItem).where(ServiceItem.name == "无犯罪记录证明开具", ServiceItem.is_current)
    ).one()
    application = applications.start(
        province.session, province.vault, applicant=province.resident, item_code=item.code
    ).application
    applications.save_draft(province.session, application, {"reason": "出国"})
    applications.submit(
        province.session, province.vault, application, actor_person_id=province.resident.id
    )
    (case,) = application.cases
    assert cases.BLACKLISTED in case.flags
    assert case.state == "submitted" and not case.instant
    assert "失信黑名单" in case.findings["reason"]


def test_a_walk_in_received_in_another_city_goes_to_the_competent_department(
    province: Province,
) -> None:
    qingdao_clerk = province.official("370202-approval", "window_clerk", "青岛窗口")
    receiving = province.department("370202-approval")
    item = province.session.scalars(
        select(ServiceItem).where(ServiceItem.name == "高龄津贴申领", ServiceItem.is_current)
    ).one()
    application = applications.start(
        province.session,
        province.vault,
        applicant=province.resident,
        item_code=item.code,
        channel="window",
        clerk_person_id=qingdao_clerk.id,
        receiving_department_id=receiving.id,
    ).application
    applications.save_draft(province.session, application, {"bank_account": "6222"})
    applications.submit(
        province.session, province.vault, application, actor_person_id=qingdao_clerk.id
    )
    (case,) = application.cases
    assert case.department.code == "370102-civil_affairs"
    assert case.receiving_department_id == receiving.id
    # The receiving window does the formal check (受理); the competent one decides.
    cases.act(
        province.session,
        province.vault,
        case.id,
        "accept",
        actor_person_id=qingdao_clerk.id,
        expected_version=case.version,
    )
    with pytest.raises(Refused):
        cases.act(
            province.session,
            province.vault,
            case.id,
            "review",
            actor_person_id=qingdao_clerk.id,
            expected_version=case.version,
        )


def test_an_item_not_handled_province_wide_is_refused_at_another_citys_window(
    province: Province,
) -> None:
    clerk = province.official("370202-approval", "window_clerk", "青岛窗口")
    entity = province.enterprise(province.resident)
    item = province.session.scalars(
        select(ServiceItem).where(ServiceItem.name == "剧毒化学品购买许可", ServiceItem.is_current)
    ).one()
    with pytest.raises(QiluError) as refused:
        applications.start(
            province.session,
            province.vault,
            applicant=province.resident,
            entity=entity,
            item_code=item.code,
            channel="window",
            clerk_person_id=clerk.id,
            receiving_department_id=province.department("370202-approval").id,
        )
    assert refused.value.code == "services.not_province_wide"
    assert province.session.scalar(select(func.count()).select_from(Application)) == 0


def test_a_submitted_case_keeps_its_item_version_after_an_edit(
    province: Province, opened: tuple[Application, Person, Person]
) -> None:
    from qilu.services.catalog import change_item

    application, _, _ = opened
    food = case_named(application, "食品经营许可")
    admin = province.official("370000-bigdata", "admin", "管理员")
    change_item(
        province.session,
        food.item.code,
        {"promised_days": 3},
        actor=roles.staff(province.session, admin.id),
        note="承诺时限压缩",
    )
    province.session.refresh(food)
    assert food.item.version == 1 and food.item.spec["promised_days"] == 5


def test_queues_show_each_tab_and_the_steps_each_person_may_take(
    province: Province, opened: tuple[Application, Person, Person]
) -> None:
    from qilu.identity import roles
    from qilu.services import queues

    application, clerk, approver = opened
    approval = province.department("370102-approval").id
    waiting = queues.queue(province.session, [approval], "accept")
    assert {c.item_name for c in waiting} == {
        "企业变更登记",
        "户外广告设施设置许可",
        "城镇污水排入排水管网许可",
    }
    change = case_named(application, "企业变更登记")
    clerk_grants = roles.staff(province.session, clerk.id)
    approver_grants = roles.staff(province.session, approver.id)
    assert queues.actions_for(change, clerk_grants) == ["accept", "not_accept"]
    assert queues.actions_for(change, approver_grants) == []
    cases.act(
        province.session,
        province.vault,
        change.id,
        "accept",
        actor_person_id=clerk.id,
        expected_version=change.version,
    )
    assert queues.actions_for(change, approver_grants) == ["review", "correct"]
    reviewing = queues.queue(province.session, [approval], "review")
    assert [c.id for c in reviewing] == [change.id] and reviewing[0].due_on is not None
    assert change.id not in [c.id for c in queues.queue(province.session, [approval], "accept")]
    tabs = ["accept", "review", "correcting", "finish", "done", "received", "postcheck"]
    assert queues.counts(province.session, [approval], tabs) == {
        "accept": 2,
        "review": 1,
        "correcting": 0,
        "finish": 0,
        "done": 0,
        "received": 0,
        "postcheck": 0,
    }
    # the enterprise applies (its representative is who signed in), and a search finds it
    entity = province.session.get_one(LegalEntity, application.entity_id)
    assert reviewing[0].entity_name == entity.name
    found = queues.queue(province.session, [approval], "accept", search="污水")
    assert [c.item_name for c in found] == ["城镇污水排入排水管网许可"]
    by_entity = queues.queue(province.session, [approval], "review", search=entity.name[:4])
    assert [c.id for c in by_entity] == [change.id]
    assert queues.queue(province.session, [approval], "accept", search="没有的事") == []
    # the time-limit filter: close to the limit, then past it
    due = change.due_on
    assert due is not None

    def on(day: date, filtered: str) -> list[int]:
        rows = queues.queue(province.session, [approval], "review", due=filtered, today=day)
        return [c.id for c in rows]

    assert on(due - timedelta(days=30), "soon") == [] and on(due, "soon") == [change.id]
    assert on(due, "late") == [] and on(due + timedelta(days=1), "late") == [change.id]
    assert on(due + timedelta(days=1), "soon") == []
    assert queues.first_tab(clerk_grants, [approval]) == "accept"
    assert queues.first_tab(approver_grants, [approval]) == "review"


def test_a_correction_answer_is_checked_like_a_submission(
    province: Province, opened: tuple[Application, Person, Person]
) -> None:
    application, clerk, approver = opened
    with pytest.raises(QiluError) as refused:
        applications.answer_correction(
            province.session,
            province.vault,
            application,
            {"premises_area": "130"},
            actor_person_id=province.resident.id,
        )
    assert refused.value.code == "services.not_correcting"
    change = case_named(application, "企业变更登记")
    for action, who in (("accept", clerk), ("correct", approver)):
        cases.act(
            province.session,
            province.vault,
            change.id,
            action,
            actor_person_id=who.id,
            expected_version=change.version,
            reason="变更决议缺少签字",
            redo=["field:reason"],
        )
    with pytest.raises(QiluError) as refused:
        applications.answer_correction(
            province.session,
            province.vault,
            application,
            {"premises_area": "一百"},
            actor_person_id=province.resident.id,
        )
    assert refused.value.field == "form.premises_area"
    assert change.state == "correcting"
    applications.answer_correction(
        province.session,
        province.vault,
        application,
        {"premises_area": "130"},
        actor_person_id=province.resident.id,
    )
    assert change.state == "reviewing" and application.form["premises_area"] == "130"


def test_nobody_takes_a_step_on_their_own_application(
    province: Province, opened: tuple[Application, Person, Person]
) -> None:
    from ..factories import make_staff

    application, _, _ = opened
    change = case_named(application, "企业变更登记")
    applicant = province.session.get_one(Person, application.applicant_person_id)
    make_staff(province.session, applicant, "370102-approval", "window_clerk")
    with pytest.raises(Refused) as own:
        cases.act(
            province.session,
            province.vault,
            change.id,
            "accept",
            actor_person_id=applicant.id,
            expected_version=change.version,
        )
    assert own.value.code == "role.own_request" and change.state == "submitted"


def test_the_queue_filters_by_one_of_the_viewers_own_departments(
    client: TestClient, province: Province, opened: tuple[Application, Person, Person]
) -> None:
    _, clerk, _ = opened
    roles.grant_role(
        province.session,
        person_id=clerk.id,
        department_code="370102-emergency",
        role="window_clerk",
        profile="standard",
        actor=roles.OPERATOR,
    )
    province.session.commit()
    signed_in_as(client, province, clerk)
    fire = "公众聚集场所投入使用营业前消防安全检查"
    both = client.get("/workbench/cases?tab=accept")
    assert fire in both.text and "城镇污水排入排水管网许可" in both.text
    assert 'id="department"' in both.text
    emergency = province.department("370102-emergency").id
    only = client.get(f"/workbench/cases?tab=accept&department={emergency}")
    assert fire in only.text and "城镇污水排入排水管网许可" not in only.text
    assert f'<option value="{emergency}" selected>' in only.text
    # A department the clerk does not work in filters nothing in: the queue stays theirs.
    elsewhere = province.department("370000-bigdata").id
    ignored = client.get(f"/workbench/cases?tab=accept&department={elsewhere}")
    assert fire in ignored.text and "城镇污水排入排水管网许可" in ignored.text
    late = client.get("/workbench/cases?tab=accept&due=late")
    assert late.status_code == 200 and fire not in late.text  # nothing accepted, no limit yet
