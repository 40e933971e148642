"""The shipped service catalog as data: items, chains, form fields, materials and 秒批 rules,
read from the YAML files under `services/data` and checked against each other before any is
stored. Nothing here touches the database."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from qilu.codes.items import basic_code
from qilu.errors import QiluError, validation_problems

ItemType = Literal[
    "行政许可",
    "行政处罚",
    "行政强制",
    "行政征收",
    "行政给付",
    "行政检查",
    "行政确认",
    "行政奖励",
    "行政裁决",
    "其他行政权力",
    "公共服务",
]
# The catalog Qilu ships is the province's own (its items are coded under Shandong's prefix);
# an item the national 基本目录 lists keeps the national code once the province loads it.
KEEPER = "37"
Level = Literal["province", "city", "county"]
Subject = Literal["person", "enterprise"]
LEVEL_NAMES = {"province": "省级", "city": "市级", "county": "县级"}
SUBJECT_NAMES = {"person": "个人", "enterprise": "法人"}
DEPTH_NAMES = {
    1: "一级（信息发布）",
    2: "二级（在线预约）",
    3: "三级（在线预审）",
    4: "四级（全程网办）",
}
DEFAULT_FIELDS: dict[str, list[str]] = {
    "person": ["applicant_name", "applicant_id_number", "phone", "address"],
    "enterprise": ["entity_name", "uscc", "legal_representative", "entity_address", "phone"],
}
DEFAULT_FILE_TYPES = ["pdf", "jpg", "png"]
KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RULE_KEY = re.compile(r"^[a-z][a-z0-9-]{1,39}$")


class FormField(BaseModel):
    """One fact a form asks (fields.yaml); `prefill` names where the applicant's value is."""

    key: str
    label: str
    type: Literal["text", "date", "number", "choice", "phone", "id_number"] = "text"
    options: list[str] = Field(default_factory=list)
    prefill: str | None = None

    @model_validator(mode="after")
    def _options(self) -> FormField:
        if (self.type == "choice") != bool(self.options):
            raise ValueError(f"字段 {self.key}：只有选择题列出选项，且必须列出")
        if self.prefill and not re.match(r"^(person|entity)\.[a-z_]+$", self.prefill):
            raise ValueError(f"字段 {self.key}：预填来源须为 person.<字段> 或 entity.<字段>")
        return self


class Material(BaseModel):
    """A material an item asks for and where it can come from instead of the applicant."""

    name: str
    source: str = "applicant"  # applicant | library:<resource code> | licence:<licence type>
    types: list[str] = Field(default_factory=lambda: list(DEFAULT_FILE_TYPES))
    max_files: int = Field(default=5, ge=1, le=20)

    @field_validator("source")
    @classmethod
    def _source(cls, source: str) -> str:
        if source != "applicant" and not re.match(r"^(library|licence):\S+$", source):
            raise ValueError("材料来源须为 applicant、library:<资源代码> 或 licence:<证照类型>")
        return source

    @property
    def is_exempt_possible(self) -> bool:
        """Can the applicant be spared handing it in (免提交)?"""
        return self.source != "applicant"


class SpecialStep(BaseModel):
    """A step that stops the clock (特殊环节: 现场核查, 公示, 专家评审…)."""

    name: str
    days: int = Field(ge=1, le=365)


# 实施清单 elements an administrator may write per item: those that depend on the place or are
# free text (`services.implementation` computes the rest).
GUIDE_ELEMENTS = (
    "办理地点",
    "办理时间",
    "咨询方式",
    "监督投诉方式",
    "办理流程",
    "结果样本",
    "数量限制",
    "中介服务",
    "收费依据",
    "联办机构",
    "现场办理原因说明",
    "是否支持物流快递",
    "是否支持网上支付",
)


class FaqEntry(BaseModel):
    q: str = Field(min_length=2, max_length=200)
    a: str = Field(min_length=1, max_length=1000)


