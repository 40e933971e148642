"""The resource catalog: register a resource before it holds data, change its schema only in ways
that keep existing data and consumers working, and find resources by Chinese words.

A schema is a list of fields (name, label, type, required, key, sensitivity, allowed values). A new
version may add optional fields, relax a required field, widen an enumeration or a length, raise a
field's sensitivity, or relabel; anything else would break stored rows or the systems reading them
and is refused with every reason listed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from importlib.resources import files
from typing import Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from sqlalchemy import case, or_, select
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.data.models import DataResource, ResourceSchema
from qilu.errors import NotFound, QiluError, validation_problems
from qilu.identity import roles
from qilu.identity.models import Department

FieldType = Literal[
    "string",
    "integer",
    "decimal",
    "boolean",
    "date",
    "datetime",
    "id_number",
    "uscc",
    "party_code",
    "division",
    "enum",
]
Sensitivity = Literal["public", "internal", "personal", "sensitive_personal"]
SENSITIVITY_ORDER = ("public", "internal", "personal", "sensitive_personal")
LIBRARIES = {"base": "基础库", "theme": "主题库", "special": "专题库", "business": "通用业务库"}
SHARING = {"unconditional": "无条件共享", "conditional": "有条件共享", "none": "不予共享"}
OPENING = {"open": "无条件开放", "conditional": "有条件开放", "closed": "不予开放"}
# 共享方式 (GB/T 21063): rows held here and read through the exchange, a department's own API
# proxied by it (whose "fields" are its operations, see `apis`), or files.
SHARE_MODES = {"table": "库表", "api": "接口", "file": "文件"}
# 信息资源格式 (GB/T 21063.3 核心元数据): what a consumer gets; by default what the share mode is.
FORMATS = {
    "database": "数据库",
    "spreadsheet": "电子表格",
    "file": "电子文件",
    "image": "图形图像",
    "stream": "流媒体",
    "self_describing": "自描述格式",
    "api": "服务接口",
}
DEFAULT_FORMAT = {"table": "database", "api": "api", "file": "file"}
# 信息资源分类 (GB/T 21063.4): the first level follows the library (基础, 主题, 部门); a
# province adds 项, 目 and 细目 as dotted numbers, e.g. 2.05.01.
CLASSES = {"base": "1", "theme": "2", "special": "2", "business": "3"}
CLASSIFICATION = re.compile(r"^[1-3](\.\d{1,3}){0,3}$")
UPDATE_CYCLES = {
    "realtime": "实时",
    "daily": "每日",
    "weekly": "每周",
    "monthly": "每月",
    "quarterly": "每季度",
    "yearly": "每年",
}
TYPE_NAMES = {
    "string": "文本",
    "integer": "整数",
    "decimal": "数值",
    "boolean": "是/否",
    "date": "日期",
    "datetime": "日期时间",
    "id_number": "公民身份号码",
    "uscc": "统一社会信用代码",
    "party_code": "身份号码或统一社会信用代码",
    "division": "行政区划代码",
    "enum": "枚举",
}
SENSITIVITY_NAMES = {
    "public": "公开",
    "internal": "内部",
    "personal": "个人信息",
    "sensitive_personal": "敏感个人信息",
}
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RESOURCE_CODE = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,39}$")


class FieldSpec(BaseModel):
    name: str
    label: str = Field(min_length=1, max_length=50)
    type: FieldType
    required: bool = False
    key: bool = False
    sensitivity: Sensitivity = "internal"
    values: list[str] = Field(default_factory=list)  # the allowed values of an enum
    max_length: int | None = Field(default=None, ge=1, le=10_000)
    minimum: Decimal | None = None  # the least value of a number (registered capital: 0)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not FIELD_NAME.match(name):
            raise ValueError(
                "字段名须为小写英文字母开头，由小写字母、数字和下划线组成，最长 40 个字符"
            )
        return name

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        if self.type == "enum" and not self.values:
            raise ValueError(f"枚举字段 {self.name} 须列出可取的值")
        if self.type != "enum" and self.values:
            raise ValueError(f"只有枚举字段可以列出取值（{self.name}）")
        if self.key and not self.required:
            raise ValueError(f"主键字段 {self.name} 必须为必填")
        return self


class SharingRules(BaseModel):
    """有条件共享's conditions as data: what a request must meet before a steward weighs it. A
    request outside them is refused at once, naming the condition it breaks."""

    fields: list[str] = Field(default_factory=list)  # only these may be asked for (none: any)
    row_fields: list[str] = Field(default_factory=list)  # rows must be limited by one of these
    purposes: list[str] = Field(default_factory=list)  # the purpose must name one of these uses
    listing: bool = True  # may a consumer list records, or only look them up by key

    def broken_by(
        self, fields: list[str], rows: dict[str, str], purpose: str, may_list: bool
    ) -> tuple[str, str] | None:
        """The first condition a request breaks (its field and why), or None."""
        outside = [name for name in fields if self.fields and name not in self.fields]
        if outside:
            return "fields", f"只能申请这些字段：{'、'.join(self.fields)}"
        if self.row_fields and not set(rows) & set(self.row_fields):
            return "row_conditions", f"须限定数据范围（按 {'、'.join(self.row_fields)}）"
        if self.purposes and not any(use in purpose for use in self.purposes):
            return "purpose", f"用途须为以下之一：{'、'.join(self.purposes)}"
        if may_list and not self.listing:
            return "may_list", "该资源只允许按主键逐条查询，不能批量列出"
        return None


class QualityRule(BaseModel):
    """A rule the stored records should meet (checked on a sample, not refused at load):
    `range` (a field within minimum…maximum), `compare` (a field against another of the same
    record, e.g. a start before an end), or `reference` (a field's value is the key of a record
    of another resource, e.g. a 法人's representative a known person)."""

    kind: Literal["range", "compare", "reference"]
    field: str
    label: str = Field(min_length=2, max_length=100)  # what the rule says, as people read it
    minimum: str | None = None  # range: numbers, or dates as 2020-01-01
    maximum: str | None = None
    op: Literal["<", "<=", "=", ">=", ">"] = "<="  # compare: field op other
    other: str = ""
    resource: str = ""  # reference: the resource whose key the value must be

    @model_validator(mode="after")
    def _complete(self) -> QualityRule:
        if self.kind == "range" and self.minimum is None and self.maximum is None:
            raise ValueError(f"范围规则（{self.field}）须给出最小值或最大值")
        if self.kind == "compare" and not self.other:
            raise ValueError(f"比较规则（{self.field}）须给出比较的字段 other")
        if self.kind == "reference" and not RESOURCE_CODE.match(self.resource):
            raise ValueError(f"引用规则（{self.field}）须给出所引用资源的代码 resource")
        return self


class ResourceSpec(BaseModel):
    """A resource as its provider describes it (a YAML file, a form, the API)."""

    code: str
    name: str = Field(min_length=2, max_length=100)
    description: str = ""
    provider: str  # the department's code, e.g. 370000-bigdata
    library: Literal["base", "theme", "special", "business"]
    topic: str = Field(min_length=1, max_length=50)
    sharing: Literal["unconditional", "conditional", "none"]
    sharing_conditions: str = ""
    sharing_rules: SharingRules = Field(default_factory=SharingRules)
    opening: Literal["open", "conditional", "closed"] = "closed"
    share_mode: Literal["table", "api", "file"] = "table"
    update_cycle: Literal["realtime", "daily", "weekly", "monthly", "quarterly", "yearly"]
    legal_basis: str = Field(min_length=2)
    fields: list[FieldSpec] = Field(min_length=1)
    # GB/T 21063 metadata beyond the above: the class (default: the library's first level), the
    # format (default: what the share mode gives), and the codes of related resources.
    classification: str = ""
    format: Literal[
        "", "database", "spreadsheet", "file", "image", "stream", "self_describing", "api"
    ] = ""
    related: list[str] = Field(default_factory=list, max_length=20)
    # Quality rules with the share of sampled records that must pass them before the provider
    # is alerted, and how long a record is kept after its last change (保存期限; none: always).
    quality_rules: list[QualityRule] = Field(default_factory=list, max_length=50)
    quality_threshold: float = Field(default=0.98, ge=0, le=1)
    retention_days: int | None = Field(default=None, ge=1, le=36_600)

    @field_validator("code")
    @classmethod
    def _code(cls, code: str) -> str:
        if not RESOURCE_CODE.match(code):
            raise ValueError("资源代码须由大写字母、数字和连字符组成，3 至 40 个字符")
        return code

    @model_validator(mode="after")
    def _fields(self) -> ResourceSpec:
        names = [f.name for f in self.fields]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"字段名重复：{'、'.join(repeated)}")
        if self.share_mode == "table" and not any(f.key for f in self.fields):
            raise ValueError("至少要有一个主键字段（key），数据按主键更新")
        if self.sharing == "conditional" and not self.sharing_conditions.strip():
            raise ValueError("有条件共享的资源须写明共享条件")
        if self.classification and not (
            CLASSIFICATION.match(self.classification)
            and self.classification[0] == CLASSES[self.library]
        ):
            raise ValueError(
                f"资源分类须以 {CLASSES[self.library]} 开头（{LIBRARIES[self.library]}），"
                "各级用数字和点分隔，如 2.05.01"
            )
        bad = [code for code in self.related if not RESOURCE_CODE.match(code)]
        if bad:
            raise ValueError(f"关联资源代码有误：{'、'.join(bad)}")
        named = {r.field for r in self.quality_rules} | {
            r.other for r in self.quality_rules if r.kind == "compare"
        }
        if named - set(names):
            raise ValueError(f"质量规则中有资源没有的字段：{'、'.join(sorted(named - set(names)))}")
        rules = self.sharing_rules
        unknown = sorted(set(rules.fields + rules.row_fields) - set(names))
        if unknown:
            raise ValueError(f"共享条件中有资源没有的字段：{'、'.join(unknown)}")
        return self


