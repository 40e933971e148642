"""PDF pages in Chinese with fpdf2: a document in the official layout (title, addressee,
paragraphs, the issuer with its seal, the QR that verifies it) and a licence face.

The font is a CJK OpenType collection on the server (`QILU_CJK_FONT`, Noto Serif CJK from
Debian's fonts-noto-cjk by default: a 宋体-like face, as official documents use); only the
glyphs a page uses are embedded, so a page is a few kilobytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import segno
from fontTools.ttLib import TTCollection
from fpdf import FPDF
from fpdf.enums import MethodReturnValue, WrapMode, XPos, YPos

from qilu.errors import QiluError

SEAL_RED = (208, 40, 30)
INK = (29, 27, 26)
GREY = (95, 91, 87)


class FontMissing(QiluError):
    """The server has no Chinese font to write PDFs with: an operator's fix, not the user's."""

    status_code = 503


@lru_cache(maxsize=4)
def _face(path: Path) -> int:
    """The Simplified Chinese face in a collection (.ttc), 0 for a single font file."""
    if path.suffix.lower() != ".ttc":
        return 0
    fonts = TTCollection(str(path), lazy=True).fonts
    names = [str(f["name"].getDebugName(1) or "") for f in fonts]
    return next((i for i, name in enumerate(names) if name.endswith(" SC")), 0)


def blank(font: Path, title: str, author: str, created: datetime) -> FPDF:
    """An A4 page in the Chinese font, margins as official documents have them."""
    if not font.is_file():
        raise FontMissing(
            "pdf.font",
            f"服务器缺少中文字体（{font}），暂时无法生成 PDF，请联系管理员安装 fonts-noto-cjk "
            "或设置 QILU_CJK_FONT",
        )
    pdf = FPDF(format="A4", unit="mm")
    pdf.add_font("cjk", fname=font, collection_font_number=_face(font))
    pdf.set_font("cjk", size=12)
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_creator("Qilu 齐鲁")
    pdf.set_creation_date(created)  # the document's own date: the same document, the same bytes
    pdf.set_margins(25, 25, 25)
    pdf.set_auto_page_break(True, margin=25)
    pdf.add_page()
    return pdf


def _qr(pdf: FPDF, url: str, x: float, y: float, size: float) -> None:
    """Draw the QR of `url` as vector squares (no image), runs of dark modules merged per row;
    on a screen, tapping it opens `url`."""
    matrix = segno.make(url, error="m").matrix
    module = size / len(matrix)
    pdf.set_fill_color(0, 0, 0)
    for row, line in enumerate(matrix):
        start: int | None = None
        for col, dark in enumerate([*line, 0]):
            if dark and start is None:
                start = col
            elif not dark and start is not None:
                pdf.rect(x + start * module, y + row * module, (col - start) * module, module, "F")
                start = None
    pdf.link(x, y, size, size, url)


def _seal(pdf: FPDF, cx: float, cy: float, issuer: str) -> None:
    """The department's seal as it appears on paper: a red ring, a star and the name."""
    pdf.set_draw_color(*SEAL_RED)
    pdf.set_text_color(*SEAL_RED)
    pdf.set_line_width(0.9)
    pdf.circle(cx, cy, 19, "D")
    pdf.set_font_size(20)
    pdf.set_xy(cx - 10, cy - 12)
    pdf.cell(20, 12, "★", align="C")
    pdf.set_font_size(7 if len(issuer) > 8 else 8)
    pdf.set_xy(cx - 17, cy + 1)
    pdf.multi_cell(34, 3.6, issuer[:20], align="C", wrapmode=WrapMode.CHAR)
    pdf.set_text_color(*INK)
    pdf.set_draw_color(*INK)
    pdf.set_line_width(0.2)


# Closing punctuation never starts a line (避头); it hangs at the end of the line before.
NO_LINE_START = frozenset("，。、；：？！）》」』”’…%,.;:?!)")


def lines_of(pdf: FPDF, text: str, width: float) -> list[str]:
    """`text` broken into lines of `width` at any character (Chinese has no spaces), with
    closing punctuation hung at the end of the line before instead of starting one."""
    broken = pdf.multi_cell(
        width, 1, text, dry_run=True, output=MethodReturnValue.LINES, wrapmode=WrapMode.CHAR
    )
    assert isinstance(broken, list)  # what output=LINES returns
    lines: list[str] = []
    for line in map(str, broken):
        while lines and line and line[0] in NO_LINE_START:
            lines[-1] += line[0]
            line = line[1:]
        if line:
            lines.append(line)
    return lines


