"""The 实施清单 (issue 16): an item's national element set in the place chosen, shown on its
guide, written in part by administrators as a new version, and exported for a whole county."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select

from qilu.codes.items import parse_implementation
from qilu.services import catalog, implementation
from qilu.services.models import ServiceItem
from qilu.services.specs import shipped_catalog

from ..identity.test_admin import sign_in_as_admin
from ..identity.test_pages import csrf
from .conftest import Province


def item_code(province: Province, name: str) -> str:
    return province.session.scalars(
        select(ServiceItem.code).where(ServiceItem.name == name, ServiceItem.is_current)
    ).one()


def test_the_list_has_the_national_elements_for_the_place(province: Province) -> None:
    item = catalog.current_item(province.session, item_code(province, "出生登记"))
    department = catalog.competent_department(province.session, item, "370102")
    code = catalog.implementation_code(item, department)
    listed = {
        e.label: e
        for e in implementation.elements(
            item, shipped_catalog(), department=department, implementation_code=code
        )
    }
    assert len(listed) >= 55
    assert listed["实施主体编码"].value == department.uscc
    assert parse_implementation(listed["实施编码"].value).basic == tuple(
        [item.code[0:2], item.code[2:4], item.code[4:6], item.code[6:9], item.code[9:]]
    )
    assert listed["行使层级"].value == "县级" and listed["办件类型"].value == "承诺件"
    assert (
        listed["办理地点"].default and "山东省济南市历下区政务服务中心" in listed["办理地点"].value
    )
    assert listed["审批结果名称"].value == "办结通知"  # 出生登记 issues no licence
    assert listed["面向自然人主题分类"].value == "生育收养"  # it is in 新生儿出生
    everywhere = {e.label for e in implementation.elements(item, shipped_catalog())}
    assert "实施编码" not in everywhere and "基本编码" in everywhere


def test_the_guide_shows_the_list_and_an_administrator_writes_elements(
    client: TestClient, province: Province
) -> None:
    code = item_code(province, "高龄津贴申领")
    guide = client.get(f"/services/items/{code}")
    assert guide.status_code == 200 and "实施清单" in guide.text and "实施编码" not in guide.text
    here = client.get(f"/services/items/{code}", params={"division": "370102"})
    assert "<strong>山东省济南市历下区</strong>的实施清单" in here.text
    assert "实施主体编码" in here.text
    assert "（通用）" in here.text
    elsewhere = client.get(f"/services/items/{code}", params={"division": "110101"})
    assert elsewhere.status_code == 200 and "请选择山东省内的市或县" in elsewhere.text

    sign_in_as_admin(client, province.session, province.vault)
    page = client.get(f"/admin/items/{code}")
    assert 'name="guide.办理地点"' in page.text
    form = {
        "name": "高龄津贴申领",
        "basis": "《山东省老年人权益保障条例》",
        "conditions": "本省户籍、年满80周岁的老年人，津贴按月发放至本人社会保障卡银行账户。",
        "materials": "居民身份证",
        "legal_days": "20",
        "promised_days": "5",
        "visits": "0",
        "depth": "4",
        "fee": "不收费",
        "keywords": "老年人补贴，高龄补贴",
        "province_wide": "yes",
        "guide.办理地点": "各县（市、区）政务服务中心民政窗口，或村（社区）便民服务站",
        "faq": "本人行动不便怎么办？｜可由近亲属代办，或申请上门服务",
        "note": "补充办理地点和常见问题",
        "csrf_token": csrf(client),
    }
    saved = client.post(f"/admin/items/{code}", data=form)
    assert saved.status_code == 200 and "已保存为第 2 版" in saved.text, saved.text[-800:]
    province.session.commit()
    broken = client.post(
        f"/admin/items/{code}",
        data={**form, "faq": "没有分隔的一行", "note": "再改", "csrf_token": csrf(client)},
    )
    assert broken.status_code == 400 and "请用“｜”分隔问题和回答" in broken.text
    assert "没有分隔的一行</textarea>" in broken.text  # what was typed is kept
    client.cookies.clear()
    shown = client.get(f"/services/items/{code}", params={"division": "370102"})
    assert "村（社区）便民服务站" in shown.text and "可由近亲属代办" in shown.text
    stored = catalog.current_item(province.session, code)
    assert stored.version == 2 and stored.spec["faq"][0]["q"] == "本人行动不便怎么办？"


def test_an_administrator_exports_a_county_list(client: TestClient, province: Province) -> None:
    sign_in_as_admin(client, province.session, province.vault)
    answer = client.get("/admin/items/export", params={"division": "370102"})
    assert answer.status_code == 200
    body = json.loads(answer.content)
    assert body["名称"] == "山东省济南市历下区"
    entries = body["实施清单"]
    assert len(entries) > 100
    assert all(len(e["要素"]) >= 50 for e in entries)
    assert all(len(e["实施编码"]) == 31 for e in entries)
    assert client.get("/admin/items/export", params={"division": "999999"}).status_code == 404


def test_national_one_thing_lists_are_covered_and_shown(
    client: TestClient, province: Province
) -> None:
    """The national 高效办成一件事 matters: each done by a chain carrying its code, or said to
    be outside a provincial platform; a chain that loses an item the matter needs is partial."""
    rows = {r.name: r for r in catalog.national_coverage(province.session)}
    assert rows["企业破产信息核查"].status == "covered"
    assert rows["汽车以旧换新补贴申请"].status == "covered"
    assert rows["征信信息查询"].status == "covered"
    assert rows["国际航行船舶进出境通关"].status == "outside"
    assert {r.status for r in rows.values()} == {"covered", "outside"}
    newborn = catalog.current_chain(province.session, rows["新生儿出生"].chain_code or "")
    assert newborn.spec["national"] == "2024-1-07"
    # A catalog where 新生儿出生 loses 预防接种证办理: the matter is partial, naming it.
    changed = shipped_catalog().model_copy(deep=True)
    chain = next(c for c in changed.chains if c.name == "新生儿出生")
    chain.items = [e for e in chain.items if e.item != "预防接种证办理"]
    catalog.install_catalog(province.session, changed)
    partial = {r.name: r for r in catalog.national_coverage(province.session)}["新生儿出生"]
    assert (partial.status, partial.missing) == ("partial", ["预防接种证办理"])
    sign_in_as_admin(client, province.session, province.vault)
    page = client.get("/admin/items/coverage")
    assert page.status_code == 200 and "部分覆盖 1 项" in page.text
    assert 'data-matter="2024-1-06" data-status="covered"' in page.text
    guide = client.get(f"/services/chains/{newborn.code}")
    assert 'data-national="2024-1-07"' in guide.text
