"""The PDF documents' cost: `python -m bench.documents`.

Writes a 受理回执 and a licence face as PDFs the way the routes do (fpdf2, the CJK font
subset, the QR drawn as vectors) and, as the baseline in the same run, renders the same
receipt as the HTML page's Jinja template. Prints the time per document, the ratio to the
HTML page and the PDF sizes, then the functions the PDF time goes to (cProfile).
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

from jinja2 import Environment, FileSystemLoader

from qilu import pdf
from qilu.settings import Settings

ROUNDS = 30
TEMPLATES = Path(__file__).resolve().parent.parent / "src" / "qilu" / "services" / "templates"
SEAL = "ab" * 64
RECEIPT = {
    "title": "受理回执",
    "case": "SQ3701022026120600000001-01",
    "application": "SQ3701022026120600000001",
    "addressee": "王丽",
    "issuer": "济南市历下区民政局",
    "issuer_uscc": "11370102MB28502000",
    "issued_on": "2026-12-06",
    "blocks": [
        {
            "p": "您于2026年12月06日提交的“临时救助申请”申请，本机关已于2026年12月06日受理。"
            "承诺办理时限10个工作日，应于2026年12月18日前办结（补正期间不计入）。"
        },
        {"p": "已收到的材料："},
        {"ol": ["困难情况说明（上传 说明.png）", "居民身份证（电子证照）"]},
        {"p": "可凭申请编号在“办件查询”中查看进度。"},
    ],
}


def receipt_pdf(font: Path) -> bytes:
    return pdf.document(
        font=font,
        content=RECEIPT,
        number=f"{RECEIPT['case']}-HZ1",
        seal_hex=SEAL,
        verify_url=f"https://zwfw.example.gov.cn/documents/verify?number=X-HZ1&seal={SEAL}",
        created=datetime.now(UTC),
    )


def licence_pdf(font: Path) -> bytes:
    return pdf.licence(
        font=font,
        title="出生医学证明",
        number="370102202612060000000001",
        holder="王小宝",
        fields=[("出生日期", "2026-12-04"), ("性别", "男"), ("出生地点", "山东省立医院")],
        validity="有效期 2026-12-06 至 长期 · 可信等级 A",
        issuer="济南市历下区卫生健康局",
        seal_hex=SEAL,
        verify_url=f"https://zwfw.example.gov.cn/licences/verify?number=1&seal={SEAL}",
        created=datetime.now(UTC),
        void=None,
    )


def receipt_html() -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True)
    document = SimpleNamespace(kind="receipt", number=f"{RECEIPT['case']}-HZ1", content=RECEIPT)
    return env.get_template("services/_document.html").render(document=document)


def timed(make: Callable[[], object]) -> float:
    """Median milliseconds of `make` over ROUNDS runs (after one warm-up)."""
    make()
    runs = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        make()
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs)


def main() -> None:
    font = Settings().cjk_font
    html_ms = timed(receipt_html)
    receipt_ms = timed(lambda: receipt_pdf(font))
    licence_ms = timed(lambda: licence_pdf(font))
    print(f"font: {font}")
    print(f"受理回执 HTML (baseline)  {html_ms:8.2f} ms  {len(receipt_html().encode()):6d} B")
    print(
        f"受理回执 PDF              {receipt_ms:8.2f} ms  {len(receipt_pdf(font)):6d} B"
        f"  ({receipt_ms / html_ms:.0f}× the HTML)"
    )
    print(f"出生医学证明 PDF          {licence_ms:8.2f} ms  {len(licence_pdf(font)):6d} B")
    profile = cProfile.Profile()
    profile.runcall(lambda: [receipt_pdf(font) for _ in range(5)])
    print("\nwhere the receipt PDF's time goes (5 documents, cumulative):")
    pstats.Stats(profile).sort_stats("cumulative").print_stats(12)


if __name__ == "__main__":
    main()