class Issues(BaseModel):
    licence: str
    years: int = Field(default=0, ge=0, le=50)  # 0 = 长期有效
    # whom it is about: the applicant (or their enterprise), or the child the form names
    holder: Literal["applicant", "child"] = "applicant"


class ItemSpec(BaseModel):
    """One service item as the catalog files describe it, with its section's defaults applied."""

    code: str  # 基本编码
    name: str = Field(min_length=2, max_length=60)
    type: ItemType
    department_kind: str
    level: Level
    subject: Subject
    basis: str = Field(min_length=2)
    conditions: str = ""
    materials: list[str] = Field(default_factory=list)
    fields: list[str] = Field(default_factory=list)
    legal_days: int = Field(ge=0, le=365)
    promised_days: int = Field(ge=0, le=365)
    steps: list[SpecialStep] = Field(default_factory=list)
    fee: str = "不收费"
    visits: int = Field(default=0, ge=0, le=5)
    depth: int = Field(default=4, ge=1, le=4)
    province_wide: bool = True
    instant: str | None = None
    # 免申即享: residents the rule approves are found by a scan and offered it unasked.
    proactive: bool = False
    issues: Issues | None = None
    keywords: list[str] = Field(default_factory=list)
    # 实施清单 elements written for the item (办理地点, 办理时间, 咨询方式…; see
    # `services.implementation.WRITABLE`) and its 常见问题.
    guide: dict[str, str] = Field(default_factory=dict)
    faq: list[FaqEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _limits(self) -> ItemSpec:
        if self.promised_days > self.legal_days:
            raise ValueError(f"{self.name}：承诺时限不得长于法定时限")
        unknown = sorted(set(self.guide) - set(GUIDE_ELEMENTS))
        if unknown:
            raise ValueError(f"{self.name}：不能填写这些实施清单要素：{'、'.join(unknown)}")
        long = [k for k, v in self.guide.items() if len(v) > 500]
        if long:
            raise ValueError(f"{self.name}：{long[0]}不能超过 500 字")
        return self

    @property
    def all_fields(self) -> list[str]:
        return list(dict.fromkeys([*DEFAULT_FIELDS[self.subject], *self.fields]))


class Option(BaseModel):
    label: str
    value: str | None = None
    exit: str | None = None  # an exit page: the journey ends with this explanation
    # For a question asked as a number: the option holds from this value up (to the next one's)
    min: float | None = None

    @model_validator(mode="after")
    def _one(self) -> Option:
        if (self.value is None) == (self.exit is None):
            raise ValueError(f"选项“{self.label}”须有 value 或 exit 之一")
        return self


class Question(BaseModel):
    key: str
    text: str
    options: list[Option] = Field(min_length=2)
    # A question asked as a number that is also a form field (经营场所面积): the number picks the
    # option by its `min` and fills the field, so the form does not ask it again.
    field: str | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Question:
        bounded = [o.min is not None for o in self.options]
        if self.field and not all(bounded):
            raise ValueError(f"问题“{self.text}”按数值回答，每个选项须有 min")
        if not self.field and any(bounded):
            raise ValueError(f"问题“{self.text}”不按数值回答，选项不能有 min")
        return self

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        if not KEY.match(key):
            raise ValueError("问题代码须为小写英文")
        return key


class ChainItem(BaseModel):
    item: str  # the item's name in the files, its basic code once installed
    after: list[str] = Field(default_factory=list)
    when: dict[str, str] = Field(default_factory=dict)


class ChainSpec(BaseModel):
    code: str
    # The national 高效办成一件事 matter it does (`NationalMatter.code`), if one.
    national: str | None = None
    name: str = Field(min_length=2, max_length=40)
    subject: Subject = Field(alias="for")
    category: str
    summary: str
    keywords: list[str] = Field(default_factory=list)
    questions: list[Question] = Field(min_length=1)
    items: list[ChainItem] = Field(min_length=1)

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _consistent(self) -> ChainSpec:
        keys = {q.key: {o.value for o in q.options if o.value} for q in self.questions}
        names = [i.item for i in self.items]
        if len(set(names)) != len(names):
            raise ValueError(f"一件事“{self.name}”重复列出事项")
        for entry in self.items:
            for key, value in entry.when.items():
                if value not in keys.get(key, set()):
                    raise ValueError(
                        f"一件事“{self.name}”：{entry.item} 的条件 {key}={value} 无对应选项"
                    )
            unknown = [a for a in entry.after if a not in names]
            if unknown:
                raise ValueError(
                    f"一件事“{self.name}”：{entry.item} 等待的事项不在本链中：{unknown}"
                )
        return self


class RuleInput(BaseModel):
    fact: str
    label: str


class RuleRow(BaseModel):
    when: dict[str, str]
    then: Literal["approve", "refer"]
    reason: str


class RuleSpec(BaseModel):
    key: str
    name: str
    inputs: dict[str, RuleInput]
    rules: list[RuleRow] = Field(min_length=1)

    @model_validator(mode="after")
    def _inputs(self) -> RuleSpec:
        for row in self.rules:
            unknown = set(row.when) - set(self.inputs)
            if unknown:
                raise ValueError(f"规则 {self.key} 引用了未声明的输入：{sorted(unknown)}")
        return self


class NationalMatter(BaseModel):
    """A matter of the national 高效办成一件事 lists and how the province covers it."""

    code: str = Field(pattern=r"^\d{4}-\d-\d{2}$")
    name: str
    batch: str
    chain: str | None = None  # the chain that does it here
    needs: list[str] = Field(default_factory=list)  # items the national matter expects
    outside: str | None = None  # why a provincial platform does not handle it

    @model_validator(mode="after")
    def _one(self) -> NationalMatter:
        if (self.chain is None) == (self.outside is None):
            raise ValueError(f"国家一件事“{self.name}”须写明本省的一件事或不在本平台办理的原因")
        return self


class LicenceType(BaseModel):
    """An entry of the 证照目录 (GB/T 36902): a licence type and who defines it."""

    name: str = Field(min_length=2, max_length=60)
    seq: int = Field(ge=1, le=999)
    defined_by: str  # the kind of department that defines it, at the province level
    holders: list[Subject] = Field(min_length=1)
    type_code: str | None = None  # the national 证照类型代码, where the province has it


class Catalog(BaseModel):
    """Everything the files hold, cross-checked: what `install` stores."""

    items: list[ItemSpec]
    chains: list[ChainSpec]
    fields: dict[str, FormField]
    materials: dict[str, Material]
    rules: dict[str, RuleSpec]
    synonyms: list[list[str]]
    licence_types: dict[str, LicenceType]
    national_matters: list[NationalMatter]

    def material(self, name: str) -> Material:
        return self.materials.get(name) or Material(name=name)


def _read(name: str) -> Any:
    return yaml.safe_load(files("qilu.services").joinpath("data", name).read_text("utf-8"))


def _items(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item with its section's defaults, with its basic code (GB/T 39554.1): keeper,
    type, the section's department code, the item's sequence as main item, no sub-item."""
    out = []
    for section in sections:
        for entry in section["items"]:
            days = entry.pop("days")
            item = {
                "department_kind": section["kind"],
                "level": section["level"],
                "subject": section["subject"],
                "basis": section["basis"],
                **entry,
                "legal_days": days[0],
                "promised_days": days[1],
            }
            item["code"] = basic_code(KEEPER, item["type"], section["code"], entry["seq"])
            item.pop("seq")
            out.append(item)
    return out


def _invalid(where: str, error: ValidationError | ValueError) -> QiluError:
    if isinstance(error, ValidationError):
        first = validation_problems([error.errors()[0]])[0]
        place = "" if first["field"] == "body" else first["field"]
        reason = first["reason"]
    else:
        place, reason = "", str(error)
    return QiluError(
        "services.catalog_invalid",
        f"事项目录数据有误（{where}{'：' + place if place else ''}）：{reason}",
        field=where,
    )


def parse_catalog(raw: dict[str, Any]) -> Catalog:
    """The files' contents as one checked catalog: every name a chain, item or field uses must
    exist; item names and codes are unique; rules named by items exist."""
    try:
        fields = {k: FormField(key=k, **v) for k, v in raw["fields"].items()}
        materials = {k: Material(name=k, **v) for k, v in raw["materials"].items()}
        rules = {k: RuleSpec(key=k, **v) for k, v in raw["rules"].items()}
        licence_types = {t["name"]: LicenceType.model_validate(t) for t in raw["licence_types"]}
        matters = [NationalMatter.model_validate(m) for m in raw["national_matters"]]
        items = [ItemSpec.model_validate(i) for i in _items(raw["items"])]
        national = {m.chain: m.code for m in matters if m.chain}
        chains = [
            ChainSpec.model_validate(
                {"code": f"C{n:03d}", "national": national.get(c["name"]), **c}
            )
            for n, c in enumerate(raw["chains"], start=1)
        ]
    except ValidationError as error:
        raise _invalid("数据文件", error) from None
    problems: list[str] = []
    by_name = {i.name: i for i in items}
    if len(by_name) != len(items):
        problems.append("事项名称重复")
    if len({i.code for i in items}) != len(items):
        problems.append("事项编码重复")
    for item in items:
        problems += [
            f"{item.name}：未定义的表单字段 {f}" for f in item.all_fields if f not in fields
        ]
        if item.instant and item.instant not in rules:
            problems.append(f"{item.name}：未定义的秒批规则 {item.instant}")
        if item.proactive and not item.instant:
            problems.append(f"{item.name}：免申即享的事项须有秒批规则")
        if item.issues is not None:
            kind = "person" if item.issues.holder == "child" else item.subject
            listed = licence_types.get(item.issues.licence)
            if listed is None:
                problems.append(f"{item.name}：证照目录中没有“{item.issues.licence}”")
            elif kind not in listed.holders:
                problems.append(f"{item.name}：“{listed.name}”的持证主体不含{SUBJECT_NAMES[kind]}")
    read = {m.name: m.source.removeprefix("licence:") for m in materials.values()}
    problems += [
        f"材料“{name}”：证照目录中没有“{licence}”"
        for name, licence in read.items()
        if licence != materials[name].source and licence not in licence_types
    ]
    chain_names = {c.name for c in chains}
    for matter in matters:
        if matter.chain and matter.chain not in chain_names:
            problems.append(f"国家一件事“{matter.name}”：没有名为“{matter.chain}”的一件事")
        problems += [
            f"国家一件事“{matter.name}”：目录中没有事项“{n}”"
            for n in matter.needs
            if n not in by_name
        ]
    if len({m.code for m in matters}) != len(matters):
        problems.append("国家一件事清单编码重复")
    codes = [(t.defined_by, t.seq) for t in licence_types.values()]
    if len(set(codes)) != len(codes):
        problems.append("证照目录中同一定义部门的顺序号重复")
    for chain in chains:
        problems += [
            f"一件事“{chain.name}”：目录中没有事项“{e.item}”"
            for e in chain.items
            if e.item not in by_name
        ]
    if problems:
        raise _invalid("交叉检查", ValueError("；".join(problems[:10])))
    return Catalog(
        items=items,
        chains=chains,
        fields=fields,
        materials=materials,
        rules=rules,
        synonyms=raw["synonyms"],
        licence_types=licence_types,
        national_matters=matters,
    )


@cache
def shipped_catalog() -> Catalog:
    """The catalog shipped in the package (read and checked once per process)."""
    return parse_catalog(
        {
            "items": _read("items.yaml"),
            "chains": _read("chains.yaml"),
            "fields": _read("fields.yaml"),
            "materials": _read("materials.yaml"),
            "rules": _read("rules.yaml"),
            "synonyms": _read("synonyms.yaml"),
            "licence_types": _read("licence_types.yaml"),
            "national_matters": _read("national_matters.yaml"),
        }
    )