def parse_spec(data: object) -> ResourceSpec:
    """A resource description checked field by field; the first problem names its place."""
    try:
        return ResourceSpec.model_validate(data)
    except ValidationError as error:
        problems = [
            {"field": p["field"] if p["field"] != "body" else "resource", "reason": p["reason"]}
            for p in validation_problems(list(error.errors()))
        ]
        first = problems[0]
        raise QiluError(
            "catalog.invalid",
            f"资源定义有误：{first['field']}：{first['reason']}",
            field=first["field"],
            problems=problems,
        ) from None


def _provider(session: Session, code: str) -> Department:
    department = session.scalars(select(Department).where(Department.code == code)).one_or_none()
    if department is None:
        raise NotFound("catalog.provider", f"没有编码为 {code} 的部门", field="provider")
    return department


def _search_text(
    resource: DataResource | ResourceSpec, provider: Department, fields: list[FieldSpec]
) -> str:
    """What catalog search looks in: code, name, topic, provider, description, field labels."""
    labels = " ".join(f.label for f in fields)
    return (
        f"{resource.code} {resource.name} {resource.topic} {provider.name} "
        f"{resource.description} {labels}"
    )


def register_resource(
    session: Session,
    spec: ResourceSpec,
    *,
    actor: roles.Actor,
    now: datetime | None = None,
    origin: str = "",
) -> DataResource:
    """Register a new resource at version 1, by a data steward of the providing department (or
    the operator installing the shipped catalog); `origin` names the city catalog it cascades
    from (`cascade`), if it is not the province's own."""
    department = _provider(session, spec.provider)
    roles.authorize(actor, "data.publish", roles.Target.of(department))
    by = roles.person_of(actor)
    if session.scalars(select(DataResource.id).where(DataResource.code == spec.code)).first():
        raise QiluError("catalog.duplicate", f"资源代码 {spec.code} 已登记", field="code")
    moment = now or datetime.now(UTC)
    resource = DataResource(
        code=spec.code,
        name=spec.name,
        description=spec.description,
        provider_id=department.id,
        library=spec.library,
        topic=spec.topic,
        sharing=spec.sharing,
        sharing_conditions=spec.sharing_conditions,
        sharing_rules=spec.sharing_rules.model_dump(),
        classification=spec.classification or CLASSES[spec.library],
        format=spec.format or DEFAULT_FORMAT[spec.share_mode],
        related=spec.related,
        quality_rules=[rule.model_dump(mode="json") for rule in spec.quality_rules],
        quality_threshold=spec.quality_threshold,
        retention_days=spec.retention_days,
        origin=origin,
        opening=spec.opening,
        share_mode=spec.share_mode,
        update_cycle=spec.update_cycle,
        legal_basis=spec.legal_basis,
        version=1,
        search_text=_search_text(spec, department, spec.fields),
        created_at=moment,
        updated_at=moment,
    )
    session.add(resource)
    session.flush()
    session.add(
        ResourceSchema(
            resource_id=resource.id,
            version=1,
            fields=[f.model_dump(mode="json") for f in spec.fields],
            change_note="首次登记",
            created_at=moment,
            created_by_person_id=by,
        )
    )
    record(
        session,
        "data.resource_registered",
        actor_person_id=by,
        subject=f"resource:{spec.code}",
        at=moment,
        details={"library": spec.library, "sharing": spec.sharing, "fields": len(spec.fields)},
    )
    return resource


