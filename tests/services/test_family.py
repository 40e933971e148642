"""亲友代办: a resident authorises a family member, who applies for them (the application is the
resident's, made by the family member) while the authorisation lives; either side ends it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from qilu.errors import NotFound, QiluError
from qilu.identity import family
from qilu.identity.models import FamilyProxy, Person
from qilu.messages import service as messages
from qilu.services import applications, catalog
from qilu.services.models import Application

from ..factories import make_person
from ..identity.test_pages import csrf
from .conftest import Province
from .test_showing import signed_in_as

CHILD_ID = "370102199506060012"


def child(province: Province) -> Person:
    return make_person(province.session, province.vault, name="王小军", id_number=CHILD_ID)


def test_a_grant_is_checked_and_told(province: Province) -> None:
    son = child(province)
    mother = province.resident
    base = {"name": "王小军", "id_number": CHILD_ID, "relation": "子女", "days": 30}
    refusals = [
        ({**base, "relation": "朋友"}, "family.relation"),
        ({**base, "days": 400}, "family.days"),
        ({**base, "name": "王大军"}, "family.unknown"),
        ({**base, "id_number": "12"}, "family.id_number"),
        ({**base, "name": mother.name, "id_number": province.resident_id_number}, "family.self"),
    ]
    for asked, code in refusals:
        with pytest.raises(QiluError) as refused:
            family.grant(province.session, province.vault, mother, **asked)  # type: ignore[arg-type]
        assert refused.value.code == code
    given = family.grant(
        province.session, province.vault, mother, name="王小军", id_number=CHILD_ID,
        relation="子女", days=30,
    )  # fmt: skip
    assert messages.inbox(province.session, son.id)[0].title == "亲友授权您代办"
    with pytest.raises(QiluError) as twice:
        family.grant(
            province.session, province.vault, mother, name="王小军", id_number=CHILD_ID,
            relation="子女", days=30,
        )  # fmt: skip
    assert twice.value.code == "family.exists"
    later = datetime.now(UTC) + timedelta(days=31)
    assert family.live(province.session, mother.id, son.id, later) is None  # it ends by itself
    family.revoke(province.session, given.id, son.id)  # either side may end it
    assert messages.inbox(province.session, mother.id)[0].title == "代办授权已解除"
    with pytest.raises(NotFound):
        family.usable(province.session, given.id, son.id)


def son_for_a_year(province: Province) -> tuple[Person, Person, FamilyProxy]:
    """The resident's son, authorised by her for a year."""
    son = child(province)
    mother = province.resident
    given = family.grant(
        province.session, province.vault, mother, name="王小军", id_number=CHILD_ID,
        relation="子女", days=366,
    )  # fmt: skip
    return son, mother, given


def test_the_family_member_applies_for_the_resident_while_authorised(
    client: TestClient, province: Province
) -> None:
    son, mother, given = son_for_a_year(province)
    signed_in_as(client, province, son)
    page = client.get("/account/family")
    assert (
        f'data-for="{mother.name}"' in page.text and 'data-family-tile="高龄津贴申领"' in page.text
    )
    code = catalog.named(province.session, ["高龄津贴申领"])[0].code
    started = client.post(
        f"/account/family/{given.id}/start",
        data={"item": code, "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert started.status_code == 303
    application = province.session.scalars(select(Application)).one()
    assert (application.applicant_person_id, application.clerk_person_id) == (mother.id, son.id)
    assert application.channel == "family"
    opened = client.get(started.headers["location"])
    assert opened.status_code == 200 and f"这是{mother.name}的申请" in opened.text
    assert applications.made_for(province.session, mother.id, son.id) == [application]
    family.revoke(province.session, given.id, mother.id)
    province.session.commit()
    assert client.get(started.headers["location"]).status_code == 404
    again = client.post(
        f"/account/family/{given.id}/start", data={"item": code, "csrf_token": csrf(client)}
    )
    assert again.status_code == 404
    signed_in_as(client, province, mother)  # the application stays the resident's own
    assert client.get(started.headers["location"]).status_code == 200


def test_a_refused_grant_keeps_what_was_typed(client: TestClient, province: Province) -> None:
    signed_in_as(client, province, province.resident)
    refused = client.post(
        "/account/family",
        data={"name": "王小军", "id_number": CHILD_ID, "relation": "子女", "days": "30",
              "csrf_token": csrf(client)},
    )  # fmt: skip
    assert refused.status_code == 400 and "姓名与公民身份号码不匹配" in refused.text
    assert 'value="王小军"' in refused.text and "<option selected>子女</option>" in refused.text


def test_the_family_member_answers_a_chain_for_the_resident(
    client: TestClient, province: Province
) -> None:
    son, mother, given = son_for_a_year(province)
    signed_in_as(client, province, son)
    retire = catalog.named(province.session, ["退休"])[0].code
    page = client.get("/account/family")
    link = f"/account/family/{given.id}/chains/{retire}"
    assert link in page.text
    guide = client.get(link)
    assert guide.status_code == 200 and f"您正在代{mother.name}" in guide.text
    assert f'action="/account/family/{given.id}/start"' in guide.text
    unanswered = client.post(
        f"/account/family/{given.id}/start", data={"chain": retire, "csrf_token": csrf(client)}
    )
    assert unanswered.status_code == 400 and f"您正在代{mother.name}" in unanswered.text
    started = client.post(
        f"/account/family/{given.id}/start",
        data={"chain": retire, "q.employee": "resident", "csrf_token": csrf(client)},
        follow_redirects=False,
    )
    assert started.status_code == 303
    application = province.session.scalars(select(Application)).one()
    assert application.chain is not None and application.chain.name == "退休"
    assert (application.applicant_person_id, application.clerk_person_id) == (mother.id, son.id)
    assert application.channel == "family"
    stranger = make_person(province.session, province.vault, name="路人")
    signed_in_as(client, province, stranger)
    assert client.get(link).status_code == 404  # someone else's authorisation opens nothing
