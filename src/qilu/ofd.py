"""OFD (GB/T 33190-2016) layout documents: a licence's face (照面) as text and paths on one page,
its data index as a custom tag (GB/T 36905), the signed licence document as an attachment, and
an SM2 signature over the package (GB/T 33190 §18, in the spirit of GB/T 38540's e-seals).

No maintained Python OFD writer serves: the registry's one OFD package, easyofd, reads OFD and
writes it only by rasterising PDF pages (no text, no tags, no signature). So this is a minimal
writer of the parts a licence needs, documented here and tested by reading its files back with
easyofd as an independent reader:

- ``OFD.xml``: the entry (DocBody with DocInfo, the DocRoot and the Signatures file);
- ``Doc_0/Document.xml``: CommonData (page area in millimetres, PublicRes, MaxUnitID), Pages,
  CustomTags, Attachments;
- ``Doc_0/PublicRes.xml``: the font (by name: readers substitute a CJK face they hold);
- ``Doc_0/Pages/Page_0/Content.xml``: one layer of TextObjects (Boundary in mm, TextCode with
  X/Y inside it) and PathObjects (AbbreviatedData: M, L, A, C, B, Q; a circle as two arcs);
- ``Doc_0/CustomTags.xml`` and ``Doc_0/Tags/Licence.xml``: each 照面 item with its value and
  the id of the TextObject showing it (the data index);
- ``Doc_0/Attachments.xml`` and ``Doc_0/Attachs/licence.json``: the licence document and the
  issuer's seal over it, as the JSON download carries them;
- ``Doc_0/Signs/Signatures.xml``, ``Sign_0/Signature.xml`` (SignedInfo: provider, method SM2
  1.2.156.10197.1.501, time, References with the SM3 of every other file, CheckMethod
  1.2.156.10197.1.401, the StampAnnot on the page) and ``Sign_0/SignedValue.dat``: the SM2
  signature (DER, as GB/T 35276) over Signature.xml exactly as stored.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree as ET

from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from qilu import seals
from qilu.digests import sm3

NS = "http://www.ofdspec.org/2016"
ET.register_namespace("ofd", NS)
SM2_WITH_SM3 = "1.2.156.10197.1.501"
SM3_OID = "1.2.156.10197.1.401"
SIGNATURE = "Doc_0/Signs/Sign_0/Signature.xml"
SIGNED_VALUE = "Doc_0/Signs/Sign_0/SignedValue.dat"
SIGNED_FILES = ("Doc_0/Signs/Signatures.xml", SIGNATURE, SIGNED_VALUE)
ATTACHMENT = "Doc_0/Attachs/licence.json"
TAGS = "Doc_0/Tags/Licence.xml"
PAGE = (0.0, 0.0, 210.0, 148.0)  # A5 landscape, mm
RED, INK, GREY = "208 40 30", "29 27 26", "95 91 87"
FONT_ID = 1


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def _xml(root: ET.Element) -> bytes:
    written: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return written


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, _q(tag), {k: v for k, v in attrs.items()})
    if text is not None:
        node.text = text
    return node


def _width(text: str, size: float) -> float:
    """An estimate of a line's width in mm: CJK characters a square, others about half."""
    return sum(size if ord(c) > 0x2E80 else size * 0.55 for c in text)


@dataclass(frozen=True)
class Face:
    """What a licence's face shows: a title, labelled lines, and the issuer's block."""

    title: str
    lines: Sequence[tuple[str, str]]  # (label, value), the data index's items
    issuer: str
    issued_on: str
    identifier: str


class _Page:
    def __init__(self) -> None:
        self.next_id = 10
        self.layer = ET.Element(_q("Layer"), {"ID": "3"})
        self.objects: dict[str, int] = {}

    def _id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def text(self, x: float, y: float, text: str, size: float, colour: str = INK) -> int:
        width = _width(text, size)
        boundary = f"{x:.2f} {y:.2f} {width + 1:.2f} {size * 1.4:.2f}"
        node = _sub(
            self.layer, "TextObject", ID=self._id(), Boundary=boundary, Font=str(FONT_ID),
            Size=f"{size:.2f}",
        )  # fmt: skip
        _sub(node, "FillColor", Value=colour)
        _sub(node, "TextCode", text, X="0", Y=f"{size:.2f}")
        return int(node.get("ID") or 0)

    def path(self, data: str, boundary: str, colour: str, width: float = 0.35) -> None:
        node = _sub(
            self.layer, "PathObject", ID=self._id(), Boundary=boundary, LineWidth=f"{width}",
            Stroke="true", Fill="false",
        )  # fmt: skip
        _sub(node, "StrokeColor", Value=colour)
        _sub(node, "AbbreviatedData", data)

    def circle(self, cx: float, cy: float, r: float, colour: str, width: float) -> None:
        box = f"{cx - r:.2f} {cy - r:.2f} {2 * r:.2f} {2 * r:.2f}"
        # In the object's own space (origin at the box's corner): two half arcs.
        data = f"M 0 {r:.2f} A {r:.2f} {r:.2f} 0 1 0 {2 * r:.2f} {r:.2f} " + (
            f"A {r:.2f} {r:.2f} 0 1 0 0 {r:.2f} C"
        )
        self.path(data, box, colour, width)


