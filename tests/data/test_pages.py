"""The catalog in the workbench: staff search it in Chinese; residents are kept out."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu.data.catalog import install_standard_catalog
from qilu.identity.models import Person
from qilu.identity.roles import OPERATOR, grant_role
from qilu.pii import Vault

from ..factories import make_person, make_staff
from ..identity.test_pages import ID, csrf, register


def sign_in_staff(client: TestClient, session: Session, vault: Vault) -> None:
    make_person(session, vault, name="王芳", id_number=ID)
    register(client)
    person = session.scalars(select(Person).where(Person.name == "王芳")).one()
    grant_role(
        session,
        person_id=person.id,
        department_code="370102-approval",
        role="window_clerk",
        profile="standard",
        actor=OPERATOR,
    )


def test_staff_search_the_catalog_and_open_a_resource(
    client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    install_standard_catalog(session)
    sign_in_staff(client, session, vault)
    everything = client.get("/workbench/data")
    assert everything.status_code == 200 and 'data-resource="JC-RK-001"' in everything.text
    found = client.get("/workbench/data", params={"q": "健康"})
    assert 'data-resource="ZT-YL-001"' in found.text and "JC-RK-001" not in found.text
    base = client.get("/workbench/data", params={"library": "base"})
    assert base.text.count("data-resource=") == 4
    page = client.get("/workbench/data/ZT-YL-001")
    assert page.status_code == 200 and "居民电子健康档案" in page.text
    assert 'data-field="id_number"' in page.text and "敏感个人信息" in page.text
    assert client.get("/workbench/data/NO-SUCH").status_code == 404


def test_residents_are_kept_out_of_the_workbench(
    client: TestClient, session: Session, vault: Vault
) -> None:
    make_person(session, vault, name="王芳", id_number=ID)
    register(client)
    refused = client.get("/workbench/data")
    assert refused.status_code == 403 and "仅供公职人员" in refused.text
    assert csrf(client)  # still signed in, just not staff


def test_a_steward_uploads_a_file_and_downloads_the_error_report(
    client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    install_standard_catalog(session)
    sign_in_staff(client, session, vault)
    clerk_page = client.get("/workbench/data/JC-RK-001")
    assert 'enctype="multipart/form-data"' not in clerk_page.text  # a clerk may not load
    person = session.scalars(select(Person).where(Person.name == "王芳")).one()
    for department in ("370000-bigdata", "370000-public_security"):
        make_staff(session, person, department, "data_steward")
        page = client.get("/workbench/data/JC-RK-001")
        # Only a steward of the provider (公安厅) loads; the 大数据局's does not.
        assert ('enctype="multipart/form-data"' in page.text) is (department != "370000-bigdata")
    text = (
        "公民身份号码,姓名,性别,出生日期,户籍地行政区划\n"
        "11010519491231002X,王芳,2,1949-12-31,110105\n"
        "370102199003073510,李强,1,1990-03-07,370102\n"
    )
    done = client.post(
        "/workbench/data/JC-RK-001/loads",
        data={"csrf_token": csrf(client)},
        files={"file": ("people.csv", text.encode("gb18030"), "text/csv")},
    )
    assert done.status_code == 200 and "/workbench/data/loads/" in str(done.url)
    assert 'data-count="inserted">1<' in done.text and 'data-count="rejected">1<' in done.text
    report = client.get(f"{done.url}/errors.csv")
    assert report.headers["content-type"].startswith("text/csv")
    assert "3,id_number," in report.text


def test_the_resource_page_shows_quality_and_the_catalog_flags_late_resources(
    client: TestClient, session: Session, vault: Vault, departments: None
) -> None:
    install_standard_catalog(session)
    sign_in_staff(client, session, vault)
    page = client.get("/workbench/data/JC-RK-001")
    assert 'data-quality="validity">尚无加载' in page.text and "data-overdue" in page.text
    listing = client.get("/workbench/data", params={"q": "人口"})
    assert "未按期更新" in listing.text
