"""E-licences by the national standards (issue 16): the 电子证照标识 of GB/T 36903 from the
证照目录, states with their history (暂扣, 恢复, 变更, 延续, 注销), versions whose earlier seals
still verify, and every use recorded for the holder."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from qilu import seals
from qilu.codes import licence_ids
from qilu.errors import QiluError
from qilu.filestore import LocalFileStore
from qilu.identity.roles import OPERATOR, grant_role
from qilu.services import applications, licences, showing
from qilu.services.models import DepartmentKey, Licence, LicenceUse, ServiceItem
from qilu.workdays import beijing_today

from ..identity.test_pages import csrf
from .conftest import Province
from .test_results import certificate, finished_newborn
from .test_showing import signed_in_as


@pytest.fixture
def issued(province: Province, store: LocalFileStore) -> Licence:
    finished_newborn(province, store)
    return certificate(province)


def signed(licence: Licence) -> tuple[dict, str]:  # type: ignore[type-arg]
    return licences.document_of(licence, licence.issuer), licence.signature.hex()


def test_an_issued_licence_carries_its_national_identifier(
    province: Province, issued: Licence
) -> None:
    parsed = licence_ids.parse_identifier(issued.identifier or "")
    health = province.department("370000-health")  # defines 出生医学证明 (证照目录 seq 2)
    assert parsed.type_code == f"{health.uscc}002"
    assert (parsed.issuer_uscc, parsed.number, parsed.version) == (
        issued.issuer.uscc,
        issued.number,
        1,
    )
    document, _ = signed(issued)
    assert document["identifier"] == issued.identifier and document["version"] == 1
    events, _ = licences.history_of(province.session, issued)
    assert [e.action for e in events] == ["issue"]


def test_suspend_restore_and_revoke_with_reasons_and_history(
    province: Province, issued: Licence
) -> None:
    session, today = province.session, beijing_today()
    wallet = (issued.keeper_code_index or b"",)
    assert licences.find_held(session, wallet, "出生医学证明", today) is not None
    licences.suspend_licence(session, issued, reason="涉嫌信息不实，核查中", actor_person_id=None)
    assert licences.find_held(session, wallet, "出生医学证明", today) is None  # no 免提交
    assert licences.verify_number(session, issued.number, issued.signature.hex(), today).status == (
        "suspended"
    )
    with pytest.raises(QiluError) as refused:
        showing.show(session, issued, [])
    assert refused.value.code == "licence.not_valid"
    with pytest.raises(QiluError) as refused:
        licences.suspend_licence(session, issued, reason="再次", actor_person_id=None)
    assert refused.value.code == "licence.state" and "暂扣" in refused.value.message
    with pytest.raises(QiluError) as refused:
        licences.restore_licence(session, issued, reason=" ", actor_person_id=None)
    assert refused.value.code == "licence.reason"
    licences.restore_licence(session, issued, reason="核查无误", actor_person_id=None)
    assert licences.find_held(session, wallet, "出生医学证明", today) is not None
    licences.revoke_licence(session, issued, reason="重复签发", actor_person_id=None)
    assert (issued.state, issued.status) == ("revoked", "revoked")
    with pytest.raises(QiluError):
        licences.restore_licence(session, issued, reason="误操作", actor_person_id=None)
    session.flush()
    events, _ = licences.history_of(session, issued)
    assert [(e.action, e.from_state, e.to_state) for e in reversed(events)] == [
        ("issue", None, "valid"),
        ("suspend", "valid", "suspended"),
        ("restore", "suspended", "valid"),
        ("revoke", "valid", "revoked"),
    ]


def test_renewal_and_change_make_versions_and_earlier_seals_still_verify(
    province: Province, issued: Licence
) -> None:
    session, vault, today = province.session, province.vault, beijing_today()
    first, first_seal = signed(issued)
    first_identifier = issued.identifier
    licences.reissue_licence(
        session, vault, issued, "renew", reason="到期延续", actor_person_id=None, today=today,
        years=5,
    )  # fmt: skip
    assert issued.version == 2 and issued.valid_until == today.replace(year=today.year + 5)
    assert issued.identifier != first_identifier
    assert licence_ids.parse_identifier(issued.identifier or "").version == 2
    current, current_seal = signed(issued)
    assert licences.verify_document(session, current, current_seal, today).status == "valid"
    old = licences.verify_document(session, first, first_seal, today)
    assert old.status == "replaced" and "第 1 版" in old.reason and "延续" in old.reason
    assert licences.verify_number(session, issued.number, first_seal, today).status == "replaced"
    # A replaced version altered after the fact is a forgery, not a replaced version.
    tampered = {**first, "holder_name": "李四"}
    assert licences.verify_document(session, tampered, first_seal, today).status == "forged"

    licences.reissue_licence(
        session,
        vault,
        issued,
        "change",
        reason="更正新生儿姓名",
        actor_person_id=None,
        today=today,
        content={"child_name": "王小宝宝"},
    )
    assert issued.version == 3 and issued.content["child_name"] == "王小宝宝"
    for content in ({"nonsense": "1"}, {}):
        with pytest.raises(QiluError) as refused:
            licences.reissue_licence(
                session, vault, issued, "change", reason="x", actor_person_id=None, today=today,
                content=content,
            )  # fmt: skip
        assert refused.value.code == "licence.change_fields"
    with pytest.raises(QiluError) as refused:
        licences.reissue_licence(
            session, vault, issued, "change", reason="x", actor_person_id=None, today=today,
            content={"child_name": "王小宝宝"},
        )  # fmt: skip
    assert refused.value.code == "licence.unchanged"
    session.flush()
    events, _ = licences.history_of(session, issued)
    assert [(e.action, e.version) for e in events][:2] == [("change", 3), ("renew", 2)]


def test_a_licence_sealed_before_identifiers_keeps_verifying(
    province: Province, issued: Licence
) -> None:
    """Licences sealed before this release had no identifier in their document; the migration
    gives them one but leaves `version` empty, so their document and seal stay as they were."""
    session, today = province.session, beijing_today()
    issued.version = None
    key = session.get_one(DepartmentKey, issued.key_id)
    _, private = licences.department_key(session, province.vault, issued.issuer)
    assert private.public_key == key.public_key
    legacy = licences.document_of(issued, issued.issuer)
    assert "identifier" not in legacy
    issued.signature = private.sign(licences.canonical(legacy))
    assert seals.verify(key.algorithm, key.public_key, issued.signature, licences.canonical(legacy))
    verdict = licences.verify_document(session, legacy, issued.signature.hex(), today)
    assert verdict.status == "valid"


def test_every_use_is_recorded_for_the_holder(province: Province, issued: Licence) -> None:
    session, vault = province.session, province.vault
    item = session.scalars(
        select(ServiceItem).where(ServiceItem.name == "育儿补贴申领", ServiceItem.is_current)
    ).one()
    started = applications.start(session, vault, applicant=province.resident, item_code=item.code)
    form = {"child_name": "王小宝", "child_birth_date": issued.content["child_birth_date"]}
    form["bank_account"] = "6222020200001234567"
    applications.save_draft(session, started.application, form)
    submitted = applications.submit(
        session, vault, started.application, actor_person_id=province.resident.id
    )
    token, _ = showing.show(session, issued, ["holder_name"])
    showing.verify(session, token, issued.issued_at + timedelta(seconds=1))
    session.flush()
    _, uses = licences.history_of(session, issued)
    shown, used = uses
    assert used.application_id == submitted.id and used.department_id is not None
    assert "育儿补贴申领" in used.purpose and "出生医学证明" in used.purpose
    assert "同意调用" in used.authorisation
    assert shown.used_by.startswith("现场核验") and "持证人姓名" in shown.purpose
    assert session.scalars(select(LicenceUse)).all() == [used, shown]


def test_the_issuing_department_manages_its_licences_in_the_workbench(
    client: TestClient, province: Province, issued: Licence
) -> None:
    approver = province.official(f"{issued.issuer.code}", "approver", "卫健审批")
    signed_in_as(client, province, approver)
    listed = client.get("/workbench/licences", params={"q": issued.holder_name})
    assert listed.status_code == 200 and f"/workbench/licences/{issued.number}" in listed.text
    page = client.get(f"/workbench/licences/{issued.number}")
    assert page.status_code == 200 and (issued.identifier or "") in page.text
    path = f"/workbench/licences/{issued.number}"
    # No reason: refused next to the field, in Chinese, nothing changed.
    refused = client.post(
        path, data={"action": "renew", "years": "五", "reason": "到期", "csrf_token": csrf(client)}
    )
    assert refused.status_code == 400 and "请填写延续年限" in refused.text
    assert 'aria-describedby="years-error"' in refused.text and ">到期</textarea>" in refused.text
    refused = client.post(path, data={"action": "suspend", "csrf_token": csrf(client)})
    assert refused.status_code == 400 and "请写明暂扣原因" in refused.text
    province.session.refresh(issued)
    assert issued.current_state == "valid"
    done = client.post(
        path,
        data={"action": "suspend", "reason": "核查中", "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert done.status_code == 303
    province.session.refresh(issued)
    assert issued.current_state == "suspended"
    renamed = client.post(
        path,
        data={"action": "restore", "reason": "核查无误", "csrf_token": csrf(client)},
        follow_redirects=True,
    )
    assert renamed.status_code == 200 and "已恢复有效" in renamed.text
    # The holder sees the history on their own page; an approver of the issuing department
    # herself, she still cannot act on the licence she keeps.
    grant_role(
        province.session,
        person_id=province.resident.id,
        department_code=issued.issuer.code,
        role="approver",
        profile="standard",
        actor=OPERATOR,
    )
    signed_in_as(client, province, province.resident)
    mine = client.get(f"/account/licences/{issued.number}")
    assert "暂扣" in mine.text and "核查中" in mine.text and "用证记录" in mine.text
    own = client.post(
        path, data={"action": "suspend", "reason": "本人", "csrf_token": csrf(client)}
    )
    assert own.status_code == 403 and "不能办理本人持有的证照" in own.text
    # Another department's approver: the licence does not exist for them.
    other = province.official("370102-civil_affairs", "approver", "民政审批")
    signed_in_as(client, province, other)
    assert client.get(path).status_code == 404
    assert (
        client.post(
            path, data={"action": "revoke", "reason": "x", "csrf_token": csrf(client)}
        ).status_code
        == 404
    )


def test_a_suspended_licence_says_so_across_its_face(
    client: TestClient, province: Province, issued: Licence
) -> None:
    licences.suspend_licence(province.session, issued, reason="核查", actor_person_id=None)
    signed_in_as(client, province, province.resident)
    face = client.get(f"/account/licences/{issued.number}/face.svg").text
    assert "已暂扣" in face
    # The 43-character 办件编号 is shown whole, in smaller type.
    assert (issued.content["办件编号"] in face) and len(issued.content["办件编号"]) == 43
