"""亮证 and 照面: a one-minute QR that shows the verifier only what the holder ticked, with the
time it was checked; the face of the licence as a printable image; a child's certificate in
the parent's wallet and in nobody else's."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from qilu.audit.models import AuditEvent
from qilu.errors import NotFound, QiluError
from qilu.filestore import LocalFileStore
from qilu.identity import sessions
from qilu.identity.access import SESSION_COOKIE
from qilu.identity.models import Person
from qilu.services import licences, showing

from ..factories import make_account, make_person
from .conftest import Province
from .test_results import certificate, finished_newborn


@pytest.fixture
def store(tmp_path: Path) -> LocalFileStore:
    return LocalFileStore(tmp_path / "files")


def test_a_shown_code_tells_only_the_chosen_fields_for_one_minute(
    province: Province, store: LocalFileStore
) -> None:
    finished_newborn(province, store)
    licence = certificate(province)
    now = datetime.now(UTC)
    token, _ = showing.show(province.session, licence, ["holder_name", "child_birth_date"], now)
    seen = showing.verify(province.session, token, now + timedelta(seconds=30))
    assert seen.status == "valid" and seen.number == licence.number
    assert dict(seen.fields) == {
        "持证人姓名": "王小宝",
        "新生儿出生日期": licence.content["child_birth_date"],
    }
    assert seen.checked_at == now + timedelta(seconds=30)
    assert province.session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.action == "services.licence_shown")
    )
    late = showing.verify(province.session, token, now + timedelta(seconds=61))
    assert late.status == "stale" and late.fields == () and not late.number
    bare, _ = showing.show(province.session, licence, [], now)
    assert showing.verify(province.session, bare, now).fields == ()
    assert showing.verify(province.session, "nonsense", now).status == "unknown"
    with pytest.raises(QiluError) as refused:
        showing.show(province.session, licence, ["id_number_of_someone"], now)
    assert refused.value.code == "licence.field"


def test_a_revoked_licence_cannot_be_shown_and_a_live_code_says_so(
    province: Province, store: LocalFileStore
) -> None:
    finished_newborn(province, store)
    licence = certificate(province)
    token, _ = showing.show(province.session, licence, ["holder_name"])
    licences.revoke_licence(province.session, licence, reason="信息有误", actor_person_id=None)
    assert showing.verify(province.session, token).status == "revoked"
    with pytest.raises(QiluError) as refused:
        showing.show(province.session, licence, [])
    assert refused.value.code == "licence.not_valid"


def test_only_the_holder_or_keeper_reaches_a_licence(
    province: Province, store: LocalFileStore
) -> None:
    finished_newborn(province, store)
    licence = certificate(province)
    mother = (province.resident.id_number_index,)
    assert showing.owned_licence(province.session, licence.number, mother).id == licence.id
    stranger = make_person(province.session, province.vault, name="路人")
    with pytest.raises(NotFound):
        showing.owned_licence(province.session, licence.number, (stranger.id_number_index,))


def signed_in_as(client: TestClient, province: Province, person: Person) -> None:
    cookie, _ = sessions.start_session(
        province.session,
        make_account(province.session, province.vault, person),
        assurance=3,
        profile="standard",
        client_address="t",
        user_agent="t",
    )
    province.session.commit()
    client.cookies.set(SESSION_COOKIE, cookie)


def test_the_wallet_the_face_and_the_shown_page(
    client: TestClient, province: Province, store: LocalFileStore
) -> None:
    finished_newborn(province, store)
    licence = certificate(province)
    signed_in_as(client, province, province.resident)
    wallet = client.get("/account/licences")
    assert (
        "代王小宝保管" in wallet.text and f"/account/licences/{licence.number}/show" in wallet.text
    )
    page = client.get(f"/account/licences/{licence.number}")
    assert page.status_code == 200 and "face.svg" in page.text and "打印照面" in page.text
    face = client.get(f"/account/licences/{licence.number}/face.svg")
    assert face.headers["content-type"].startswith("image/svg+xml")
    assert "王小宝" in face.text and licence.number in face.text and "<path" in face.text

    shown = client.get(f"/account/licences/{licence.number}/show", params={"f": "holder_name"})
    assert shown.status_code == 200 and 'hx-trigger="every 50s"' in shown.text
    token = re.search(r"/licences/shown/([\w-]+)", shown.text)
    assert token is not None
    again = client.get(
        f"/account/licences/{licence.number}/show", params={"f": "holder_name", "fragment": "1"}
    )
    assert "<html" not in again.text and token.group(1) not in again.text  # a fresh code

    client.cookies.clear()
    verifier = client.get(f"/licences/shown/{token.group(1)}")
    assert verifier.status_code == 200 and 'data-verdict="valid"' in verifier.text
    assert "王小宝" in verifier.text and "核验时间" in verifier.text
    assert licence.content["child_birth_date"] not in verifier.text  # not ticked

    stranger = make_person(province.session, province.vault, name="路人")
    signed_in_as(client, province, stranger)
    assert client.get(f"/account/licences/{licence.number}").status_code == 404
    assert client.get(f"/account/licences/{licence.number}/face.svg").status_code == 404
    assert client.get(f"/account/licences/{licence.number}.json").status_code == 404
