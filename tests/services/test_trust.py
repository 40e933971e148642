"""Trust grades by rule (国办函〔2016〕108号, issue 16): a licence an application brings instead
of a Qilu e-licence is graded by how it came — uploaded online C, taken in at a window B,
promised D — and only a B copy (like an A e-licence) spares the material next time."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from qilu.filestore import LocalFileStore
from qilu.services import applications, trust
from qilu.services.applications import MaterialStatus
from qilu.services.models import Application, ApplicationMaterial, LicenceCopy, ServiceItem
from qilu.workdays import beijing_today

from .conftest import Province
from .test_showing import signed_in_as

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def marriage_change(province: Province, store: LocalFileStore, **how: Any) -> Application:
    """婚姻状况变更登记, which asks for the 结婚证 (an e-licence source: none is held here)."""
    session = province.session
    code = session.scalars(
        select(ServiceItem.code).where(
            ServiceItem.name == "婚姻状况变更登记", ServiceItem.is_current
        )
    ).one()
    started = applications.start(
        session, province.vault, applicant=province.resident, item_code=code, **how
    )
    application = started.application
    applications.save_draft(
        session,
        application,
        {"spouse_name": "李四", "spouse_id_number": "370102199001011231", "phone": "13900001111"},
    )
    return application


def statuses(province: Province, application: Application) -> dict[str, MaterialStatus]:
    found = applications.material_statuses(
        province.session,
        application,
        applications.plan_of(province.session, application),
        (province.resident.id_number_index,),
        beijing_today(),
    )
    return {s.name: s for s in found}


def test_an_online_upload_is_c_and_is_asked_again(
    province: Province, store: LocalFileStore
) -> None:
    first = marriage_change(province, store)
    applications.add_upload(
        province.session,
        store,
        first,
        "结婚证",
        file_name="结婚证.png",
        content_type="image/png",
        content=PNG,
    )
    applications.submit(
        province.session, province.vault, first, actor_person_id=province.resident.id
    )
    [copy] = province.session.scalars(select(LicenceCopy)).all()
    assert (copy.licence_type, copy.grade, copy.verified_by_person_id) == ("结婚证", "C", None)
    again = marriage_change(province, store)
    assert statuses(province, again)["结婚证"].source == "missing"  # C is not reusable
    wallet = (province.resident.id_number_index,)
    assert [c.grade for c in trust.copies_of(province.session, wallet)] == ["C"]


def test_a_window_takes_in_b_and_the_next_application_is_spared(
    province: Province, store: LocalFileStore
) -> None:
    clerk = province.official("370102-public_security", "window_clerk", "户籍窗口")
    first = marriage_change(province, store, channel="window", clerk_person_id=clerk.id)
    applications.add_upload(
        province.session,
        store,
        first,
        "结婚证",
        file_name="结婚证.png",
        content_type="image/png",
        content=PNG,
    )
    applications.submit(province.session, province.vault, first, actor_person_id=clerk.id)
    [copy] = province.session.scalars(select(LicenceCopy)).all()
    assert (copy.grade, copy.verified_by_person_id) == ("B", clerk.id)
    again = marriage_change(province, store)
    status = statuses(province, again)["结婚证"]
    assert status.source == "licence" and "B级" in status.detail
    applications.submit(
        province.session, province.vault, again, actor_person_id=province.resident.id
    )
    reused = province.session.scalars(
        select(ApplicationMaterial).where(
            ApplicationMaterial.application_id == again.id,
            ApplicationMaterial.material == "结婚证",
        )
    ).one()
    assert reused.source == "licence" and reused.digest == copy.digest  # the checked file


def test_a_promise_is_d(province: Province, store: LocalFileStore) -> None:
    first = marriage_change(province, store)
    assert "结婚证" in applications.promise_missing(province.session, province.vault, first)
    applications.submit(
        province.session, province.vault, first, actor_person_id=province.resident.id
    )
    [copy] = province.session.scalars(select(LicenceCopy)).all()
    assert copy.grade == "D" and copy.digest is None


def test_the_wallet_shows_copies_with_their_grade(
    client: TestClient, province: Province, store: LocalFileStore
) -> None:
    first = marriage_change(province, store)
    applications.promise_missing(province.session, province.vault, first)
    applications.submit(
        province.session, province.vault, first, actor_person_id=province.resident.id
    )
    signed_in_as(client, province, province.resident)
    wallet = client.get("/account/licences")
    assert (
        'data-copy="结婚证" data-grade="D"' in wallet.text and "D级（本人书面承诺）" in wallet.text
    )
