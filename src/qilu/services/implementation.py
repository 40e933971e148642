"""The 实施清单 of an item in a place (GB/T 39554 基本目录及实施清单): the national element set,
one value each, from the item's catalog entry, its competent department there, and the
elements an administrator wrote for it (`guide`, `faq`; versioned with the item).

The elements and their groups follow the national exchange tables for 实施清单 (the 基本信息 and
扩展信息 of 许可、给付、确认… items, their 材料, 收费 and 常见问题 lists): about sixty. Where an
element depends on the place (办理地点, 办理时间, 咨询方式, 监督投诉方式) and the administrator
wrote none, the value a provincial 政务服务中心 gives by default is shown, and marked as such.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from qilu.codes.divisions import divisions
from qilu.codes.items import LEVEL_OF, USE_LEVELS
from qilu.identity.models import Department
from qilu.services import catalog as catalogue
from qilu.services.models import ServiceItem
from qilu.services.specs import DEPTH_NAMES, SUBJECT_NAMES, Catalog

DEFAULTS = {
    "办理地点": "{place}政务服务中心 {department}窗口",
    "办理时间": "法定工作日 上午9:00—12:00，下午13:30—17:00（法定节假日除外）",
    "咨询方式": "12345政务服务便民热线；{place}政务服务中心咨询窗口；爱山东 App 在线咨询",
    "监督投诉方式": "12345政务服务便民热线；“好差评”评价与投诉；{place}政务服务管理部门",
    "是否支持物流快递": "是",
    "是否支持网上支付": "否",
}
TYPE_RESULT = {"行政许可": "证照", "行政确认": "证照", "行政给付": "其他"}


@dataclass(frozen=True)
class Element:
    group: str
    label: str
    value: str
    default: bool = False  # the platform's default, not written for this item


def _yes(flag: bool) -> str:
    return "是" if flag else "否"


def elements(
    item: ServiceItem,
    catalog: Catalog,
    *,
    department: Department | None = None,
    implementation_code: str = "",
) -> list[Element]:
    """The 实施清单 of `item`, in `department` if one is given (otherwise the elements that
    are the same everywhere, 基本目录)."""
    spec: dict[str, Any] = item.spec
    guide: dict[str, str] = spec.get("guide") or {}
    place = divisions().full_name(department.division_code) if department else ""
    out: list[Element] = []

    def add(group: str, label: str, value: Any) -> None:
        out.append(Element(group, label, "" if value is None else str(value)))

    def written(group: str, label: str) -> None:
        if guide.get(label):
            add(group, label, guide[label])
        elif label in DEFAULTS and department is not None:
            text = DEFAULTS[label].format(place=place, department=department.name)
            out.append(Element(group, label, text, default=True))
        else:
            add(group, label, "无")

    issues = spec.get("issues") or {}
    basic = "基本信息"
    add(basic, "事项名称", item.name)
    add(basic, "事项类型", spec["type"])
    add(basic, "基本编码", item.code)
    add(basic, "事项版本", item.version)
    add(basic, "事项状态", "在用")
    add(basic, "设定依据", spec["basis"])
    add(basic, "权力来源", "法定本级行使")
    add(basic, "服务对象", "自然人" if item.subject == "person" else "法人")
    add(basic, "行使层级", USE_LEVELS[LEVEL_OF[item.level]])
    add(basic, "通办范围", "全省通办" if spec.get("province_wide") else "本行政区域")
    chains = [c for c in catalog.chains if any(e.item == item.name for e in c.items)]
    themes = sorted({c.category for c in chains})
    theme = "面向自然人主题分类" if item.subject == "person" else "面向法人主题分类"
    add(basic, theme, "、".join(themes) or "无")
    if department is not None:
        agency = "实施主体"
        add(agency, "实施编码", implementation_code)
        add(agency, "业务办理项编码", "无（事项不再细分办理项）")
        add(agency, "实施主体", department.name)
        add(agency, "实施主体性质", "法定机关")
        add(agency, "实施主体编码", department.uscc)
        add(agency, "委托部门", "无")
        written(agency, "联办机构")
    handling = "办理信息"
    add(handling, "受理条件", spec.get("conditions") or "符合法定条件的申请人")
    add(handling, "法定办结时限", f"{spec['legal_days']} 个工作日")
    add(handling, "法定办结时限说明", "自受理之日起计算，特别程序时间不计入")
    add(
        handling,
        "承诺办结时限",
        f"{spec['promised_days']} 个工作日" if spec["promised_days"] else "即办",
    )
    add(handling, "承诺办结时限说明", "承诺时限短于法定时限的，按承诺时限办结")
    add(handling, "办件类型", "即办件" if spec["promised_days"] == 0 else "承诺件")
    add(handling, "办理形式", "网上办理、窗口办理" if spec.get("depth", 4) >= 3 else "窗口办理")
    add(handling, "到办事现场次数", f"{spec.get('visits', 0)} 次")
    written(handling, "现场办理原因说明")
    steps = spec.get("steps") or []
    special = "；".join(f"{s['name']}（{s['days']} 个工作日）" for s in steps)
    add(handling, "特别程序", special or "无")
    flow = "申请 → 受理 → 审查 → 决定 → 办结（送达）"
    add(handling, "办理流程", guide.get("办理流程") or flow)
    if department is not None:
        for label in ("办理地点", "办理时间", "咨询方式", "监督投诉方式"):
            written(handling, label)
    add(handling, "数量限制", guide.get("数量限制") or "无")
    add(handling, "中介服务", guide.get("中介服务") or "无")
    result = "结果"
    add(result, "审批结果类型", TYPE_RESULT.get(spec["type"], "其他") if issues else "其他")
    add(result, "审批结果名称", issues.get("licence") or "办结通知")
    add(result, "结果样本", guide.get("结果样本") or ("电子证照照面样式" if issues else "无"))
    add(result, "结果是否为电子证照", _yes(bool(issues)))
    online = "网办与便利"
    add(online, "是否网办", _yes(spec.get("depth", 4) >= 3))
    add(online, "网上办理深度", DEPTH_NAMES.get(spec.get("depth", 4), ""))
    add(online, "网办地址", f"/services/items/{item.code}")
    add(online, "移动端办理地址", f"/services/items/{item.code}（爱山东 App 同源）")
    add(online, "计算机端是否对接单点登录", "是")
    add(online, "移动端是否对接单点登录", "是")
    add(online, "是否进驻政务大厅", _yes(department is not None))
    add(online, "是否支持预约办理", _yes(spec.get("visits", 0) > 0))
    add(online, "是否支持终端办理", "否")
    if department is not None:
        written(online, "是否支持物流快递")
        written(online, "是否支持网上支付")
    add(online, "是否秒批", _yes(bool(spec.get("instant"))))
    add(online, "是否免申即享", _yes(bool(spec.get("proactive"))))
    materials = "申请材料"
    for n, name in enumerate(spec.get("materials") or [], start=1):
        material = catalog.material(name)
        source = "申请人自备" if material.source == "applicant" else "政府部门核发（可免提交）"
        add(
            materials,
            f"材料{n}",
            f"{name}；必要性：必要；形式：电子；来源渠道：{source}；"
            f"格式：{'、'.join(material.types)}；份数：1",
        )
    fees = "收费"
    add(fees, "是否收费", _yes(spec.get("fee", "不收费") != "不收费"))
    add(fees, "收费标准", spec.get("fee", "不收费"))
    add(
        fees,
        "收费依据",
        guide.get("收费依据") or ("无" if spec.get("fee") == "不收费" else "见设定依据"),
    )
    add(fees, "是否允许减免", "依法可减免的予以减免" if spec.get("fee") != "不收费" else "不涉及")
    faq = spec.get("faq") or []
    for n, entry in enumerate(faq, start=1):
        add("常见问题", f"问题{n}", f"问：{entry['q']} 答：{entry['a']}")
    add("服务对象说明", "办理对象", SUBJECT_NAMES[item.subject])
    return out


def grouped(listed: list[Element]) -> list[tuple[str, list[Element]]]:
    """The elements by group, in the order of the national set."""
    groups: dict[str, list[Element]] = {}
    for element in listed:
        groups.setdefault(element.group, []).append(element)
    return list(groups.items())


def listing(session: Session, division: str, catalog: Catalog) -> list[dict[str, Any]]:
    """The 实施清单 of every current item implemented for `division`, for export: one entry
    per implementation with all its elements."""
    out = []
    items = catalogue.current_items(session)
    departments = catalogue.competent_departments(session, items, division, all_needed=False)
    for item in items:
        department = departments.get(item.id)
        if department is None:  # no department implements it there
            continue
        code = catalogue.implementation_code(item, department)
        listed = elements(item, catalog, department=department, implementation_code=code)
        out.append(
            {
                "实施编码": code,
                "事项名称": item.name,
                "实施主体": department.name,
                "要素": {e.label: e.value for e in listed},
            }
        )
    return out
