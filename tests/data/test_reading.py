"""Reads through the sharing API, in process: only granted fields, personal ones masked unless
granted in clear, consent for sensitive data, every read and refusal in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.audit.service import verify
from qilu.data import consent, reading, sharing
from qilu.data.catalog import FieldSpec, install_standard_catalog
from qilu.data.loading import load_rows
from qilu.data.masking import mask
from qilu.data.reading import SharingRefused
from qilu.errors import NotFound, QiluError
from qilu.identity.models import Department, Person
from qilu.identity.oidc_provider import ServiceCaller
from qilu.identity.roles import OPERATOR
from qilu.identity.service import audit_subject, find_person, person_subject
from qilu.pii import Vault

from ..factories import make_service_client

NOW = datetime.now(UTC)
WANG, LI, ZHAO = "11010519491231002X", "370102199003073516", "370102198001010015"
CONSUMER = "370102-approval"


@pytest.fixture
def catalog(session: Session, vault: Vault, departments: None) -> None:
    install_standard_catalog(session)
    people = [
        {"id_number": WANG, "name": "王芳", "sex": "2", "birth_date": "1949-12-31",
         "household_division": "370102", "phone": "13800138000"},
        {"id_number": LI, "name": "李强", "sex": "1", "birth_date": "1990-03-07",
         "household_division": "370102"},
        {"id_number": ZHAO, "name": "赵磊", "sex": "1", "birth_date": "1980-01-01",
         "household_division": "370103"},
    ]  # fmt: skip
    load_rows(session, vault, "JC-RK-001", enumerate(people, 1), source="t", actor=OPERATOR)
    health = [
        {"id_number": WANG, "chronic_conditions": "高血压", "allergies": "青霉素",
         "family_doctor": "刘医生", "updated_on": "2026-11-01"},
        {"id_number": LI, "chronic_conditions": "", "family_doctor": "孙医生",
         "updated_on": "2026-11-02"},
    ]  # fmt: skip
    load_rows(session, vault, "ZT-YL-001", enumerate(health, 1), source="t", actor=OPERATOR)


def caller(session: Session, department: str = CONSUMER) -> ServiceCaller:
    return ServiceCaller.of(make_service_client(session, department).client)


def grant(session: Session, code: str = "JC-RK-001", **changes: Any) -> Any:
    arguments: dict[str, Any] = {
        "consumer": CONSUMER,
        "fields": ["id_number", "name", "birth_date", "household_division", "phone"],
        "clear_fields": ["name"],
        "purpose": "办理户籍类政务服务事项时核验身份",
        "legal_basis": "《山东省政务信息资源共享管理办法》",
        "valid_until": NOW + timedelta(days=365),
        "actor": OPERATOR,
        "now": NOW - timedelta(minutes=1),
        **changes,
    }
    made = sharing.request_access(session, code, **arguments)
    if made.status == "pending":
        sharing.decide(session, made.id, approve=True, reason="同意", actor=OPERATOR)
    return made


def entries(session: Session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_a_lookup_answers_granted_fields_masks_personal_ones_and_logs_the_read(
    session: Session, vault: Vault, catalog: None
) -> None:
    given = grant(session)
    me = caller(session)
    answer = reading.lookup(session, vault, me, "JC-RK-001", WANG.lower())  # x → X
    (record,) = answer.records
    assert record.data == {
        "id_number": "110105********002X",
        "name": "王芳",  # granted in clear
        "birth_date": "1949-**-**",
        "household_division": "370102",  # internal, not personal: as stored
        "phone": "138****8000",
    }
    assert record.masked == ["id_number", "birth_date", "phone"]
    assert "sex" not in record.data  # not granted
    (read,) = entries(session, "data.read")
    assert read.subject == audit_subject(vault, WANG)
    assert read.details["department"] == CONSUMER and read.details["client"] == me.client_id
    assert read.details["grant"] == given.id and read.details["purpose"] == given.purpose
    assert read.details["fields"] == given.fields and WANG not in str(read.details)
    assert verify(session).is_intact


def test_a_lookup_of_chosen_fields_may_not_reach_beyond_the_grant(
    session: Session, vault: Vault, catalog: None
) -> None:
    grant(session, fields=["id_number", "household_division"], clear_fields=[])
    me = caller(session)
    answer = reading.lookup(session, vault, me, "JC-RK-001", LI, fields=["household_division"])
    assert answer.records[0].data == {"household_division": "370102"}
    with pytest.raises(QiluError) as refused:
        reading.lookup(session, vault, me, "JC-RK-001", LI, fields=["name", "sex"])
    assert refused.value.code == "sharing.field_not_granted"
    assert refused.value.details["fields"] == ["name", "sex"]
    (logged,) = entries(session, "data.read_refused")
    assert logged.details["reason"] == "sharing.field_not_granted"
    assert logged.subject == audit_subject(vault, LI)


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ("none", "sharing.no_grant"),
        ("expired", "sharing.grant_expired"),
        ("revoked", "sharing.grant_revoked"),
    ],
)
def test_a_department_without_a_live_grant_is_refused_with_the_reason(
    session: Session, vault: Vault, catalog: None, setup: str, code: str
) -> None:
    if setup == "expired":
        grant(session, valid_until=NOW + timedelta(days=1))
    if setup == "revoked":
        sharing.revoke(session, grant(session).id, reason="停用", actor=OPERATOR)
    later = NOW + timedelta(days=2)
    with pytest.raises(QiluError) as refused:
        reading.lookup(session, vault, caller(session), "JC-RK-001", WANG, now=later)
    assert refused.value.code == code and refused.value.status_code == 403
    (logged,) = entries(session, "data.read_refused")
    assert logged.details["reason"] == code and logged.subject == audit_subject(vault, WANG)
    assert not entries(session, "data.read")


def test_unknown_records_keys_and_resources_get_their_own_errors(
    session: Session, vault: Vault, catalog: None
) -> None:
    grant(session)
    me = caller(session)
    with pytest.raises(NotFound) as missing:
        reading.lookup(session, vault, me, "JC-RK-001", "370102200001010015")
    assert missing.value.code == "sharing.record_not_found"
    with pytest.raises(QiluError) as malformed:
        reading.lookup(session, vault, me, "JC-RK-001", "370102199003073510")
    assert malformed.value.code == "sharing.key" and malformed.value.field == "key"
    assert "校验码" in malformed.value.message
    with pytest.raises(NotFound) as unknown:
        reading.lookup(session, vault, me, "NO-SUCH-001", WANG)
    assert unknown.value.code == "catalog.not_found"


def test_a_resource_without_personal_data_is_read_with_one_log_entry_about_no_one(
    session: Session, vault: Vault, catalog: None
) -> None:
    rows = [{"code": "370102", "name": "历下区", "level": "county", "parent": "370100"}]
    load_rows(session, vault, "JC-KJ-001", enumerate(rows, 1), source="t", actor=OPERATOR)
    grant(session, "JC-KJ-001", fields=["code", "name"], clear_fields=[])
    answer = reading.lookup(session, vault, caller(session), "JC-KJ-001", "370102")
    assert answer.records[0].data == {"code": "370102", "name": "历下区"}
    [logged] = entries(session, "data.read")
    assert logged.subject == "resource:JC-KJ-001" and logged.details["records"] == 1


def health_grant(session: Session, **changes: Any) -> Any:
    return grant(
        session,
        "ZT-YL-001",
        fields=["id_number", "chronic_conditions", "allergies", "family_doctor"],
        clear_fields=["chronic_conditions", "allergies"],
        purpose="家庭医生签约服务核对慢病信息",
        **changes,
    )


def give(session: Session, vault: Vault, person: Person, days: int = 30) -> Any:
    return consent.give(
        session,
        vault,
        person,
        resource_code="ZT-YL-001",
        consumer_code=CONSUMER,
        purpose="家庭医生签约服务",
        valid_until=NOW + timedelta(days=days),
        now=NOW - timedelta(seconds=1),
    )


def test_sensitive_records_need_the_persons_live_consent(
    session: Session, vault: Vault, catalog: None
) -> None:
    health_grant(session)
    me = caller(session)
    wang = find_person(session, vault, WANG)
    with pytest.raises(QiluError) as refused:
        reading.lookup(session, vault, me, "ZT-YL-001", WANG)
    assert refused.value.code == "sharing.consent_missing"
    given = give(session, vault, wang)
    answer = reading.lookup(session, vault, me, "ZT-YL-001", WANG)
    assert answer.records[0].data["chronic_conditions"] == "高血压"
    consent.withdraw(session, vault, wang, given.id)
    with pytest.raises(QiluError) as again:
        reading.lookup(session, vault, me, "ZT-YL-001", WANG)
    assert again.value.code == "sharing.consent_missing"
    uses = reading.uses_of(session, person_subject(vault, wang))
    assert [u.action for u in uses] == ["data.read_refused", "data.read", "data.read_refused"]
    assert uses[1].details["purpose"] == "家庭医生签约服务核对慢病信息"


def test_a_consent_is_for_one_department_and_expires(
    session: Session, vault: Vault, catalog: None
) -> None:
    health_grant(session)
    wang = find_person(session, vault, WANG)
    give(session, vault, wang, days=1)
    other = caller(session, "370103-approval")
    sharing.request_access(
        session, "ZT-YL-001", consumer="370103-approval", fields=["id_number", "allergies"],
        purpose="核对过敏史信息", legal_basis="依据", valid_until=NOW + timedelta(days=30),
        actor=OPERATOR, now=NOW - timedelta(minutes=1),
    )  # fmt: skip
    sharing.decide(session, entries_grant_id(session, "370103-approval"), approve=True,
                   reason="同意", actor=OPERATOR)  # fmt: skip
    with pytest.raises(QiluError) as not_theirs:
        reading.lookup(session, vault, other, "ZT-YL-001", WANG)
    assert not_theirs.value.code == "sharing.consent_missing"
    with pytest.raises(QiluError) as expired:
        reading.lookup(
            session, vault, caller(session), "ZT-YL-001", WANG, now=NOW + timedelta(days=2)
        )
    assert expired.value.code == "sharing.consent_missing"


def entries_grant_id(session: Session, department: str) -> int:
    from qilu.data.models import ShareGrant

    return session.scalars(
        select(ShareGrant.id)
        .join(Department, Department.id == ShareGrant.consumer_id)
        .where(Department.code == department)
    ).one()


def test_consent_is_refused_for_bad_input_and_for_resources_without_sensitive_data(
    session: Session, vault: Vault, catalog: None
) -> None:
    wang = find_person(session, vault, WANG)
    base: dict[str, Any] = {
        "resource_code": "ZT-YL-001",
        "consumer_code": CONSUMER,
        "purpose": "家庭医生签约服务",
        "valid_until": NOW + timedelta(days=30),
    }
    cases: list[tuple[dict[str, Any], str]] = [
        ({"resource_code": "JC-RK-001"}, "consent.not_needed"),
        ({"consumer_code": "nowhere"}, "consent.unknown"),
        ({"purpose": "用"}, "consent.purpose"),
        ({"valid_until": NOW + timedelta(days=800)}, "consent.valid_until"),
    ]
    for changes, code in cases:
        with pytest.raises(QiluError) as refused:
            consent.give(session, vault, wang, **{**base, **changes})
        assert refused.value.code == code
    assert consent.consents_of(session, wang) == []
    given = consent.give(session, vault, wang, **base)
    other = find_person(session, vault, LI)
    with pytest.raises(NotFound):
        consent.withdraw(session, vault, other, given.id)  # not theirs
    consent.withdraw(session, vault, wang, given.id)
    with pytest.raises(QiluError) as twice:
        consent.withdraw(session, vault, wang, given.id)
    assert twice.value.code == "consent.ended"
    actions = [e.action for e in entries(session, "consent.given")]
    assert actions == ["consent.given"] and entries(session, "consent.withdrawn")


def test_a_listing_filters_on_open_granted_fields_a_page_at_a_time(
    session: Session, vault: Vault, catalog: None
) -> None:
    grant(session, clear_fields=[], may_list=True)
    me = caller(session)
    first = reading.listing(session, vault, me, "JC-RK-001", {"household_division": "370102"},
                            limit=1)  # fmt: skip
    assert len(first.records) == 1 and first.next_after is not None
    second = reading.listing(session, vault, me, "JC-RK-001", {"household_division": "370102"},
                             limit=1, after=first.next_after)  # fmt: skip
    names = {first.records[0].data["name"], second.records[0].data["name"]}
    assert names == {"王*", "李*"}
    third = reading.listing(session, vault, me, "JC-RK-001", {"household_division": "370102"},
                            limit=1, after=second.next_after or 0)  # fmt: skip
    assert third.records == [] and third.next_after is None
    assert len(entries(session, "data.read")) == 2  # one entry per person read
    with pytest.raises(QiluError) as sealed:
        reading.listing(session, vault, me, "JC-RK-001", {"name": "王芳"})
    assert sealed.value.code == "sharing.filter_field" and sealed.value.field == "name"
    with pytest.raises(QiluError) as outside:
        reading.listing(session, vault, me, "JC-RK-001", {"sex": "1"})
    assert outside.value.code == "sharing.field_not_granted"


def test_a_listing_of_sensitive_records_leaves_out_those_without_consent(
    session: Session, vault: Vault, catalog: None
) -> None:
    health_grant(session, may_list=True)
    give(session, vault, find_person(session, vault, WANG))
    answer = reading.listing(session, vault, caller(session), "ZT-YL-001", {})
    assert [r.data["chronic_conditions"] for r in answer.records] == ["高血压"]
    assert answer.withheld == 1
    (refused,) = entries(session, "data.read_refused")
    assert refused.subject == audit_subject(vault, LI)


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("id_number", "370102199003073516", "370102********3516"),
        ("string", "13800138000", "138****8000"),
        ("string", "王芳", "王*"),
        ("string", "欧阳娜娜", "欧***"),
        ("string", "山东省济南市历下区经十路1号", "山东省********路1号"),
        ("date", "1990-03-07", "1990-**-**"),
        ("integer", 42, "***"),
        ("string", None, None),
    ],
)
def test_masking_keeps_only_what_identifies_nobody(kind: str, value: Any, masked: Any) -> None:
    field = FieldSpec(name="f", label="字段", type=kind, sensitivity="personal")
    assert mask(field, value) == masked


def test_sensitive_values_are_hidden_whole_but_an_id_number_keeps_its_ends() -> None:
    def field(kind: str) -> FieldSpec:
        return FieldSpec(name="f", label="字段", type=kind, sensitivity="sensitive_personal")

    assert mask(field("string"), "青霉素过敏") == "***"
    assert mask(field("id_number"), "370102199003073516") == "370102********3516"


def test_a_lookup_after_a_schema_change_reads_with_the_new_schema(
    session: Session, vault: Vault, catalog: None
) -> None:
    from qilu.data.catalog import change_schema, get_resource, schema_of

    grant(session)
    me = caller(session)
    assert reading.lookup(session, vault, me, "JC-RK-001", WANG).records[0].data["name"] == "王芳"
    fields = schema_of(session, get_resource(session, "JC-RK-001"))
    extra = FieldSpec(name="nickname", label="曾用名", type="string", sensitivity="personal")
    change_schema(session, "JC-RK-001", [*fields, extra], note="加曾用名", actor=OPERATOR)
    again = reading.lookup(session, vault, me, "JC-RK-001", WANG)  # the version moved on
    assert again.records[0].data["name"] == "王芳"
    with pytest.raises(NotFound) as missing:
        reading.lookup(session, vault, me, "JC-RK-001", "370102200001010015")
    assert missing.value.code == "sharing.record_not_found"


def test_only_a_department_system_reads_in_process(session: Session, departments: None) -> None:
    from qilu.identity.oidc_clients import register_client

    sso = register_client(session, name="单点登录系统", redirect_uris=["https://a.example/cb"],
                          public=False, actor=OPERATOR)  # fmt: skip
    with pytest.raises(QiluError) as refused:
        ServiceCaller.of(sso.client)
    assert refused.value.code == "client.not_service"
    assert ServiceCaller.of(make_service_client(session, CONSUMER).client).department_code == (
        CONSUMER
    )


def test_a_grant_lists_nothing_unless_listing_was_granted(
    session: Session, vault: Vault, catalog: None
) -> None:
    """Found: a grant limited fields but not rows, so an approved grant paged through the whole
    population library 100 records at a time."""
    grant(session)
    with pytest.raises(SharingRefused) as refused:
        reading.listing(session, vault, caller(session), "JC-RK-001", {})
    assert refused.value.code == "sharing.listing_not_granted"
    assert entries(session, "data.read_refused")[-1].details["reason"] == refused.value.code


def test_a_grant_reaches_only_its_rows(session: Session, vault: Vault, catalog: None) -> None:
    grant(session, may_list=True, row_conditions={"household_division": "370102"})
    me = caller(session)
    listed = reading.listing(session, vault, me, "JC-RK-001", {})
    assert {r.data["household_division"] for r in listed.records} == {"370102"}
    assert len(listed.records) == 2  # 赵磊 lives in 370103
    with pytest.raises(SharingRefused) as refused:
        reading.lookup(session, vault, me, "JC-RK-001", ZHAO)
    assert refused.value.code == "sharing.row_not_granted"
    with pytest.raises(QiluError) as personal:
        grant(session, row_conditions={"name": "王芳"})
    assert personal.value.code == "sharing.row_field"


def test_a_read_of_data_without_personal_fields_is_logged_and_a_long_field_list_is_one(
    session: Session, vault: Vault, catalog: None
) -> None:
    """Found: reads of resources without personal fields left no audit entry; 50,000 repeated
    field names wrote an 800 KB entry."""
    grant(session, "JC-KJ-001", fields=["code", "name"], clear_fields=[], may_list=True)
    before = len(entries(session, "data.read"))
    answer = reading.listing(
        session, vault, caller(session), "JC-KJ-001", {}, fields=["name"] * 50_000
    )
    logged = entries(session, "data.read")[before:]
    assert len(logged) == 1 and logged[0].details["fields"] == ["name"]
    assert logged[0].details["records"] == len(answer.records)


def test_quality_figures_need_a_grant(session: Session, vault: Vault, catalog: None) -> None:
    """Found: a system with no grant read the health library's record count and fill rates."""
    with pytest.raises(SharingRefused) as refused:
        reading.quality_for(session, vault, caller(session), "ZT-YL-001")
    assert refused.value.code == "sharing.no_grant"
    health_grant(session)
    assert reading.quality_for(session, vault, caller(session), "ZT-YL-001").records >= 1