def _content(face: Face) -> tuple[bytes, dict[str, int], int]:
    page = _Page()
    left, right = 18.0, PAGE[2] - 18.0
    page.path(f"M 0 0 L {right - left + 8:.2f} 0", f"{left - 4} 10 {right - left + 8} 1", RED, 0.8)
    title = 9.0
    page.text((PAGE[2] - _width(face.title, title)) / 2, 14, face.title, title, RED)
    y = 34.0
    items: dict[str, int] = {}
    for label, value in face.lines:
        page.text(left, y, f"{label}", 3.8, GREY)
        items[label] = page.text(left + 34, y, value, 3.8)
        y += 8.5
    page.text(left, PAGE[3] - 22, f"电子证照标识 {face.identifier}", 2.6, GREY)
    seal_x, seal_y = right - 22, PAGE[3] - 38
    page.text(seal_x - 24, PAGE[3] - 30, face.issuer, 3.6)
    page.text(seal_x - 10, PAGE[3] - 24, face.issued_on, 3.4)
    page.circle(seal_x, seal_y, 16, RED, 0.9)
    page.text(seal_x - _width("★", 6) / 2, seal_y - 4, "★", 6, RED)
    page.text(seal_x - _width("电子印章", 3) / 2, seal_y + 5, "电子印章", 3, RED)
    root = ET.Element(_q("Page"))
    content = _sub(root, "Content")
    content.append(page.layer)
    return _xml(root), items, page.next_id


def _files(face: Face, document: dict[str, Any], seal_hex: str) -> dict[str, bytes]:
    content, items, max_id = _content(face)
    ofd = ET.Element(_q("OFD"), {"Version": "1.0", "DocType": "OFD"})
    body = _sub(ofd, "DocBody")
    info = _sub(body, "DocInfo")
    _sub(info, "DocID", uuid.uuid5(uuid.NAMESPACE_URL, face.identifier).hex)
    _sub(info, "Title", face.title)
    _sub(info, "Author", face.issuer)
    _sub(info, "CreationDate", face.issued_on)
    _sub(info, "Creator", "Qilu 齐鲁")
    _sub(body, "DocRoot", "Doc_0/Document.xml")
    _sub(body, "Signatures", "Doc_0/Signs/Signatures.xml")

    doc = ET.Element(_q("Document"))
    common = _sub(doc, "CommonData")
    _sub(common, "MaxUnitID", str(max_id))
    area = _sub(common, "PageArea")
    _sub(area, "PhysicalBox", " ".join(f"{v:g}" for v in PAGE))
    _sub(common, "PublicRes", "PublicRes.xml")
    pages = _sub(doc, "Pages")
    _sub(pages, "Page", ID="2", BaseLoc="Pages/Page_0/Content.xml")
    _sub(doc, "CustomTags", "CustomTags.xml")
    _sub(doc, "Attachments", "Attachments.xml")

    res = ET.Element(_q("Res"), {"BaseLoc": "Res"})
    fonts = _sub(res, "Fonts")
    _sub(fonts, "Font", ID=str(FONT_ID), FontName="宋体", FamilyName="宋体")

    tags = ET.Element(_q("CustomTags"))
    tag = _sub(tags, "CustomTag", NameSpace="urn:gb:t:36905:licence", TypeID="照面信息")
    _sub(tag, "FileLoc", "Tags/Licence.xml")
    index = ET.Element("Licence", {"xmlns": "urn:gb:t:36905:licence"})
    ET.SubElement(index, "Identifier").text = face.identifier
    for label, object_id in items.items():
        item = ET.SubElement(index, "Item", {"Name": label})
        ET.SubElement(item, "Value").text = dict(face.lines)[label]
        ET.SubElement(item, _q("ObjectRef"), {"PageRef": "2"}).text = str(object_id)

    signed = {"document": document, "signature": seal_hex}
    attached = json.dumps(signed, ensure_ascii=False, sort_keys=True).encode()
    attachments = ET.Element(_q("Attachments"))
    attach = _sub(
        attachments, "Attachment", ID="1", Name="licence.json", Format="json",
        CreationDate=face.issued_on, Size=f"{len(attached) / 1024:.3f}",  # in KB
    )  # fmt: skip
    _sub(attach, "FileLoc", "Attachs/licence.json")
    return {
        "OFD.xml": _xml(ofd),
        "Doc_0/Document.xml": _xml(doc),
        "Doc_0/PublicRes.xml": _xml(res),
        "Doc_0/Pages/Page_0/Content.xml": content,
        "Doc_0/CustomTags.xml": _xml(tags),
        TAGS: ET.tostring(index, encoding="UTF-8", xml_declaration=True),
        "Doc_0/Attachments.xml": _xml(attachments),
        ATTACHMENT: attached,
    }


