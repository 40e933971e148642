"""The shipped catalog: checked as data, stored with versions, searched in plain Chinese."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from qilu.errors import QiluError
from qilu.identity import roles
from qilu.services import catalog
from qilu.services.models import ServiceChain, ServiceItem
from qilu.services.specs import parse_catalog, shipped_catalog

from .conftest import Province


def test_shipped_catalog_has_the_items_and_chains_the_plan_asks_for() -> None:
    shipped = shipped_catalog()
    assert len(shipped.items) >= 300
    assert len(shipped.chains) >= 100
    subjects = Counter(item.subject for item in shipped.items)
    assert subjects["person"] > 100 and subjects["enterprise"] > 100
    assert {i.department_kind for i in shipped.items} >= {
        "public_security", "civil_affairs", "human_resources", "market_regulation", "approval",
        "health", "taxation", "medical_security", "housing_fund", "natural_resources",
    }  # fmt: skip
    assert all(i.promised_days <= i.legal_days for i in shipped.items)
    assert len({i.code for i in shipped.items}) == len(shipped.items)


def _raw() -> dict:
    from importlib.resources import files

    import yaml

    def read(name: str):  # type: ignore[no-untyped-def]
        return yaml.safe_load(files("qilu.services").joinpath("data", name).read_text("utf-8"))

    return {
        n: read(f"{n}.yaml")
        for n in (
            "items",
            "chains",
            "fields",
            "materials",
            "rules",
            "synonyms",
            "licence_types",
            "national_matters",
        )
    }


def test_a_chain_naming_an_item_not_in_the_catalog_is_refused_with_its_name() -> None:
    raw = _raw()
    raw["chains"][0]["items"].append({"item": "不存在的事项"})
    with pytest.raises(QiluError) as refused:
        parse_catalog(raw)
    assert refused.value.code == "services.catalog_invalid"
    assert "不存在的事项" in refused.value.message


def test_licences_issued_or_read_must_be_in_the_licence_catalog() -> None:
    """证照目录 (GB/T 36902): a licence an item issues or a material reads is listed, for the
    kind of holder it goes to."""
    raw = _raw()
    raw["licence_types"] = [t for t in raw["licence_types"] if t["name"] != "结婚证"]
    with pytest.raises(QiluError) as refused:
        parse_catalog(raw)
    assert "证照目录中没有“结婚证”" in refused.value.message
    raw = _raw()
    for entry in raw["licence_types"]:
        if entry["name"] == "营业执照":
            entry["holders"] = ["enterprise"]
    with pytest.raises(QiluError) as refused:
        parse_catalog(raw)
    assert "个体工商户设立登记：“营业执照”的持证主体不含个人" in refused.value.message


def test_an_item_with_a_promise_longer_than_the_law_is_refused() -> None:
    raw = _raw()
    raw["items"][0]["items"][0]["days"] = [5, 30]
    with pytest.raises(QiluError) as refused:
        parse_catalog(raw)
    assert "承诺时限" in refused.value.message


def test_install_is_idempotent_and_a_changed_file_adds_a_version(province: Province) -> None:
    session = province.session
    items = session.scalar(select(func.count()).select_from(ServiceItem))
    assert items == len(shipped_catalog().items)
    again = catalog.install_catalog(session)
    assert (again.items_added, again.chains_added) == (0, 0)
    changed = shipped_catalog().model_copy(deep=True)
    changed.items[0].promised_days = 0
    assert catalog.install_catalog(session, changed).items_added == 1
    versions = catalog.item_versions(session, changed.items[0].code)
    assert [v.version for v in versions] == [1, 2]
    assert [v.is_current for v in versions] == [False, True]


def test_an_admin_edit_is_a_new_version_and_the_old_one_stays(province: Province) -> None:
    session = province.session
    admin = province.official("370000-bigdata", "admin")
    item = session.scalars(select(ServiceItem).where(ServiceItem.name == "高龄津贴申领")).one()
    edited = catalog.change_item(
        session,
        item.code,
        {"promised_days": 3},
        actor=roles.staff(session, admin.id),
        note="压缩承诺时限",
    )
    assert (edited.version, edited.spec["promised_days"]) == (2, 3)
    assert session.get(ServiceItem, item.id).spec["promised_days"] == 5  # type: ignore[union-attr]
    with pytest.raises(QiluError) as refused:
        catalog.change_item(
            session,
            item.code,
            {"promised_days": 90},
            actor=roles.staff(session, admin.id),
            note="x",
        )
    assert refused.value.field == "promised_days" or "承诺时限" in refused.value.message
    with pytest.raises(QiluError) as refused:
        catalog.change_item(
            session, item.code, {"code": "X"}, actor=roles.staff(session, admin.id), note="x"
        )
    assert refused.value.code == "services.item_field"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("营业执照", "企业设立登记"),
        ("办执照", "企业设立登记"),  # a synonym
        ("生孩子", "新生儿出生"),  # a synonym for a chain
        ("我要开饭店", "开办餐饮店"),  # filler words dropped, keyword found
        ("公积金提取", "退休提取住房公积金"),  # partial words, two terms
        ("低保", "最低生活保障申请"),
        ("生小孩", "新生儿出生"),  # issue 13: both found nothing
        ("养老金领取", "职工基本养老保险待遇申领"),
    ],
)
def test_search_finds_plain_chinese(province: Province, query: str, expected: str) -> None:
    names = [hit.name for hit in catalog.search(province.session, query)]
    assert expected in names


def test_search_for_nonsense_finds_nothing(province: Province) -> None:
    assert catalog.search(province.session, "量子纠缠") == []


def test_competent_department_goes_up_where_a_county_has_no_such_office(
    province: Province,
) -> None:
    session = province.session
    fund = session.scalars(
        select(ServiceItem).where(ServiceItem.name == "租房提取住房公积金")
    ).one()
    assert catalog.competent_department(session, fund, "370102").code == "370100-housing_fund"
    hukou = session.scalars(select(ServiceItem).where(ServiceItem.name == "出生登记")).one()
    department = catalog.competent_department(session, hukou, "370102")
    assert department.code == "370102-public_security"
    # 实施编码: the department's USCC, 4 (县级) and the basic code (GB/T 39554.1).
    assert catalog.implementation_code(hukou, department) == f"{department.uscc}4{hukou.code}"
    city = catalog.implementation_code(fund, catalog.competent_department(session, fund, "370102"))
    assert city[18] == "3" and city.endswith(fund.code)


def test_every_chain_is_stored_with_item_codes(province: Province) -> None:
    chains = province.session.scalars(select(ServiceChain)).all()
    codes = set(province.session.scalars(select(ServiceItem.code)))
    assert len(chains) == len(shipped_catalog().chains)
    assert all(entry["item"] in codes for c in chains for entry in c.spec["items"])


def test_when_nothing_matches_it_asks_did_you_mean(province: Province) -> None:
    """Issue 13: 您是不是要找 — what matches the most of the words, when nothing matches all."""
    query = "开饭店要什么"
    assert catalog.search(province.session, query) == []
    suggested = [hit.name for hit in catalog.did_you_mean(province.session, query)]
    assert "开办餐饮店" in suggested[:3]
    assert catalog.did_you_mean(province.session, "营业执照") == []  # one word: nothing to drop