def _paragraph(pdf: FPDF, text: str, *, size: float = 12, indent: bool = True) -> None:
    pdf.set_font_size(size)
    lead = "\u3000\u3000" if indent else ""
    for line in lines_of(pdf, lead + text, pdf.epw):
        pdf.cell(0, size * 0.62, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.5)


def document(
    *,
    font: Path,
    content: dict[str, Any],
    number: str,
    seal_hex: str,
    verify_url: str,
    created: datetime,
) -> bytes:
    """A case document (受理回执, 决定书, 告知书): `content` as `documents.issue` wrote it."""
    pdf = blank(font, content["title"], content["issuer"], created)
    pdf.set_text_color(*INK)
    pdf.set_font_size(22)
    pdf.cell(0, 14, content["title"], align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font_size(9.5)
    pdf.set_text_color(*GREY)
    pdf.cell(
        0,
        6,
        f"文书编号 {number}    办件编号 {content['case']}",
        align="C",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    pdf.set_text_color(*INK)
    pdf.ln(6)
    _paragraph(pdf, f"{content['addressee']}：", indent=False)
    for block in content["blocks"]:
        if "p" in block:
            _paragraph(pdf, block["p"])
        for n, line in enumerate(block.get("ol", []), start=1):
            _paragraph(pdf, f"{n}. {line}")
    pdf.ln(8)
    if pdf.get_y() > pdf.h - 80:
        pdf.add_page()
    top = pdf.get_y()
    pdf.set_font_size(12)
    pdf.set_xy(pdf.w - 25 - 70, top + 6)
    pdf.cell(70, 8, content["issuer"], align="C", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.cell(70, 8, content["issued_on"], align="C")
    _seal(pdf, pdf.w - 25 - 35, top + 12, content["issuer"])
    _qr(pdf, verify_url, 25, top, 30)
    _footer(pdf, top + 32, seal_hex, "扫描二维码或访问“文书核验”，核对本文书是否由签发机关出具。")
    return bytes(pdf.output())


def _footer(pdf: FPDF, y: float, seal_hex: str, how: str) -> None:
    pdf.set_xy(25, y)
    pdf.set_font_size(8)
    pdf.set_text_color(*GREY)
    pdf.multi_cell(
        pdf.w - 50,
        4,
        f"{how}电子签名：{seal_hex[:32]}…",
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
        wrapmode=WrapMode.CHAR,
    )
    pdf.set_text_color(*INK)


def licence(
    *,
    font: Path,
    title: str,
    number: str,
    holder: str,
    fields: Sequence[tuple[str, str]],
    validity: str,
    issuer: str,
    seal_hex: str,
    verify_url: str,
    created: datetime,
    void: str | None,
) -> bytes:
    """A licence's face (照面) on A4, as the holder prints it: the fields, the seal and the QR
    that verifies the licence; `void` (已注销, 已过期) is printed across a licence that no
    longer holds."""
    pdf = blank(font, f"{title} {number}", issuer, created)
    x, y, w, h = 20.0, 25.0, pdf.w - 40, 110.0
    pdf.set_draw_color(*SEAL_RED)
    pdf.set_line_width(1.2)
    pdf.rect(x, y, w, h, "D", round_corners=True, corner_radius=5)
    pdf.set_line_width(0.2)
    pdf.set_font_size(22)
    pdf.set_xy(x, y + 6)
    pdf.cell(w, 12, title, align="C")
    rows = [("编号", number), ("持证人", holder), *fields[:7]]
    for n, (label, value) in enumerate(rows):
        pdf.set_xy(x + 8, y + 24 + n * 8)
        pdf.set_font_size(10)
        pdf.set_text_color(*GREY)
        pdf.cell(30, 7, label[:8])
        pdf.set_text_color(*INK)
        pdf.set_font_size(11)
        pdf.cell(w - 90, 7, value[:30])
    pdf.set_xy(x + 8, y + h - 12)
    pdf.set_font_size(9.5)
    pdf.set_text_color(*GREY)
    pdf.cell(w - 60, 7, validity)
    pdf.set_text_color(*INK)
    _qr(pdf, verify_url, x + w - 48, y + 22, 40)
    pdf.set_xy(x + w - 48, y + 63)
    pdf.set_font_size(8)
    pdf.cell(40, 5, "扫码核验", align="C")
    _seal(pdf, x + w - 28, y + h - 22, issuer)
    if void:
        pdf.set_font_size(48)
        pdf.set_text_color(163, 21, 21)
        with pdf.rotation(18, x + w / 2, y + h / 2):
            pdf.set_xy(x, y + h / 2 - 12)
            pdf.cell(w, 24, void, align="C")
        pdf.set_text_color(*INK)
    _footer(pdf, y + h + 6, seal_hex, "本页为电子证照的打印件，以扫码核验结果为准。")
    return bytes(pdf.output())
