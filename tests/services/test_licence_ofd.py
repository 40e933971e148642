"""E-licences as OFD (GB/T 33190 / GB/T 36905, issue 16): the holder downloads the licence's
face as an OFD that an independent reader (easyofd) opens, with its data index, the signed
licence inside and an SM2 signature over the package; anything changed in it, added to it or
signed by another key is caught, and the register's verdict (暂扣, 已被新版本取代) applies."""

from __future__ import annotations

import io
import warnings
import zipfile

import pytest
from fastapi.testclient import TestClient

from qilu import ofd, seals
from qilu.services import licences
from qilu.services.models import DepartmentKey, Licence
from qilu.workdays import beijing_today

from .conftest import Province
from .test_results import certificate, finished_newborn
from .test_showing import signed_in_as


@pytest.fixture
def issued(province: Province, store: object) -> Licence:
    finished_newborn(province, store)  # type: ignore[arg-type]
    return certificate(province)


def read_independently(data: bytes) -> list[str]:
    """The texts on the OFD's page as easyofd (not Qilu's code) reads them."""
    from loguru import logger

    logger.remove()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from easyofd.ofd import OFD

        document = OFD()
        document.read(data, fmt="binary")
    return [t["text"] for t in document.data[0]["page_info"][0]["text_list"]]


def replaced(data: bytes, name: str, content: bytes | None) -> bytes:
    """The package with one file changed (or, if new, added; None removes it)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for entry in source.namelist():
            if entry != name:
                target.writestr(entry, source.read(entry))
        if content is not None:
            target.writestr(name, content)
    return out.getvalue()


def test_the_holder_downloads_an_ofd_an_independent_reader_opens(
    client: TestClient, province: Province, issued: Licence
) -> None:
    signed_in_as(client, province, province.resident)
    answer = client.get(f"/account/licences/{issued.number}.ofd")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/ofd"
    data = answer.content
    texts = read_independently(data)
    assert "出生医学证明" in texts and issued.holder_name in texts
    assert any((issued.identifier or "") in t for t in texts)
    assert issued.issuer.name in texts
    package = zipfile.ZipFile(io.BytesIO(data))
    tags = package.read(ofd.TAGS).decode()
    assert issued.identifier in tags and "<Value>王小宝</Value>" in tags  # the data index
    key = province.session.get_one(DepartmentKey, issued.key_id)
    assert ofd.open_licence(data, key.public_key).problems == []
    verdict = licences.verify_ofd(province.session, data, beijing_today())
    assert verdict.status == "valid", verdict.reason
    client.cookies.clear()
    page = client.post("/licences/verify", files={"file": ("licence.ofd", data, "application/ofd")})
    assert page.status_code == 200 and "签名有效" in page.text


def test_a_changed_added_or_foreign_signed_ofd_is_caught(
    province: Province, issued: Licence
) -> None:
    session, vault, today = province.session, province.vault, beijing_today()
    data = licences.ofd_of(session, vault, issued, [])
    content = zipfile.ZipFile(io.BytesIO(data)).read("Doc_0/Pages/Page_0/Content.xml")
    forged = replaced(data, "Doc_0/Pages/Page_0/Content.xml", content.replace(
        "王小宝".encode(), "李小宝".encode()
    ))  # fmt: skip
    verdict = licences.verify_ofd(session, forged, today)
    assert verdict.status == "forged" and "Content.xml 的 SM3 杂凑与签名时不符" in verdict.reason
    added = licences.verify_ofd(session, replaced(data, "Doc_0/Res/extra.png", b"x"), today)
    assert added.status == "forged" and "被加入" in added.reason
    removed = licences.verify_ofd(session, replaced(data, ofd.TAGS, None), today)
    assert removed.status == "forged" and "已缺失" in removed.reason
    stranger = seals.new_key()
    face = ofd.Face("出生医学证明", [("持证人", "王小宝")], "某机关", "2026-12-07", "x")
    document = licences.document_of(issued, issued.issuer)
    foreign = ofd.licence_ofd(face, document, issued.signature.hex(), stranger, signer="某机关")
    assert licences.verify_ofd(session, foreign, today).status == "forged"
    assert licences.verify_ofd(session, b"PK-not-a-zip", today).status == "forged"


def test_the_register_decides_what_a_genuine_ofd_is_worth(
    province: Province, issued: Licence
) -> None:
    session, vault, today = province.session, province.vault, beijing_today()
    first = licences.ofd_of(session, vault, issued, [])
    licences.suspend_licence(session, issued, reason="核查", actor_person_id=None)
    assert licences.verify_ofd(session, first, today).status == "suspended"
    licences.restore_licence(session, issued, reason="无误", actor_person_id=None)
    licences.reissue_licence(
        session, vault, issued, "renew", reason="延续", actor_person_id=None, today=today, years=3
    )
    assert licences.verify_ofd(session, first, today).status == "replaced"
    current = licences.ofd_of(session, vault, issued, [])
    assert licences.verify_ofd(session, current, today).status == "valid"
