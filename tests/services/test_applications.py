"""Applying once for a chain: answers, prefill, one merged form, materials, submission, the
fan-out to departments, 秒批, and every refusal naming its field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from qilu.audit.models import AuditEvent
from qilu.codes.idcard import parse_id_number
from qilu.errors import QiluError
from qilu.filestore import LocalFileStore
from qilu.services import applications, cases
from qilu.services.chains import NotEligible
from qilu.services.licences import licences_of
from qilu.services.models import Application, Case, Licence, ServiceChain
from qilu.workdays import beijing_today

from .conftest import Province

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 64


def chain_code(province: Province, name: str) -> str:
    return province.session.scalars(
        select(ServiceChain.code).where(ServiceChain.name == name, ServiceChain.is_current)
    ).one()


def values_born(application: Application) -> str:
    return str(application.form["child_birth_date"])


def newborn(province: Province, store: LocalFileStore, **form: str) -> Application:
    started = applications.start(
        province.session,
        province.vault,
        applicant=province.resident,
        chain_code=chain_code(province, "新生儿出生"),
        answers={"born_in_shandong": "yes", "medical": "yes"},
    )
    application = started.application
    birth = (beijing_today() - timedelta(days=3)).isoformat()
    values = {
        "child_name": "王小宝",
        "child_sex": "男",
        "child_birth_date": birth,
        "birth_place": "山东省立医院",
        "mother_name": "王丽",
        "father_name": "张伟",
        "bank_account": "6222020200112233445",
        "bank_name": "中国工商银行",
    } | form
    applications.save_draft(province.session, application, values)
    applications.add_upload(
        province.session,
        store,
        application,
        "照片",
        file_name="photo.png",
        content_type="image/png",
        content=PNG,
    )
    return application


@pytest.fixture
def store(tmp_path) -> LocalFileStore:  # type: ignore[no-untyped-def]
    return LocalFileStore(tmp_path / "files")


def test_the_form_is_prefilled_from_the_library_and_the_read_is_logged(
    province: Province,
) -> None:
    started = applications.start(
        province.session,
        province.vault,
        applicant=province.resident,
        chain_code=chain_code(province, "新生儿出生"),
        answers={"born_in_shandong": "yes", "medical": "yes"},
    )
    form = started.application.form
    assert form["applicant_name"] == "王丽"
    assert form["applicant_id_number"] == province.resident_id_number
    assert form["phone"] == "13900001111"
    assert form["address"] == "山东省济南市历下区泉城路8号"
    assert set(started.application.prefilled) == {
        "applicant_name",
        "applicant_id_number",
        "phone",
        "address",
    }
    read = province.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "data.read")
    ).one()
    assert read.details["resource"] == "JC-RK-001"
    assert "预填" in read.details["purpose"]


def test_one_form_asks_each_fact_once_and_materials_are_merged(province: Province) -> None:
    plan = applications.start(
        province.session,
        province.vault,
        applicant=province.resident,
        chain_code=chain_code(province, "新生儿出生"),
        answers={"born_in_shandong": "yes", "medical": "yes"},
    ).plan
    keys = [f.key for f in plan.fields]
    assert len(keys) == len(set(keys))
    assert plan.fields_saved > 10  # six items would have asked name, ID number … six times
    names = [m.material.name for m in plan.materials]
    assert len(names) == len(set(names)) and plan.materials_saved > 0
    assert [p.item.name for p in plan.items] == [
        "出生医学证明签发",
        "出生登记",
        "预防接种证办理",
        "城乡居民基本医疗保险参保登记",
        "社会保障卡申领",
        "育儿补贴申领",
    ]


def test_answers_choose_the_items(province: Province) -> None:
    plan = applications.start(
        province.session,
        province.vault,
        applicant=province.resident,
        chain_code=chain_code(province, "新生儿出生"),
        answers={"born_in_shandong": "yes", "medical": "no"},
    ).plan
    assert "社会保障卡申领" not in [p.item.name for p in plan.items]


def test_an_exit_answer_explains_why_and_writes_nothing(province: Province) -> None:
    before = province.session.scalar(select(func.count()).select_from(Application))
    with pytest.raises(NotEligible) as refused:
        applications.start(
            province.session,
            province.vault,
            applicant=province.resident,
            chain_code=chain_code(province, "新生儿出生"),
            answers={"born_in_shandong": "否", "medical": "yes"},
        )
    assert "省外出生" in refused.value.explanation
    assert refused.value.field == "answers.born_in_shandong"
    assert province.session.scalar(select(func.count()).select_from(Application)) == before


def test_a_missing_answer_names_the_question(province: Province) -> None:
    with pytest.raises(QiluError) as refused:
        applications.start(
            province.session,
            province.vault,
            applicant=province.resident,
            chain_code=chain_code(province, "新生儿出生"),
            answers={"born_in_shandong": "yes"},
        )
    assert refused.value.field == "answers.medical"


def test_newborn_chain_runs_by_instant_approval_in_dependency_order(
    province: Province, store: LocalFileStore
) -> None:
    application = newborn(province, store)
    applications.submit(
        province.session, province.vault, application, actor_person_id=province.resident.id
    )
    states = {c.item.name: c.state for c in application.cases}
    assert states == {
        "出生医学证明签发": "done",
        "出生登记": "done",
        "预防接种证办理": "done",
        "城乡居民基本医疗保险参保登记": "done",
        "社会保障卡申领": "submitted",  # 制卡 needs a person
        "育儿补贴申领": "done",
    }
    hukou = next(c for c in application.cases if c.item.name == "出生登记")
    assert hukou.instant and hukou.findings["approved"]
    assert "出生医学证明已核验" in hukou.findings["reason"]
    assert application.status == "in_progress"
    licence = province.session.scalars(
        select(Licence).where(Licence.licence_type == "出生医学证明")
    ).one()
    # The certificate is the child's (with the 预赋码 ID number), kept in the mother's wallet.
    assert licence.holder_name == "王小宝" and licence.content["child_name"] == "王小宝"
    child_id = parse_id_number(licence.content["child_id_number"])
    assert child_id.sex == "M" and child_id.birth_date.isoformat() == values_born(application)
    assert licence.holder_code_index == province.vault.blind_index(child_id.number, "id_number")
    assert licence.keeper_code_index == province.resident.id_number_index
    assert [h.number for h in licences_of(province.session, (province.resident.id_number_index,))]
    steps = cases.steps_of(province.session, hukou.id)
    assert [s.action for s in steps] == ["submit", "release", "accept", "review", "grant", "finish"]
    assert all(s.actor_person_id is None for s in steps[1:])


def test_a_late_registration_goes_to_a_person_with_the_findings(
    province: Province, store: LocalFileStore
) -> None:
    late = (beijing_today() - timedelta(days=40)).isoformat()
    application = newborn(province, store, child_birth_date=late)
    applications.submit(
        province.session, province.vault, application, actor_person_id=province.resident.id
    )
    hukou = next(c for c in application.cases if c.item.name == "出生登记")
    assert hukou.state == "submitted" and not hukou.instant
    assert hukou.findings["reason"] == "超过一个月申报，需说明原因并人工审核"
    assert {"label": "出生天数", "value": 40, "known": True} in hukou.findings["findings"]


def test_every_problem_of_the_form_is_reported_and_nothing_is_submitted(
    province: Province, store: LocalFileStore
) -> None:
    application = newborn(province, store, child_birth_date="2026-13-40", child_sex="未知")
    application.form = {**application.form, "mother_name": ""}
    with pytest.raises(QiluError) as refused:
        applications.submit(
            province.session, province.vault, application, actor_person_id=province.resident.id
        )
    problems = {p["field"]: p["reason"] for p in refused.value.details["problems"]}
    assert problems["form.child_birth_date"] == "新生儿出生日期须为日期（年-月-日）"
    assert problems["form.child_sex"] == "新生儿性别须为：男、女"
    assert problems["form.mother_name"] == "请填写母亲姓名"
    assert application.status == "draft"
    assert province.session.scalar(select(func.count()).select_from(Case)) == 0


def test_a_missing_upload_is_named_and_a_promise_lets_it_through(
    province: Province, store: LocalFileStore
) -> None:
    started = applications.start(
        province.session,
        province.vault,
        applicant=province.resident,
        chain_code=chain_code(province, "新生儿出生"),
        answers={"born_in_shandong": "yes", "medical": "yes"},
    )
    application = started.application
    applications.save_draft(
        province.session,
        application,
        {
            "child_name": "王小宝",
            "child_sex": "男",
            "child_birth_date": beijing_today().isoformat(),
            "birth_place": "医院",
            "mother_name": "王丽",
            "father_name": "张伟",
            "bank_account": "62220202",
            "bank_name": "工行",
        },
    )
    with pytest.raises(QiluError) as refused:
        applications.submit(
            province.session, province.vault, application, actor_person_id=province.resident.id
        )
    assert refused.value.field == "materials.照片"
    applications.promise(province.session, application, "照片")
    applications.submit(
        province.session, province.vault, application, actor_person_id=province.resident.id
    )
    assert application.status == "in_progress"


def test_uploads_are_checked_for_type_and_count(province: Province, store: LocalFileStore) -> None:
    application = newborn(province, store)
    with pytest.raises(QiluError) as refused:
        applications.add_upload(
            province.session,
            store,
            application,
            "照片",
            file_name="photo.exe",
            content_type="application/octet-stream",
            content=b"MZ",
        )
    assert (refused.value.code, refused.value.field) == ("services.file_type", "materials.照片")
    with pytest.raises(QiluError) as refused:
        applications.add_upload(
            province.session,
            store,
            application,
            "照片",
            file_name="again.png",
            content_type="image/png",
            content=PNG,
        )
    assert refused.value.code == "services.file_count"
    with pytest.raises(QiluError) as refused:
        applications.add_upload(
            province.session,
            store,
            application,
            "营业执照",
            file_name="a.pdf",
            content_type="application/pdf",
            content=b"%PDF",
        )
    assert refused.value.code == "services.material_unknown"


def test_submitting_twice_makes_one_set_of_cases(province: Province, store: LocalFileStore) -> None:
    application = newborn(province, store)
    first = applications.submit(
        province.session, province.vault, application, actor_person_id=province.resident.id
    )
    count = province.session.scalar(select(func.count()).select_from(Case))
    stale = province.session.get(Application, application.id)
    assert stale is not None
    stale.status, stale.version = "draft", 1  # what a second tab still believes
    province.session.expire(stale)  # … while the row says otherwise
    second = applications.submit(
        province.session, province.vault, application, actor_person_id=province.resident.id
    )
    assert second.id == first.id
    assert province.session.scalar(select(func.count()).select_from(Case)) == count


def test_the_same_start_form_twice_makes_one_draft(province: Province) -> None:
    arguments = dict(
        applicant=province.resident,
        chain_code=chain_code(province, "新生儿出生"),
        answers={"born_in_shandong": "yes", "medical": "yes"},
        submission_key="k-123",
    )
    first = applications.start(province.session, province.vault, **arguments).application
    second = applications.start(province.session, province.vault, **arguments).application
    assert first.id == second.id


def test_a_licence_the_applicant_holds_spares_the_material(
    province: Province, store: LocalFileStore
) -> None:
    application = newborn(province, store)
    applications.submit(
        province.session, province.vault, application, actor_person_id=province.resident.id
    )
    # Later, 育儿补贴 alone: its 出生医学证明 now comes from the licence just issued.
    from qilu.services.models import ServiceItem

    item = province.session.scalars(
        select(ServiceItem).where(ServiceItem.name == "育儿补贴申领", ServiceItem.is_current)
    ).one()
    started = applications.start(
        province.session, province.vault, applicant=province.resident, item_code=item.code
    )
    statuses = applications.material_statuses(
        province.session,
        started.application,
        started.plan,
        (province.resident.id_number_index,),
        beijing_today(),
    )
    certificate = next(s for s in statuses if s.name == "出生医学证明")
    assert certificate.source == "licence" and certificate.licence_id is not None


def test_an_enterprise_hands_in_no_business_licence(province: Province) -> None:
    """Issue 13: 营业执照 had to be uploaded although the guide says 可免提交 and the
    enterprise's registration is in the legal-entity library."""
    from qilu.services.applications import material_statuses, plan_of, wallet_of
    from qilu.workdays import beijing_today

    representative = province.resident
    entity = province.enterprise(representative)
    started = applications.start(
        province.session,
        province.vault,
        applicant=representative,
        entity=entity,
        chain_code=chain_code(province, "开办餐饮店"),
        answers={"area": "big", "scope": "yes", "signboard": "no"},
    )
    application = started.application
    statuses = material_statuses(
        province.session,
        application,
        plan_of(province.session, application),
        wallet_of(province.session, province.vault, application),
        beijing_today(),
    )
    licence = next(s for s in statuses if s.name == "营业执照")
    assert licence.source == "library" and "免提交" in licence.detail


def test_twins_get_two_pre_assigned_numbers(province: Province, store: LocalFileStore) -> None:
    for name in ("王小宝", "王小贝"):
        twin = newborn(province, store, child_name=name)
        applications.submit(
            province.session, province.vault, twin, actor_person_id=province.resident.id
        )
    numbers = province.session.scalars(
        select(Licence.content).where(Licence.licence_type == "出生医学证明")
    ).all()
    ids = [parse_id_number(c["child_id_number"]) for c in numbers]
    assert len({i.number for i in ids}) == 2 and all(i.sex == "M" for i in ids)