def _signature_xml(files: dict[str, bytes], provider: str, at: datetime) -> bytes:
    root = ET.Element(_q("Signature"))
    info = _sub(root, "SignedInfo")
    _sub(info, "Provider", ProviderName=provider, Company="Qilu 齐鲁", Version="1.0")
    _sub(info, "SignatureMethod", SM2_WITH_SM3)
    _sub(info, "SignatureDateTime", f"{at.astimezone(UTC):%Y%m%d%H%M%SZ}")
    references = _sub(info, "References", CheckMethod=SM3_OID)
    for name, data in sorted(files.items()):
        reference = _sub(references, "Reference", FileRef=f"/{name}")
        _sub(reference, "CheckValue", base64.b64encode(sm3(data)).decode())
    _sub(
        info, "StampAnnot", ID="1", PageRef="2", Boundary=f"{PAGE[2] - 56:g} {PAGE[3] - 56:g} 36 36"
    )
    _sub(root, "SignedValue", "/" + SIGNED_VALUE)
    return _xml(root)


def licence_ofd(
    face: Face,
    document: dict[str, Any],
    seal_hex: str,
    key: seals.SealKey,
    *,
    signer: str,
    at: datetime | None = None,
) -> bytes:
    """The licence as an OFD package, sealed by `key` (the issuer's SM2 sealing key)."""
    files = _files(face, document, seal_hex)
    signature_xml = _signature_xml(files, signer, at or datetime.now(UTC))
    r_s = key.sign(signature_xml)
    der = encode_dss_signature(int.from_bytes(r_s[:32], "big"), int.from_bytes(r_s[32:], "big"))
    signs = ET.Element(_q("Signatures"))
    _sub(signs, "MaxSignId", "1")
    _sub(signs, "Signature", ID="1", Type="Sign", BaseLoc="Sign_0/Signature.xml")
    files |= {
        "Doc_0/Signs/Signatures.xml": _xml(signs),
        SIGNATURE: signature_xml,
        SIGNED_VALUE: der,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in files.items():
            package.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


@dataclass(frozen=True)
class Opened:
    """An OFD package read back: the signed licence document inside it, and whether its own
    seal holds (an empty `problems`)."""

    document: dict[str, Any] | None
    seal_hex: str
    problems: list[str]


def open_licence(data: bytes, public_key: bytes | None = None) -> Opened:
    """Read a licence OFD; with `public_key`, check its SM2 signature and that every file is
    the one signed (nothing changed, added or removed)."""
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
        files = {name: package.read(name) for name in package.namelist()}
        signed = json.loads(files[ATTACHMENT])
        document, seal_hex = signed["document"], str(signed["signature"])
        info = ET.fromstring(files[SIGNATURE]).find(_q("SignedInfo"))
    except (zipfile.BadZipFile, KeyError, ValueError, ET.ParseError, TypeError):
        return Opened(None, "", ["不是齐鲁签发的 OFD 电子证照文件"])
    if public_key is None or info is None:
        return Opened(document, seal_hex, [])
    problems = []
    listed = {}
    for reference in info.iter(_q("Reference")):
        name = (reference.get("FileRef") or "").lstrip("/")
        listed[name] = base64.b64decode(reference.findtext(_q("CheckValue")) or "")
    for name in sorted(set(files) - set(SIGNED_FILES)):
        if name not in listed:
            problems.append(f"{name} 不在签名范围内（文件被加入）")
        elif sm3(files[name]) != listed[name]:
            problems.append(f"{name} 的 SM3 杂凑与签名时不符（文件被改动）")
    problems += [f"{name} 已缺失" for name in sorted(set(listed) - set(files))]
    try:
        r, s = decode_dss_signature(files[SIGNED_VALUE])
        r_s = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    except (ValueError, KeyError):
        r_s = b""
    if not seals.verify(seals.SM2, public_key, r_s, files[SIGNATURE]):
        problems.append("OFD 签名值与签名描述文件不符")
    return Opened(document, seal_hex, problems)
