"""单套制 to archival standards (issue 16): a package carries its archival metadata and 档号
(DA/T 13, DA/T 46) and its licences as sealed OFD; its 四性检测 (DA/T 70) passes, and fails on
a package changed after archiving — a file altered, one added, a permission opened, a virus
found; `transfer` hands the passing packages over in the documented layout and holds back the
others with their reasons."""

from __future__ import annotations

import json
import shlex
import stat
import sys
from datetime import date
from pathlib import Path

import pytest

from qilu.filestore import LocalFileStore
from qilu.services import archival, archive
from qilu.services.models import Archive

from .conftest import Province
from .test_results import finished_newborn

FONDS = "Q001"


@pytest.fixture
def package(province: Province, store: LocalFileStore, tmp_path: Path) -> Archive:
    application = finished_newborn(province, store)
    return archive.archive_application(
        province.session, province.vault, store, tmp_path, application, fonds=FONDS
    )


def results(report: archival.Report) -> dict[str, str]:
    return {f"{i['性质']}·{i['检测项']}": i["结果"] for i in report.items}


def opened(path: Path) -> None:
    """Writable again, as someone changing a package on disk would make it."""
    for part in [path, *path.parents]:
        if part.exists():
            part.chmod(part.stat().st_mode | stat.S_IWUSR)
        if part.name == "data":
            break


def test_a_package_carries_its_metadata_and_passes_its_check(
    province: Province, package: Archive, tmp_path: Path
) -> None:
    year = date.today().year
    assert package.reference is not None
    assert package.reference.startswith(f"{FONDS}-ZW·")
    assert package.reference.endswith("-ZWFW-0001") and str(year) in package.reference
    # 出生登记 is a 行政确认 of 公安: the package is kept permanently (永久).
    assert (package.retention, package.classification) == ("Y", "内部")
    data = tmp_path / package.path / "data"
    metadata = json.loads((data / "metadata.json").read_text("utf-8"))["档案元数据"]
    assert metadata["档号"] == package.reference and metadata["保管期限"] == "永久"
    assert {"全宗号", "年度", "密级", "归档日期", "件号"} <= set(metadata)
    assert sorted(p.suffix for p in (data / "licences").iterdir()) == [".ofd", ".ofd"]
    assert package.check_passed is True and package.check_report is not None
    report = results(archival.Report(package.reference, package.check_report["检测项"]))
    assert {k.split("·")[0] for k in report} == {"真实性", "完整性", "可用性", "安全性"}
    assert report["真实性·电子证照国密签名"] == "通过"
    assert report["安全性·病毒检测"] == "提示"  # no scanner configured: said, not passed
    assert all(v in ("通过", "提示") for v in report.values())


@pytest.mark.parametrize("change", ["altered", "added", "writable", "ofd"])
def test_a_package_changed_after_archiving_fails(
    province: Province, package: Archive, tmp_path: Path, change: str
) -> None:
    root = tmp_path / package.path
    data = root / "data"
    if change == "altered":
        target = data / "form.json"
        opened(target)
        target.write_text(target.read_text("utf-8").replace("王小宝", "王大宝"), "utf-8")
        expected = "真实性·固定性（sha256 与 SM3 清单、归档时的标签清单）"
    elif change == "added":
        opened(data / "materials")
        (data / "materials" / "run.exe").write_bytes(b"MZ")
        expected = "安全性·无可执行内容或链接"
    elif change == "writable":
        (data / "audit.json").chmod(0o644)
        expected = "安全性·只读保护"
    else:  # an OFD swapped for a copy with a page changed: its signature no longer holds
        licence = next((data / "licences").iterdir())
        opened(licence)
        licence.write_bytes(licence.read_bytes().replace(b"OFD.xml", b"OFD.xmm"))
        expected = "可用性·格式可读（JSON、PDF、OFD、JPEG、PNG）"
    report = archival.check(province.session, tmp_path, package, scanner=None, fonds=FONDS)
    assert not report.passed and results(report)[expected] == "不通过"
    assert package.check_passed is False and package.check_report["结论"] == "不通过"


def test_a_virus_scanner_decides_the_security_item(
    province: Province, package: Archive, tmp_path: Path
) -> None:
    def scanner(code: int) -> str:
        script = f'import sys; print("Eicar FOUND"); sys.exit({code})'
        return f"{shlex.quote(sys.executable)} -c {shlex.quote(script)}"

    clean = archival.check(province.session, tmp_path, package, scanner=scanner(0), fonds=FONDS)
    assert results(clean)["安全性·病毒检测"] == "通过" and clean.passed
    infected = archival.check(province.session, tmp_path, package, scanner=scanner(1), fonds=FONDS)
    assert results(infected)["安全性·病毒检测"] == "不通过" and not infected.passed
    assert "Eicar FOUND" in json.dumps(infected.items, ensure_ascii=False)


def test_transfer_hands_over_passing_packages_and_holds_back_the_rest(
    province: Province, package: Archive, tmp_path: Path
) -> None:
    target = tmp_path / "to-archives"
    done = archival.transfer(province.session, tmp_path, target, scanner=None, fonds=FONDS)
    assert done.sent == [package.reference] and done.held == []
    year = (package.reference or "").split("·")[1][:4]
    folder = target / FONDS / year / "Y"
    bag = folder / (package.reference or "")
    assert (bag / "bagit.txt").is_file() and (bag / "data" / "metadata.json").is_file()
    report = json.loads((folder / f"{package.reference}.四性检测.json").read_text("utf-8"))
    assert report["结论"] == "通过"
    metadata = json.loads((folder / f"{package.reference}.元数据.json").read_text("utf-8"))
    assert metadata["档号"] == package.reference
    manifest = json.loads(done.manifest.read_text("utf-8"))
    assert [e["档号"] for e in manifest["移交"]] == [package.reference]
    assert manifest["移交"][0]["标签清单SM3"] == package.tag_digest
    assert package.transferred_at is not None
    again = archival.transfer(province.session, tmp_path, target, scanner=None, fonds=FONDS)
    assert again.sent == [] and again.held == []

    # A package broken on disk is held back, with why.
    package.transferred_at = None
    opened(tmp_path / package.path / "data" / "form.json")
    (tmp_path / package.path / "data" / "form.json").write_text("{}", "utf-8")
    held = archival.transfer(province.session, tmp_path, target, scanner=None, fonds=FONDS)
    assert held.sent == [] and held.held[0][0] == package.reference
    assert "SM3" in held.held[0][1] or "sha256" in held.held[0][1]
