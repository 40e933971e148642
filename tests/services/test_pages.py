"""The 办事 pages through HTTP: counts from the data, exit pages, a refused submission that keeps
what was typed, the public verification page, the desk-only workbench, the large-font mode."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qilu.pii import Vault
from qilu.services import applications, catalog
from qilu.services.models import Application, ServiceChain, ServiceItem

from ..factories import make_person
from ..identity.test_pages import ID, csrf, register
from .conftest import Province


def signed_in(client: TestClient, province: Province) -> None:
    make_person(province.session, province.vault, name="王芳", id_number=ID)
    province.library(
        "JC-RK-001",
        [
            {
                "id_number": ID,
                "name": "王芳",
                "sex": "2",
                "birth_date": "1949-12-31",
                "household_division": "370102",
                "address": "历下区",
                "phone": "13800138000",
            }
        ],
    )
    province.session.commit()
    register(client)
    province.session.commit()  # a refused request rolls back to here, not before the sign-in


def test_the_hall_counts_come_from_the_catalog(client: TestClient, province: Province) -> None:
    page = client.get("/services")
    items = province.session.scalar(
        select(func.count()).select_from(ServiceItem).where(ServiceItem.is_current)
    )
    chains = province.session.scalar(
        select(func.count()).select_from(ServiceChain).where(ServiceChain.is_current)
    )
    assert f'data-count="items">{items:,}<' in page.text
    assert f'data-count="chains">{chains}<' in page.text
    found = client.get("/services", params={"q": "办执照"})
    assert "企业设立登记" in found.text
    nearly = client.get("/services", params={"q": "开饭店要什么"})
    assert "您是不是要找" in nearly.text and "开办餐饮店" in nearly.text


def test_an_exit_answer_shows_the_exit_page_and_makes_nothing(
    client: TestClient, province: Province
) -> None:
    signed_in(client, province)
    code = province.session.scalars(
        select(ServiceChain.code).where(ServiceChain.name == "我要开小餐馆")
    ).one()
    page = client.post(
        f"/services/chains/{code}/start",
        data={"q.area": "50平方米及以上", "csrf_token": csrf(client)},
    )
    assert page.status_code == 200 and "您暂不适用此一件事" in page.text
    assert "开办餐饮店" in page.text
    assert province.session.scalar(select(func.count()).select_from(Application)) == 0
    unanswered = client.post(f"/services/chains/{code}/start", data={"csrf_token": csrf(client)})
    assert unanswered.status_code == 400 and "请回答" in unanswered.text


def test_a_refused_submission_names_each_field_and_keeps_the_draft(
    client: TestClient, province: Province
) -> None:
    signed_in(client, province)
    code = province.session.scalars(
        select(ServiceItem.code).where(ServiceItem.name == "临时救助申请", ServiceItem.is_current)
    ).one()
    started = client.post(f"/services/items/{code}/start", data={"csrf_token": csrf(client)})
    assert started.status_code == 200 and "已预填" in started.text
    province.session.commit()
    application = province.session.scalars(select(Application)).one()
    refused = client.post(
        f"/services/applications/{application.id}/submit",
        data={
            "f.reason": "火灾",
            "f.amount": "很多",
            "f.bank_account": "",
            "csrf_token": csrf(client),
        },
    )
    assert refused.status_code == 400
    assert "申请金额（元）须为数字" in refused.text
    assert "请填写收款银行账号" in refused.text
    assert "请上传困难情况说明" in refused.text
    province.session.expire_all()
    kept = province.session.get(Application, application.id)
    assert kept is not None and kept.status == "draft" and kept.form["reason"] == "火灾"


def test_autosave_answers_json(client: TestClient, province: Province) -> None:
    signed_in(client, province)
    code = province.session.scalars(
        select(ServiceItem.code).where(ServiceItem.name == "临时救助申请", ServiceItem.is_current)
    ).one()
    client.post(f"/services/items/{code}/start", data={"csrf_token": csrf(client)})
    application = province.session.scalars(select(Application)).one()
    saved = client.post(
        f"/services/applications/{application.id}/save",
        data={"f.reason": "水灾", "csrf_token": csrf(client)},
        headers={"X-Autosave": "1"},
    )
    assert saved.status_code == 200 and "saved_at" in saved.json()


def test_someone_elses_application_is_not_found(
    client: TestClient, province: Province, session: Session, vault: Vault
) -> None:
    signed_in(client, province)
    other = province.resident
    code = province.session.scalars(
        select(ServiceItem.code).where(ServiceItem.name == "临时救助申请", ServiceItem.is_current)
    ).one()
    from qilu.services import applications

    theirs = applications.start(session, vault, applicant=other, item_code=code).application
    session.commit()
    assert client.get(f"/services/applications/{theirs.id}").status_code == 404


def test_the_verification_page_needs_no_sign_in_and_says_forged(
    client: TestClient, province: Province
) -> None:
    page = client.get(
        "/licences/verify", params={"number": "370102202611290000000001", "seal": "00"}
    )
    assert page.status_code == 200 and 'data-verdict="forged"' in page.text
    upload = client.post("/licences/verify", files={"file": ("x.json", b"not json")})
    assert 'data-verdict="forged"' in upload.text


def test_the_workbench_is_for_desk_staff_only(client: TestClient, province: Province) -> None:
    signed_in(client, province)
    assert client.get("/workbench/cases").status_code == 403


def test_large_font_mode_is_a_cookie(client: TestClient, province: Province) -> None:
    client.post("/settings/large-font", data={"on": "1"})
    assert 'class="large"' in client.get("/services").text
    client.post("/settings/large-font", data={"on": "0"})
    assert 'class="large"' not in client.get("/services").text


def test_an_administrator_edits_an_item_into_a_new_version(
    client: TestClient, province: Province
) -> None:
    from ..identity.test_admin import sign_in_as_admin

    sign_in_as_admin(client, province.session, province.vault)
    found = client.get("/admin/items", params={"q": "高龄津贴"})
    code = province.session.scalars(
        select(ServiceItem.code).where(ServiceItem.name == "高龄津贴申领", ServiceItem.is_current)
    ).one()
    assert f"/admin/items/{code}" in found.text
    page = client.get(f"/admin/items/{code}")
    assert page.status_code == 200 and "第 1 版" in page.text
    form = {
        "name": "高龄津贴申领",
        "basis": "《山东省老年人权益保障条例》",
        "conditions": "本省户籍",
        "materials": "居民身份证",
        "legal_days": "20",
        "promised_days": "3",
        "visits": "0",
        "depth": "4",
        "fee": "不收费",
        "keywords": "老年人补贴",
        "province_wide": "yes",
        "note": "承诺时限压缩至 3 个工作日",
        "csrf_token": csrf(client),
    }
    saved = client.post(f"/admin/items/{code}", data=form)
    assert saved.status_code == 200 and "已保存为第 2 版" in saved.text
    province.session.commit()
    too_long = client.post(
        f"/admin/items/{code}", data={**form, "promised_days": "90", "csrf_token": csrf(client)}
    )
    assert too_long.status_code == 400 and "承诺时限不得长于法定时限" in too_long.text
    # Issue 13: English validator text ("Input should be a valid integer"), and what was typed
    # replaced by the stored values; now Chinese, next to the field, and the typing kept.
    typo = client.post(
        f"/admin/items/{code}",
        data={**form, "promised_days": "三天", "note": "改时限", "csrf_token": csrf(client)},
    )
    assert typo.status_code == 400 and "Input should" not in typo.text
    field = typo.text[typo.text.index('for="promised_days"') :]
    field = field[: field.index("</div>")]
    assert 'value="三天"' in field and "承诺时限：须为整数" in field
    assert 'value="改时限"' in typo.text


def test_signing_in_mid_task_comes_back_with_the_answers(
    client: TestClient, province: Province
) -> None:
    """Issue 13: 开始办理 by a visitor not yet signed in ended at "405 不支持的请求方法" after
    sign-in, with the answers lost; 在线办理 likewise."""
    code = province.session.scalars(
        select(ServiceChain.code).where(ServiceChain.name == "我要开小餐馆")
    ).one()
    guide = f"http://testserver/services/chains/{code}"
    started = client.post(
        f"/services/chains/{code}/start",
        data={"q.area": "36", "csrf_token": csrf(client)},
        headers={"Referer": guide},
        follow_redirects=False,
    )
    assert started.status_code == 303
    location = started.headers["location"]
    assert location.startswith("/account/sign-in?next=")
    signed_in(client, province)  # registering signs in; now the sign-in form with that next
    from urllib.parse import parse_qs, urlsplit

    back = parse_qs(urlsplit(location).query)["next"][0]
    again = client.get(back)
    assert again.status_code == 200
    assert 'name="q.area" inputmode="decimal" value="36"' in again.text  # the answer kept
    item = province.session.scalars(select(ServiceItem.code).where(ServiceItem.is_current)).first()
    client.post("/account/sign-out", data={"csrf_token": csrf(client)})
    online = client.post(
        f"/services/items/{item}/start",
        data={"csrf_token": csrf(client)},
        headers={"Referer": f"http://testserver/services/items/{item}"},
        follow_redirects=False,
    )
    target = parse_qs(urlsplit(online.headers["location"]).query)["next"][0]
    assert target == f"/services/items/{item}"  # the guide it was on, not the POST-only address
    assert client.get(target).status_code == 200


def test_a_refused_step_says_why_by_the_reason_and_keeps_it(
    client: TestClient, province: Province
) -> None:
    """Issue 13: staff forms kept nothing of what was typed after a refusal."""
    from qilu.identity import sessions
    from qilu.identity.access import SESSION_COOKIE
    from qilu.services.models import Case

    from ..factories import make_account
    from .test_cases import restaurant

    representative = province.resident
    application = restaurant(province, representative, province.enterprise(representative))
    clerk = province.official("370102-approval", "window_clerk", "窗口甲")
    cookie, _ = sessions.start_session(
        province.session,
        make_account(province.session, province.vault, clerk),
        assurance=4,
        profile="standard",
        client_address="t",
        user_agent="t",
    )
    province.session.commit()
    client.cookies.set(SESSION_COOKIE, cookie)
    case = province.session.scalars(
        select(Case).where(Case.application_id == application.id, Case.state == "submitted")
    ).first()
    assert case is not None
    page = f"/workbench/cases/{case.id}"
    bare = client.post(
        f"{page}/act",
        data={"action": "not_accept", "version": str(case.version), "csrf_token": csrf(client)},
    )
    assert bare.status_code == 400
    field = bare.text[bare.text.index('for="reason"') :]
    assert "不予受理须写明理由" in field[: field.index("</div>")]
    province.session.commit()
    stale = client.post(
        f"{page}/act",
        data={
            "action": "not_accept",
            "version": "999",
            "reason": "材料不全，缺平面图",
            "csrf_token": csrf(client),
        },
    )
    assert stale.status_code == 409 and ">材料不全，缺平面图</textarea>" in stale.text


def test_an_uploaded_file_can_be_removed_and_replaced(
    client: TestClient, province: Province
) -> None:
    """Issue 13: an uploaded file could not be removed or replaced."""
    from qilu.services.models import ApplicationMaterial

    from .test_applications import PNG

    signed_in(client, province)
    code = province.session.scalars(
        select(ServiceChain.code).where(ServiceChain.name == "新生儿出生", ServiceChain.is_current)
    ).one()
    started = client.post(
        f"/services/chains/{code}/start",
        data={"q.born_in_shandong": "yes", "q.medical": "yes", "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    page = started.headers["location"]
    application_id = int(page.rsplit("/", 1)[1])

    def upload(name: str) -> object:
        return client.post(
            f"{page}/materials",
            data={"material": "照片", "csrf_token": csrf(client)},
            files={"files": (name, PNG, "image/png")},
        )

    upload("wrong.png")
    province.session.commit()
    assert "最多上传 1 个文件" in upload("right.png").text  # one photo: remove it first
    wrong = province.session.scalars(
        select(ApplicationMaterial).where(ApplicationMaterial.file_name == "wrong.png")
    ).one()
    shown = client.get(page).text
    assert "wrong.png" in shown and f"/materials/{wrong.id}/remove" in shown
    removed = client.post(f"{page}/materials/{wrong.id}/remove", data={"csrf_token": csrf(client)})
    assert removed.status_code == 200 and "wrong.png" not in removed.text
    upload("right.png")  # replaced
    after = client.get(page).text
    assert "wrong.png" not in after and "right.png" in after
    province.session.commit()
    elsewhere = client.post(
        f"/services/applications/{application_id + 1000}/materials/1/remove",
        data={"csrf_token": csrf(client)},
    )
    assert elsewhere.status_code == 404


def test_suggestions_as_one_types_and_did_you_mean(client: TestClient, province: Province) -> None:
    typed = client.get("/services/suggest", params={"q": "生小孩"})
    assert 'data-suggestion="新生儿出生"' in typed.text and "您是不是要找" not in typed.text
    pension = client.get("/services/suggest", params={"q": "养老金领取"})
    assert "养老保险待遇申领" in pension.text
    nearly = client.get("/services/suggest", params={"q": "开饭店要什么"})
    assert "您是不是要找" in nearly.text and 'data-suggestion="开办餐饮店"' in nearly.text
    nothing = client.get("/services/suggest", params={"q": "火星移民"})
    assert "没有找到“火星移民”" in nothing.text
    assert client.get("/services/suggest").text.strip() == ""


def test_the_home_is_search_first_and_care_mode_shows_big_tiles(
    client: TestClient, province: Province
) -> None:
    home = client.get("/")
    assert 'hx-get="/services/suggest"' in home.text and "热门服务" in home.text
    assert 'data-tile="新生儿出生"' in home.text and "长辈常办" not in home.text
    assert "平台组成" in home.text
    client.post("/settings/large-font", data={"on": "1"})
    care = client.get("/")
    tiles = [n for n in catalog.CARE_SERVICES if f'data-tile="{n}"' in care.text]
    assert tiles == list(catalog.CARE_SERVICES) and "平台组成" not in care.text
    assert "退出长辈版" in care.text


def test_popular_services_follow_the_applications(province: Province) -> None:
    start = catalog.popular(province.session)
    assert [h.name for h in start] == list(catalog.POPULAR)
    code = province.session.scalars(
        select(ServiceItem.code).where(ServiceItem.name == "临时救助申请", ServiceItem.is_current)
    ).one()
    for _ in range(2):
        applications.start(
            province.session, province.vault, applicant=province.resident, item_code=code
        )
    assert catalog.popular(province.session)[0].name == "临时救助申请"
    assert len(catalog.popular(province.session)) == 8


def test_the_area_is_asked_once_as_a_number(client: TestClient, province: Province) -> None:
    """Issue 13: the area was asked twice (a band in the questionnaire, the number in the form).
    Now the number is asked once: it picks the way and fills the form's 经营场所面积."""
    signed_in(client, province)
    code = province.session.scalars(
        select(ServiceChain.code).where(ServiceChain.name == "我要开小餐馆")
    ).one()
    guide = client.get(f"/services/chains/{code}")
    assert (
        'name="q.area" inputmode="decimal"' in guide.text
        and 'type="radio" name="q.area"' not in guide.text
    )
    for typed in ("abc", "-3"):
        refused = client.post(
            f"/services/chains/{code}/start", data={"q.area": typed, "csrf_token": csrf(client)}
        )
        assert refused.status_code == 400 and "请填写数字：经营场所使用面积有多大？" in refused.text
        assert f'value="{typed}"' in refused.text
    exit_page = client.post(
        f"/services/chains/{code}/start", data={"q.area": "60", "csrf_token": csrf(client)}
    )
    assert "您暂不适用此一件事" in exit_page.text and "请先办理营业执照" in exit_page.text
    started = client.post(
        f"/services/chains/{code}/start", data={"q.area": "36.5", "csrf_token": csrf(client)}
    )
    application = province.session.scalars(select(Application)).one()
    assert started.status_code == 200 and application.answers == {"area": "small"}
    assert application.form["premises_area"] == "36.5" and "premises_area" in application.prefilled
    assert 'value="36.5"' in started.text
