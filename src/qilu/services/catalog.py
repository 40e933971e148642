"""The service catalog in the store (事项清单): installing the shipped files, versioned edits,
finding the competent department of an item in a division (实施清单), and plain-Chinese search
over items and chains."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from qilu.audit.service import record
from qilu.codes import items as item_codes
from qilu.codes.divisions import SHANDONG
from qilu.errors import NotFound, QiluError, validation_problems
from qilu.identity import roles
from qilu.identity.models import Department
from qilu.services.models import Application, ServiceChain, ServiceItem
from qilu.services.specs import (
    LEVEL_NAMES,
    SUBJECT_NAMES,
    Catalog,
    ChainSpec,
    ItemSpec,
    shipped_catalog,
)

# Words people put around what they want; they say nothing about which service it is.
FILLER = re.compile(
    r"我要|我想|想要|怎么|如何|怎样|办理|申请|在哪里?|哪里|需要|可以|请问|[了的吗呢？?，,。\s]"
)
SEARCH_LIMIT = 30


@dataclass(frozen=True)
class Installed:
    items_added: int
    chains_added: int


def _item_text(spec: ItemSpec) -> str:
    return " ".join([spec.name, spec.type, *spec.keywords, spec.conditions[:60]])


def _chain_text(spec: ChainSpec, names: list[str]) -> str:
    return " ".join([spec.name, spec.category, spec.summary, *spec.keywords, *names])


def install_catalog(session: Session, catalog: Catalog | None = None) -> Installed:
    """Store the shipped catalog: new items and chains as version 1, changed ones as a new
    version (the old one stays for the applications made under it), unchanged ones untouched."""
    catalog = catalog or shipped_catalog()
    now = datetime.now(UTC)
    current_items = {i.code: i for i in session.scalars(_current(ServiceItem))}
    items_added = 0
    for spec in catalog.items:
        dumped = spec.model_dump(mode="json")
        existing = current_items.get(spec.code)
        if existing is not None and existing.spec == dumped:
            continue
        _add_item_version(session, spec, existing, now, note="随目录文件发布")
        items_added += 1
    code_of = {i.name: i.code for i in catalog.items}
    current_chains = {c.code: c for c in session.scalars(_current(ServiceChain))}
    chains_added = 0
    for chain in catalog.chains:
        resolved = chain.model_copy(
            update={
                "items": [
                    entry.model_copy(
                        update={
                            "item": code_of[entry.item],
                            "after": [code_of[a] for a in entry.after],
                        }
                    )
                    for entry in chain.items
                ]
            }
        )
        dumped = resolved.model_dump(mode="json", by_alias=True)
        existing_chain = current_chains.get(chain.code)
        if existing_chain is not None and existing_chain.spec == dumped:
            continue
        if existing_chain is not None:
            existing_chain.is_current = False
        session.add(
            ServiceChain(
                code=chain.code,
                version=existing_chain.version + 1 if existing_chain else 1,
                name=chain.name,
                subject=chain.subject,
                category=chain.category,
                spec=dumped,
                search_text=_chain_text(chain, [e.item for e in chain.items]),
                is_current=True,
                created_at=now,
            )
        )
        chains_added += 1
    session.flush()
    return Installed(items_added, chains_added)


Row = TypeVar("Row", ServiceItem, ServiceChain)


def _current(model: type[Row]) -> Select[Row]:
    return select(model).where(model.is_current.is_(True))


def _add_item_version(
    session: Session,
    spec: ItemSpec,
    existing: ServiceItem | None,
    now: datetime,
    *,
    note: str,
    actor_person_id: int | None = None,
) -> ServiceItem:
    if existing is not None:
        # Flip the old version first: the partial order of flushes must never show two current.
        session.execute(
            update(ServiceItem).where(ServiceItem.id == existing.id).values(is_current=False)
        )
        existing.is_current = False
    row = ServiceItem(
        code=spec.code,
        version=existing.version + 1 if existing else 1,
        name=spec.name,
        department_kind=spec.department_kind,
        level=spec.level,
        subject=spec.subject,
        spec=spec.model_dump(mode="json"),
        search_text=_item_text(spec),
        is_current=True,
        change_note=note,
        created_at=now,
        created_by_person_id=actor_person_id,
    )
    session.add(row)
    return row


def current_item(session: Session, code: str) -> ServiceItem:
    found = session.scalars(_current(ServiceItem).where(ServiceItem.code == code)).one_or_none()
    if found is None:
        raise NotFound("services.item_not_found", f"没有编码为 {code} 的事项")
    return found


def current_chain(session: Session, code: str) -> ServiceChain:
    found = session.scalars(_current(ServiceChain).where(ServiceChain.code == code)).one_or_none()
    if found is None:
        raise NotFound("services.chain_not_found", f"没有编码为 {code} 的一件事")
    return found


def current_items(session: Session) -> list[ServiceItem]:
    return list(session.scalars(_current(ServiceItem).order_by(ServiceItem.code)))


def item_names(session: Session, codes: list[str]) -> dict[str, str]:
    """The current names of these items, by code."""
    rows = session.execute(
        select(ServiceItem.code, ServiceItem.name).where(
            ServiceItem.is_current.is_(True), ServiceItem.code.in_(codes)
        )
    )
    return {key: name for key, name in rows}


def item_versions(session: Session, code: str) -> list[ServiceItem]:
    return list(
        session.scalars(
            select(ServiceItem).where(ServiceItem.code == code).order_by(ServiceItem.version)
        )
    )


# What an administrator may change in an item, by the label its form shows; its code, the
# identity of its name and its department stay.
ELEMENT_LABELS = {
    "name": "事项名称",
    "conditions": "申请条件",
    "basis": "设定依据",
    "materials": "申请材料",
    "legal_days": "法定时限",
    "promised_days": "承诺时限",
    "fee": "收费",
    "visits": "到现场次数",
    "depth": "网办深度",
    "province_wide": "全省通办",
    "keywords": "搜索关键词",
    "guide": "实施清单要素",
    "faq": "常见问题",
}
EDITABLE = tuple(ELEMENT_LABELS)


def faq_from_text(text: str) -> list[dict[str, str]]:
    """常见问题 as an administrator types them: one per line, question｜answer."""
    entries = []
    for n, line in enumerate((t.strip() for t in text.splitlines()), start=1):
        if not line:
            continue
        question, bar, answer = line.replace("|", "｜").partition("｜")
        if not bar or not question.strip() or not answer.strip():
            raise QiluError(
                "services.faq_line", f"常见问题第 {n} 行：请用“｜”分隔问题和回答", field="faq"
            )
        entries.append({"q": question.strip(), "a": answer.strip()})
    return entries


def change_item(
    session: Session,
    code: str,
    changes: dict[str, Any],
    *,
    actor: roles.Actor,
    note: str,
) -> ServiceItem:
    """A new version of an item with `changes`; applications already made keep their version."""
    roles.authorize(actor, "services.catalog", roles.PROVINCE)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise QiluError(
            "services.item_field", f"不能修改这些要素：{'、'.join(unknown)}", field=unknown[0]
        )
    if not note.strip():
        raise QiluError("services.change_note", "请说明修改原因", field="note")
    existing = current_item(session, code)
    try:
        spec = ItemSpec.model_validate({**existing.spec, **changes})
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "item"
        reason = validation_problems([first])[0]["reason"]
        label = ELEMENT_LABELS.get(field, field)
        raise QiluError("services.item_invalid", f"{label}：{reason}", field=field) from None
    if spec.model_dump(mode="json") == existing.spec:
        raise QiluError("services.item_unchanged", "没有任何修改", field="note")
    row = _add_item_version(
        session,
        spec,
        existing,
        datetime.now(UTC),
        note=note,
        actor_person_id=roles.person_of(actor),
    )
    session.flush()
    record(
        session,
        "services.item_changed",
        actor_person_id=roles.person_of(actor),
        subject=f"item:{code}",
        details={"version": row.version, "changes": sorted(changes), "note": note},
    )
    return row


def competent_department(session: Session, item: ServiceItem, division_code: str) -> Department:
    """The department implementing `item` for `division_code` (see `competent_departments`)."""
    return competent_departments(session, [item], division_code)[item.id]


def competent_departments(
    session: Session, items: list[ServiceItem], division_code: str, *, all_needed: bool = True
) -> dict[int, Department]:
    """The department implementing each item for `division_code`: its kind at the item's
    level (a county's, its city's or the province's), going up where a level has no such
    office. One query for all the items of an application. An item no department implements
    there is refused, unless `all_needed` is off (a listing of what is implemented there)."""
    county, city = division_code, division_code[:4] + "00"
    places = {"county": [county, city, SHANDONG], "city": [city, SHANDONG], "province": [SHANDONG]}
    found = session.scalars(
        select(Department).where(
            Department.kind.in_({i.department_kind for i in items}),
            Department.division_code.in_({county, city, SHANDONG}),
        )
    ).all()
    merged = {d.merged_into_id for d in found if d.merged_into_id is not None}
    successors = (
        {d.id: d for d in session.scalars(select(Department).where(Department.id.in_(merged)))}
        if merged
        else {}
    )
    # A merged department's work is its successor's (撤并): new cases go there too.
    by_place = {
        (d.kind, d.division_code): successors[d.merged_into_id] if d.merged_into_id else d
        for d in found
    }
    chosen: dict[int, Department] = {}
    for item in items:
        department = next(
            (
                by_place[(item.department_kind, p)]
                for p in places[item.level]
                if (item.department_kind, p) in by_place
            ),
            None,
        )
        if department is None and not all_needed:
            continue
        if department is None:
            raise NotFound(
                "services.no_department",
                f"{division_code} 没有实施“{item.name}”的部门",
                field="division_code",
            )
        chosen[item.id] = department
    return chosen


def implementation_code(item: ServiceItem, department: Department) -> str:
    """实施编码 (GB/T 39554.1): the implementing department's USCC, its 行使层级 and the item's
    basic code."""
    return item_codes.implementation_code(department.uscc, department.level, item.code)


@dataclass(frozen=True)
class Hit:
    kind: str  # item | chain
    code: str
    name: str
    subject: str
    detail: str


@dataclass(frozen=True)
class Overview:
    """The current catalog as the portal reads it: counts, the chains by category, and every
    entry with its search text (a few hundred rows, searched in memory)."""

    items: int
    chains: int
    instant: int
    groups: dict[str, dict[str, list[tuple[str, str]]]]  # subject -> category -> (code, name)
    entries: list[tuple[Hit, str]]  # (what a hit shows, the text searched), chains first


_overviews: dict[tuple[int, int], Overview] = {}


def _stamp(session: Session) -> tuple[int, int]:
    """Which catalog is stored: the newest item and chain version ids."""
    row = session.execute(
        select(
            select(func.max(ServiceItem.id)).scalar_subquery(),
            select(func.max(ServiceChain.id)).scalar_subquery(),
        )
    ).one()
    return (row[0] or 0, row[1] or 0)


def overview(session: Session) -> Overview:
    """Read from the stored catalog; kept per process until the catalog changes (any new
    version has a higher id, so the stamp moves; one query checks it)."""
    stamp = _stamp(session)
    if stamp not in _overviews:
        items = session.scalars(_current(ServiceItem).order_by(func.length(ServiceItem.name))).all()
        chains = session.scalars(_current(ServiceChain).order_by(ServiceChain.code)).all()
        groups: dict[str, dict[str, list[tuple[str, str]]]] = {"person": {}, "enterprise": {}}
        for chain in chains:
            groups[chain.subject].setdefault(chain.category, []).append((chain.code, chain.name))
        entries = [
            (Hit("chain", c.code, c.name, c.subject, _detail(c)), c.search_text)
            for c in sorted(chains, key=lambda c: len(c.name))
        ] + [(Hit("item", i.code, i.name, i.subject, _detail(i)), i.search_text) for i in items]
        instant = sum(1 for i in items if i.spec.get("instant"))
        _overviews.clear()
        _overviews[stamp] = Overview(len(items), len(chains), instant, groups, entries)
    return _overviews[stamp]


def _terms(query: str, synonyms: list[list[str]]) -> list[list[str]]:
    """The query as terms, each a list of words any of which may match: synonym groups for the
    words the query contains, and what is left of it as one partial word."""
    text = FILLER.sub(" ", query).strip()
    terms: list[list[str]] = []
    for group in synonyms:
        found = [word for word in group if word in text]
        if found:
            terms.append(group)
            for word in sorted(found, key=len, reverse=True):
                text = text.replace(word, " ")
    terms += [[word] for word in text.split() if len(word) >= 2 or not terms]
    return terms


SUGGESTIONS = 5


def search(session: Session, query: str, *, subject: str | None = None) -> list[Hit]:
    """Items and chains matching every term of `query` (partial words and common synonyms),
    chains first, then names that match before texts that do, shorter names first."""
    terms = _terms(query, shipped_catalog().synonyms)
    if not terms:
        return []
    hits = [
        hit
        for hit, text in overview(session).entries
        if (subject is None or hit.subject == subject)
        and all(any(word in text for word in term) for term in terms)
    ]
    first_term = terms[0]
    hits.sort(key=lambda h: (h.kind != "chain", not any(w in h.name for w in first_term)))
    return hits[:SEARCH_LIMIT]


def did_you_mean(session: Session, query: str, *, subject: str | None = None) -> list[Hit]:
    """When nothing matches every term (您是不是要找): what matches the most of them, at least
    one, best first; nothing when the query says nothing the catalog knows."""
    terms = _terms(query, shipped_catalog().synonyms)
    if len(terms) < 2:
        return []
    scored = []
    for hit, text in overview(session).entries:
        if subject is not None and hit.subject != subject:
            continue
        matched = sum(1 for term in terms if any(word in text for word in term))
        named = sum(1 for term in terms if any(word in hit.name for word in term))
        if matched:
            scored.append((-matched, -named, hit.kind != "chain", len(hit.name), hit))
    scored.sort(key=lambda entry: entry[:4])
    return [entry[4] for entry in scored[:SUGGESTIONS]]


def _detail(row: ServiceItem | ServiceChain) -> str:
    if isinstance(row, ServiceChain):
        return str(row.spec["summary"])
    spec = row.spec
    return f"{spec['type']} · {LEVEL_NAMES[row.level]} · {SUBJECT_NAMES[row.subject]}"


# 长辈版's tiles: what older residents come for most (pension, allowances, medical cover, ID).
CARE_SERVICES = (
    "高龄津贴申领",
    "老年人优待证办理",
    "城乡居民养老保险待遇申领",
    "职工基本养老保险待遇申领",
    "养老服务补贴申请",
    "异地就医备案",
    "门诊慢特病待遇认定",
    "社会保障卡挂失补换",
    "居民身份证换领",
    "医保个人账户家庭共济备案",
)
# 一件事 a family member most often does for an elderly or disabled relative (亲友代办).
FAMILY_CHAINS = ("退休", "老年人福利补贴", "就医费用报销", "残疾人服务")
# 热门服务 until the applications themselves say what people come for.
POPULAR = (
    "新生儿出生",
    "我要开小餐馆",
    "租房提取住房公积金",
    "居民身份证换领",
    "异地就医备案",
    "无犯罪记录证明开具",
    "机动车驾驶证换证",
    "企业设立登记",
)
POPULAR_DAYS = 90


def named(session: Session, names: tuple[str, ...] | list[str]) -> list[Hit]:
    """The catalog's entries of these names, in that order (a name no longer offered is left
    out)."""
    by_name: dict[str, Hit] = {}
    for hit, _ in overview(session).entries:
        by_name.setdefault(hit.name, hit)
    return [by_name[n] for n in names if n in by_name]


def popular(session: Session, *, limit: int = 8, now: datetime | None = None) -> list[Hit]:
    """热门服务: the chains and items most applied for in the last `POPULAR_DAYS` days, topped up
    from `POPULAR` while there are few applications."""
    since = (now or datetime.now(UTC)) - timedelta(days=POPULAR_DAYS)
    name = func.coalesce(ServiceChain.name, ServiceItem.name)
    counted = session.scalars(
        select(name)
        .select_from(Application)
        .outerjoin(ServiceChain, ServiceChain.id == Application.chain_id)
        .outerjoin(ServiceItem, ServiceItem.id == Application.item_id)
        .where(Application.created_at >= since)
        .group_by(name)
        .order_by(func.count().desc(), name)
        .limit(limit)
    ).all()
    names = list(dict.fromkeys([str(n) for n in counted] + list(POPULAR)))
    return named(session, names)[:limit]


_popular: dict[tuple[int, int], tuple[float, list[Hit]]] = {}
POPULAR_KEPT = 600.0  # seconds: the home page counts at most once every ten minutes per process


def popular_now(session: Session) -> list[Hit]:
    """`popular`, counted at most once per `POPULAR_KEPT` seconds for a catalog (the home page
    asks often)."""
    stamp = _stamp(session)
    kept = _popular.get(stamp)
    if kept is None or time.monotonic() - kept[0] > POPULAR_KEPT:
        _popular.clear()
        kept = _popular[stamp] = (time.monotonic(), popular(session))
    return kept[1]


@dataclass(frozen=True)
class Coverage:
    """How the province covers one matter of the national 高效办成一件事 lists."""

    code: str
    name: str
    batch: str
    status: str  # covered | partial | missing | outside
    chain_code: str | None
    missing: list[str]  # items the national matter expects that the chain lacks
    why: str = ""


COVERAGE_NAMES = {
    "covered": "已覆盖",
    "partial": "部分覆盖",
    "missing": "未覆盖",
    "outside": "不在本平台办理",
}


def national_coverage(session: Session, catalog: Catalog | None = None) -> list[Coverage]:
    """Each national matter against the chains stored now (an administrator's edits count)."""
    catalog = catalog or shipped_catalog()
    chains = {c.name: c for c in session.scalars(_current(ServiceChain))}
    codes = {e["item"] for c in chains.values() for e in c.spec["items"]}
    names = item_names(session, sorted(codes))
    out = []
    for matter in catalog.national_matters:
        if matter.outside:
            out.append(
                Coverage(
                    matter.code, matter.name, matter.batch, "outside", None, [], matter.outside
                )
            )
            continue
        chain = chains.get(matter.chain or "")
        if chain is None:
            out.append(
                Coverage(matter.code, matter.name, matter.batch, "missing", None, matter.needs)
            )
            continue
        held = {names.get(e["item"], "") for e in chain.spec["items"]}
        missing = [n for n in matter.needs if n not in held]
        status = "partial" if missing else "covered"
        out.append(Coverage(matter.code, matter.name, matter.batch, status, chain.code, missing))
    return out
