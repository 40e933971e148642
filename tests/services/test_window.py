"""一窗受理: a clerk applies for a walk-in, who is found by the ID number they present; nothing a
clerk can change between pages (a row id, another department's window) opens someone else."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from qilu.audit.models import AuditEvent
from qilu.identity.models import Person
from qilu.services.models import Application, ServiceChain

from ..identity.test_pages import ID, csrf, register
from .conftest import Province


def newborn(province: Province) -> str:
    return (
        province.session.scalars(
            select(ServiceChain.code).where(ServiceChain.name == "新生儿出生")
        ).first()
        or ""
    )


def signed_in_clerk(client: TestClient, province: Province) -> Person:
    from qilu.identity.roles import OPERATOR, grant_role

    from ..factories import make_person

    clerk = make_person(province.session, province.vault, name="窗口甲", id_number=ID)
    register(client, name="窗口甲")
    grant_role(
        province.session,
        person_id=clerk.id,
        department_code="370102-approval",
        role="window_clerk",
        profile="standard",
        actor=OPERATOR,
    )
    return clerk


def test_the_chain_page_carries_the_id_number_not_a_row_id(
    client: TestClient, province: Province
) -> None:
    """Found: `person` (a row id) travelled between the pages, so changing it opened any
    resident's prefilled data; and the GET page named any resident by id."""
    clerk = signed_in_clerk(client, province)
    code = newborn(province)
    own = province.department("370102-approval").id
    resident = province.resident
    named = client.get(f"/workbench/window/chains/{code}?person={resident.id}&department={own}")
    assert named.status_code in (404, 405) and resident.name not in named.text
    start = client.post(
        "/workbench/window",
        data={
            "id_number": province.resident_id_number,
            "target": f"chain:{code}",
            "department_id": str(own),
            "csrf_token": csrf(client),
        },
    )
    assert start.status_code == 200 and resident.name in start.text
    assert f'name="id_number" value="{province.resident_id_number}"' in start.text
    assert 'name="person"' not in start.text
    answers = {"q.born_in_shandong": "yes", "q.medical": "no", "csrf_token": csrf(client)}
    elsewhere = province.department("370202-approval").id  # a window in 青岛
    refused = client.post(
        f"/workbench/window/chains/{code}",
        data={**answers, "id_number": province.resident_id_number, "department": str(elsewhere)},
    )
    assert refused.status_code == 403
    assert province.session.scalars(select(Application)).first() is None
    made = client.post(
        f"/workbench/window/chains/{code}",
        data={**answers, "id_number": province.resident_id_number, "department": str(own)},
        follow_redirects=False,
    )
    assert made.status_code == 303
    application = province.session.scalars(select(Application)).one()
    assert application.applicant_person_id == resident.id
    prefill = province.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "data.read").order_by(AuditEvent.id.desc())
    ).first()
    assert prefill is not None and prefill.actor_person_id == clerk.id


def test_a_window_is_only_for_its_own_clerks(client: TestClient, province: Province) -> None:
    signed_in_clerk(client, province)
    other = province.department("370103-approval").id
    refused = client.post(
        "/workbench/window",
        data={
            "id_number": province.resident_id_number,
            "target": f"chain:{newborn(province)}",
            "department_id": str(other),
            "csrf_token": csrf(client),
        },
    )
    assert refused.status_code == 400 and "一窗受理仅供本窗口的受理人员使用" in refused.text
    assert province.resident.name not in refused.text
