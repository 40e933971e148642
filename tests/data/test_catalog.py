"""The resource catalog: registration, schema versions that never break data, Chinese search."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.data import catalog
from qilu.data.catalog import FieldSpec, breaking_changes, parse_spec
from qilu.errors import NotFound, QiluError, Refused
from qilu.identity.roles import OPERATOR, grant_role, staff
from qilu.pii import Vault

from ..factories import make_person


def spec(**changes: Any) -> dict[str, Any]:
    return {
        "code": "YW-JN-001",
        "name": "济南市养犬登记",
        "provider": "370100-public_security",
        "library": "business",
        "topic": "养犬管理",
        "sharing": "unconditional",
        "update_cycle": "daily",
        "legal_basis": "《济南市养犬管理条例》",
        "fields": [
            {"name": "tag", "label": "犬牌号", "type": "string", "required": True, "key": True},
            {
                "name": "owner_id",
                "label": "犬主身份号码",
                "type": "id_number",
                "sensitivity": "personal",
            },
            {"name": "breed", "label": "品种", "type": "enum", "values": ["中华田园犬", "柯基"]},
        ],
        **changes,
    }


def test_a_resource_is_registered_at_version_one_and_audited(
    session: Session, departments: None
) -> None:
    resource = catalog.register_resource(session, parse_spec(spec()), actor=OPERATOR)
    assert resource.version == 1 and resource.provider.name == "济南市公安局"
    assert [f.name for f in catalog.schema_of(session, resource)] == ["tag", "owner_id", "breed"]
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "data.resource_registered")
    ).one()
    assert event.subject == "resource:YW-JN-001"
    with pytest.raises(QiluError) as again:
        catalog.register_resource(session, parse_spec(spec()), actor=OPERATOR)
    assert again.value.code == "catalog.duplicate" and again.value.field == "code"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"code": "yw 1"}, "code", "大写字母"),
        ({"library": "lake"}, "library", "base"),
        ({"sharing": "conditional"}, "resource", "共享条件"),
        ({"sharing_rules": {"row_fields": ["color"]}}, "resource", "没有的字段：color"),
        ({"fields": []}, "fields", "至少 1 项"),
        (
            {
                "fields": [
                    {
                        "name": "Tag",
                        "label": "犬牌号",
                        "type": "string",
                        "key": True,
                        "required": True,
                    }
                ]
            },
            "fields.0.name",
            "小写字母",
        ),
        (
            {"fields": [{"name": "tag", "label": "犬牌号", "type": "string"}]},
            "resource",
            "主键",
        ),
        (
            {
                "fields": [
                    {
                        "name": "tag",
                        "label": "犬牌号",
                        "type": "enum",
                        "key": True,
                        "required": True,
                    }
                ]
            },
            "fields.0",
            "可取的值",
        ),
    ],
)
def test_bad_descriptions_name_the_field_and_reason(
    changes: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(QiluError) as refused:
        parse_spec(spec(**changes))
    assert refused.value.code == "catalog.invalid"
    assert refused.value.field == field and words in refused.value.message


def test_the_provider_must_exist(session: Session, departments: None) -> None:
    with pytest.raises(NotFound):
        catalog.register_resource(session, parse_spec(spec(provider="379999-x")), actor=OPERATOR)


def test_only_a_data_steward_over_the_provider_registers(
    session: Session, vault: Vault, departments: None
) -> None:
    steward = make_person(session, vault, name="陈超")
    grant_role(
        session,
        person_id=steward.id,
        department_code="370200-bigdata",  # 青岛: not over 济南
        role="data_steward",
        profile="standard",
        actor=OPERATOR,
    )
    with pytest.raises(Refused):
        catalog.register_resource(session, parse_spec(spec()), actor=staff(session, steward.id))
    grant_role(
        session,
        person_id=steward.id,
        department_code="370100-public_security",  # the provider itself
        role="data_steward",
        profile="standard",
        actor=OPERATOR,
    )
    assert (
        catalog.register_resource(
            session, parse_spec(spec()), actor=staff(session, steward.id)
        ).version
        == 1
    )


def fields(
    *extra: dict[str, Any], drop: str | None = None, **changed: dict[str, Any]
) -> list[FieldSpec]:
    current = [dict(f) for f in spec()["fields"] if f["name"] != drop]
    for entry in current:
        entry.update(changed.get(entry["name"], {}))
    return [FieldSpec.model_validate(f) for f in [*current, *extra]]


def test_compatible_changes_add_a_version(session: Session, departments: None) -> None:
    resource = catalog.register_resource(session, parse_spec(spec()), actor=OPERATOR)
    new = fields(
        {"name": "colour", "label": "毛色", "type": "string"},
        breed={"values": ["中华田园犬", "柯基", "金毛"], "label": "犬种"},
        owner_id={"sensitivity": "sensitive_personal"},
    )
    catalog.change_schema(session, "YW-JN-001", new, note="增加毛色", actor=OPERATOR)
    assert resource.version == 2
    assert [v.version for v in catalog.versions_of(session, resource)] == [2, 1]
    assert len(catalog.schema_of(session, resource, version=1)) == 3
    assert "毛色" in resource.search_text


@pytest.mark.parametrize(
    ("new", "field", "words"),
    [
        (fields(drop="breed"), "breed", "删除字段"),
        (fields(breed={"values": ["柯基"]}), "breed", "中华田园犬"),
        (fields(owner_id={"type": "string"}), "owner_id", "类型"),
        (fields(owner_id={"required": True}), "owner_id", "必填"),
        (fields(owner_id={"sensitivity": "public"}), "owner_id", "敏感级别"),
        (
            fields({"name": "chip", "label": "芯片号", "type": "string", "required": True}),
            "chip",
            "可选",
        ),
        (fields(tag={"max_length": 8}), "tag", "长度上限"),
        (fields(owner_id={"key": True, "required": True}), "owner_id", "主键"),
    ],
)
def test_breaking_changes_are_refused_with_the_reason(
    session: Session, departments: None, new: list[FieldSpec], field: str, words: str
) -> None:
    resource = catalog.register_resource(session, parse_spec(spec()), actor=OPERATOR)
    with pytest.raises(QiluError) as refused:
        catalog.change_schema(session, "YW-JN-001", new, note="x", actor=OPERATOR)
    assert refused.value.code == "catalog.breaking_change"
    problem = next(p for p in refused.value.details["problems"] if p["field"] == field)
    assert words in problem["reason"]
    assert resource.version == 1


def test_breaking_changes_lists_every_problem() -> None:
    old = fields()
    new = fields(drop="breed", owner_id={"type": "string"})
    assert {p["field"] for p in breaking_changes(old, new)} == {"breed", "owner_id"}
    assert breaking_changes(old, old) == []


def test_the_standard_catalog_installs_once_and_searches_in_chinese(
    session: Session, departments: None
) -> None:
    added = catalog.install_standard_catalog(session)
    libraries = {r.library for r in added}
    assert libraries == {"base", "theme", "special", "business"} and len(added) >= 9
    assert catalog.install_standard_catalog(session) == []
    assert [r.code for r in catalog.search(session, "人口")] == ["JC-RK-001"]
    assert {r.code for r in catalog.search(session, "身份号码 参保")} == {"ZT-SB-001"}
    health = catalog.search(session, "卫生健康委员会")
    assert {r.topic for r in health} == {"医疗健康", "疫情防控"}
    assert {r.code for r in catalog.search(session, "", library="base")} == {
        "JC-RK-001",
        "JC-FR-001",
        "JC-KJ-001",
        "JC-ZZ-001",
    }
    assert catalog.search(session, "100%_") == []  # LIKE wildcards are literal here
