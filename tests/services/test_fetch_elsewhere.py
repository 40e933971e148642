"""跨省免提交 (issue 16): a material asking for a licence the holder got in another province is
fetched from the national platform's 电子证照 library, with the holder's authorisation in the
signed query, and kept as the material; without consent, without a connection, or with no such
licence there, the applicant is told next to the material and nothing is kept."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from qilu.audit.models import AuditEvent
from qilu.codes.licence_ids import identifier
from qilu.errors import QiluError
from qilu.filestore import LocalFileStore
from qilu.identity.signing_keys import sm2_key
from qilu.services import applications
from qilu.services.models import ApplicationMaterial
from qilu.services.national_receiver import receiver_app

from ..identity.test_pages import csrf
from ..servers import serving
from .conftest import Province
from .test_showing import signed_in_as
from .test_trust import marriage_change, statuses

JIANGSU = "11320100000000000C"  # a 南京 registry's USCC (check character computed below)


def foreign_marriage(province: Province) -> dict[str, object]:
    """A 结婚证 issued in 江苏 to the resident, as the national library holds it."""
    from qilu.codes.uscc import check_character

    issuer = JIANGSU[:17] + check_character(JIANGSU[:17])
    type_code = "11100000000013338W001"
    number = "J320100202401010001"
    return {
        "cert_identifier": identifier(type_code, issuer, number),
        "cert_type_name": "结婚证",
        "cert_no": number,
        "issuer_code": issuer,
        "issuer_name": "南京市玄武区民政局",
        "holder_code": province.resident_id_number,
        "holder_name": province.resident.name,
        "cert_state": "有效",
    }


def test_a_licence_from_another_province_spares_the_material(
    province: Province, store: LocalFileStore
) -> None:
    session, vault = province.session, province.vault
    kid, key = sm2_key(session, vault)
    app = receiver_app(
        lambda asked: key.public_key if asked == kid else None,
        elsewhere=[foreign_marriage(province)],
    )
    application = marriage_change(province, store)
    with serving(app) as base:
        url = f"{base}/reports"
        with pytest.raises(QiluError) as refused:
            applications.fetch_elsewhere(
                session, vault, store, application, "结婚证", url=url, consent=False,
                actor_person_id=province.resident.id,
            )  # fmt: skip
        assert refused.value.code == "licence.consent" and refused.value.field == "materials.结婚证"
        row = applications.fetch_elsewhere(
            session, vault, store, application, "结婚证", url=url, consent=True,
            actor_person_id=province.resident.id,
        )  # fmt: skip
        kept = json.loads(store.get(row.digest or ""))
        assert kept["issuer_name"] == "南京市玄武区民政局"
        status = statuses(province, application)["结婚证"]
        assert status.source == "licence" and "全国证照库" in status.detail
        applications.submit(session, vault, application, actor_person_id=province.resident.id)
        materials = session.scalars(
            select(ApplicationMaterial).where(
                ApplicationMaterial.application_id == application.id,
                ApplicationMaterial.material == "结婚证",
            )
        ).all()
        assert len(materials) == 1  # the fetched record, not another row
        assert (
            session.scalars(
                select(AuditEvent).where(AuditEvent.action == "services.licence_fetched")
            )
            .one()
            .details["identifier"]
            == kept["cert_identifier"]
        )
        # Someone else's 结婚证 is not found for this holder.
        other = marriage_change(province, store)
        elsewhere = receiver_app(lambda asked: key.public_key if asked == kid else None)
    with serving(elsewhere) as base:
        with pytest.raises(QiluError) as missing:
            applications.fetch_elsewhere(
                session, vault, store, other, "结婚证", url=f"{base}/reports", consent=True,
                actor_person_id=province.resident.id,
            )  # fmt: skip
        assert missing.value.code == "licence.not_found_elsewhere"


def test_the_page_asks_for_consent_and_says_why_not(
    client: TestClient, province: Province, store: LocalFileStore
) -> None:
    application = marriage_change(province, store)
    province.session.commit()
    signed_in_as(client, province, province.resident)
    page = client.get(f"/services/applications/{application.id}")
    assert "跨省调取证照（免提交）" in page.text and 'name="consent"' in page.text
    refused = client.post(
        f"/services/applications/{application.id}/materials/fetch",
        data={"material": "结婚证", "consent": "yes", "csrf_token": csrf(client)},
    )
    # No national connection in this store: said next to the material, nothing kept.
    assert refused.status_code == 400 and "尚未接入国家政务服务平台" in refused.text
    assert not province.session.scalars(
        select(ApplicationMaterial).where(ApplicationMaterial.application_id == application.id)
    ).all()