def breaking_changes(old: list[FieldSpec], new: list[FieldSpec]) -> list[dict[str, str]]:
    """What a new schema would break for stored rows or their readers (empty: compatible)."""
    problems: list[dict[str, str]] = []
    before = {f.name: f for f in old}
    after = {f.name: f for f in new}

    def problem(name: str, reason: str) -> None:
        problems.append({"field": name, "reason": reason})

    for name, was in before.items():
        now = after.get(name)
        if now is None:
            problem(name, "删除字段会让已有数据和调用方失去该字段")
            continue
        if now.type != was.type:
            problem(name, f"类型不能由 {was.type} 改为 {now.type}")
        if now.key != was.key:
            problem(name, "主键不能更改：已有数据按原主键存放")
        if now.required and not was.required:
            problem(name, "可选字段不能改为必填：已有数据中可能为空")
        lost = sorted(set(was.values) - set(now.values))
        if lost:
            problem(name, f"枚举值不能删除：{'、'.join(lost)}")
        if now.max_length is not None and (was.max_length or 10**9) > now.max_length:
            limit = was.max_length or "不限"
            problem(name, f"长度上限不能由 {limit} 缩小为 {now.max_length}")
        if SENSITIVITY_ORDER.index(now.sensitivity) < SENSITIVITY_ORDER.index(was.sensitivity):
            problem(name, "敏感级别不能调低：已授权的读取会因此看到更多")
    for name, field in after.items():
        if name not in before and field.required:
            problem(name, "新增字段须为可选：已有数据中没有它")
    return problems


def change_schema(
    session: Session,
    code: str,
    fields: list[FieldSpec],
    *,
    note: str,
    actor: roles.Actor,
    now: datetime | None = None,
) -> ResourceSchema:
    """Add a schema version if it breaks nothing; refuse with every reason if it would."""
    resource = get_resource(session, code)
    roles.authorize(actor, "data.publish", roles.Target.of(resource.provider))
    by = roles.person_of(actor)
    current = schema_of(session, resource)
    problems = breaking_changes(current, fields)
    if problems:
        first = problems[0]
        raise QiluError(
            "catalog.breaking_change",
            f"此次修改会破坏已有数据或调用方：{first['field']}：{first['reason']}",
            field=first["field"],
            problems=problems,
        )
    moment = now or datetime.now(UTC)
    resource.version += 1
    resource.updated_at = moment
    version = ResourceSchema(
        resource_id=resource.id,
        version=resource.version,
        fields=[f.model_dump(mode="json") for f in fields],
        change_note=note,
        created_at=moment,
        created_by_person_id=by,
    )
    session.add(version)
    resource.search_text = _search_text(resource, resource.provider, fields)
    record(
        session,
        "data.schema_changed",
        actor_person_id=by,
        subject=f"resource:{code}",
        at=moment,
        details={"version": resource.version, "note": note},
    )
    return version


def get_resource(session: Session, code: str) -> DataResource:
    resource = session.scalars(select(DataResource).where(DataResource.code == code)).one_or_none()
    if resource is None:
        raise NotFound("catalog.not_found", f"目录中没有资源 {code}", field="code")
    return resource


def schema_of(
    session: Session, resource: DataResource, version: int | None = None
) -> list[FieldSpec]:
    return fields_of(session, resource.id, version or resource.version)


def fields_of(session: Session, resource_id: int, version: int) -> list[FieldSpec]:
    """The fields of one schema version of a resource (versions never change)."""
    fields = session.scalars(
        select(ResourceSchema.fields).where(
            ResourceSchema.resource_id == resource_id, ResourceSchema.version == version
        )
    ).one()
    return [FieldSpec.model_validate(f) for f in fields]


def versions_of(session: Session, resource: DataResource) -> list[ResourceSchema]:
    return list(
        session.scalars(
            select(ResourceSchema)
            .where(ResourceSchema.resource_id == resource.id)
            .order_by(ResourceSchema.version.desc())
        )
    )


def search(
    session: Session, words: str = "", *, library: str | None = None, limit: int = 100
) -> list[DataResource]:
    """Resources whose name, topic, provider, description or field labels contain every word
    (Chinese needs no word splitting for this: each word is a substring)."""
    order = case({name: rank for rank, name in enumerate(LIBRARIES)}, value=DataResource.library)
    query = select(DataResource).order_by(order, DataResource.code).limit(limit)
    for word in words.split()[:5]:
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(or_(DataResource.search_text.like(f"%{escaped}%", escape="\\")))
    if library:
        query = query.where(DataResource.library == library)
    return list(session.scalars(query))


def standard_catalog() -> list[ResourceSpec]:
    """The resources every Qilu province starts with (data file shipped with the package)."""
    text = files("qilu.data").joinpath("standard_catalog.yaml").read_text(encoding="utf-8")
    return [parse_spec(entry) for entry in yaml.safe_load(text)]


def install_standard_catalog(session: Session) -> list[DataResource]:
    """Register the standard resources not registered yet, and give those registered earlier
    the fields a newer Qilu ships (a new schema version, when it breaks nothing); running it
    twice changes nothing. Returns the resources registered now."""
    known = {r.code: r for r in session.scalars(select(DataResource))}
    added = []
    for spec in standard_catalog():
        resource = known.get(spec.code)
        if resource is None:
            added.append(register_resource(session, spec, actor=roles.OPERATOR))
            continue
        current = schema_of(session, resource)
        shipped = [*current, *(f for f in spec.fields if f.name not in {c.name for c in current})]
        if len(shipped) > len(current) and not breaking_changes(current, shipped):
            change_schema(
                session, spec.code, shipped, note="随齐鲁标准目录更新新增字段", actor=roles.OPERATOR
            )
    return added
