"""Archival handling of the 单套制 packages (`services.archive` writes them): their archival
metadata, the 四性检测 before they are kept and before they leave, and the transfer to an
archive system.

Metadata (DA/T 46-2009 文书类电子文件元数据方案, the elements an archive asks at 移交):
全宗号 (`QILU_ARCHIVE_FONDS`), 档案门类 (政务服务, code ZW), 年度, 保管期限, 密级, 归档日期,
件号 and the 档号 built from them as DA/T 13-2022 lays it out for records kept by item:
``全宗号-门类代码·年度-保管期限代码-问题代码-件号``, e.g. ``Q001-ZW·2026-D30-ZWFW-0007``.

保管期限 by Qilu's rule, which a province replaces with its own 归档范围和保管期限表: 永久 (Y)
for 行政确认 by 公安 and 民政 (户籍, 婚姻), 30 年 (D30) for 行政许可, 10 年 (D10) for the rest;
an application of several items keeps the longest. 密级 is 内部: the records name people, and
nothing in a service application is a state secret.

四性检测 (DA/T 70-2018 文书类电子档案检测一般要求), each item passed, failed or noted:
- 真实性: both manifests (sha256, SM3) hold; the tag manifest is the one recorded at
  archiving; the 档号 inside is the one on record; every licence OFD's SM2 signature verifies
  under its issuer's key; every document's seal is the one its department issued;
- 完整性: the package's parts are all there, every material it lists is in it, the count of
  files is the one recorded, the archival metadata is complete;
- 可用性: every file is of a kind an archive keeps (JSON, PDF, OFD, JPEG, PNG) and opens as
  that kind;
- 安全性: the package is read-only on disk, holds no executable or link, and a virus scan
  (`QILU_ARCHIVE_SCANNER`) found nothing; without a scanner the item is noted, not passed.

Transfer (`qilu archive transfer --to DIR`) writes, for each package that passes:
``DIR/<全宗号>/<年度>/<保管期限>/<档号>/`` (the BagIt bag as archived), ``<档号>.元数据.json``
and ``<档号>.四性检测.json`` beside it, and ``DIR/移交清单.json`` listing every package of the
batch with its application number, file count, SM3 tag digest and result, and those held back
with the reasons.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import stat
import subprocess
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import bagit
from sqlalchemy import select
from sqlalchemy.orm import Session

from qilu import ofd, seals
from qilu.db import next_serial
from qilu.digests import sm3
from qilu.services import documents
from qilu.services.models import Application, Archive, ArchiveSerial, DepartmentKey, Licence
from qilu.workdays import beijing_today

CATEGORY, CATEGORY_CODE, SERIES_CODE = "政务服务", "ZW", "ZWFW"
CLASSIFICATION = "内部"
RETENTION_NAMES = {"Y": "永久", "D30": "30年", "D10": "10年"}
RETENTION_ORDER = ("D10", "D30", "Y")
PARTS = (
    "metadata.json",
    "form.json",
    "decisions.json",
    "licences.json",
    "documents.json",
    "materials.json",
    "audit.json",
)
KEPT_TYPES = {".json", ".pdf", ".ofd", ".jpg", ".jpeg", ".png"}
EXECUTABLE = {".exe", ".dll", ".bat", ".cmd", ".sh", ".js", ".vbs", ".ps1", ".jar", ".so"}
PASS, FAIL, NOTE = "通过", "不通过", "提示"


def retention_of(application: Application) -> str:
    """保管期限 code by Qilu's rule (the module's docstring): the longest of its items'."""
    items = [case.item for case in application.cases]
    periods = []
    for item in items:
        kind = item.spec.get("type")
        if kind == "行政确认" and item.department_kind in ("public_security", "civil_affairs"):
            periods.append("Y")
        elif kind == "行政许可":
            periods.append("D30")
        else:
            periods.append("D10")
    return max(periods or ["D10"], key=RETENTION_ORDER.index)


def assign(session: Session, archive: Archive, *, fonds: str, on: date) -> dict[str, Any]:
    """Give a package its 档号 (once) and return its archival metadata."""
    application = archive.application
    if archive.reference is None:
        retention = retention_of(application)
        series = f"{fonds}-{CATEGORY_CODE}·{on.year}-{retention}"
        serial = next_serial(session, ArchiveSerial.__table__, series)
        archive.reference = f"{series}-{SERIES_CODE}-{serial:04d}"
        archive.fonds, archive.retention, archive.classification = fonds, retention, CLASSIFICATION
    return metadata_of(archive, on)


def metadata_of(archive: Archive, archived_on: date | None = None) -> dict[str, Any]:
    reference = archive.reference or ""
    year = reference.split("·")[1][:4] if "·" in reference else ""
    day = archived_on or beijing_today(archive.created_at)
    return {
        "全宗号": archive.fonds,
        "档号": reference,
        "档案门类": CATEGORY,
        "年度": year,
        "保管期限": RETENTION_NAMES.get(archive.retention or "", ""),
        "密级": archive.classification,
        "归档日期": day.isoformat(),
        "件号": reference.rsplit("-", 1)[-1],
        "申请编号": archive.application.number,
    }


@dataclass
class Report:
    """A 四性检测 report: each item, and whether the package passed (no item failed)."""

    reference: str
    items: list[dict[str, str]] = field(default_factory=list)

    def add(self, quality: str, check: str, problems: list[str], *, note: str = "") -> None:
        if problems:
            self.items.append(
                {"性质": quality, "检测项": check, "结果": FAIL, "说明": "；".join(problems)}
            )
        else:
            self.items.append(
                {"性质": quality, "检测项": check, "结果": NOTE if note else PASS, "说明": note}
            )

    @property
    def passed(self) -> bool:
        return all(item["结果"] != FAIL for item in self.items)

    def as_dict(self, at: datetime) -> dict[str, Any]:
        return {
            "档号": self.reference,
            "检测时间": at.isoformat(),
            "依据": "DA/T 70-2018 文书类电子档案检测一般要求",
            "结论": PASS if self.passed else FAIL,
            "检测项": self.items,
        }


TAG_FILES = ("bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sm3.txt")


def tag_digest(root: Path) -> str:
    return sm3(*((root / name).read_bytes() for name in TAG_FILES)).hex()


def verify_fixity(root: Path, archive: Archive) -> list[str]:
    """Both manifests, and the tag manifest against the digest recorded at archiving."""
    problems = []
    try:
        bagit.Bag(str(root)).validate(processes=1)
    except bagit.BagError as error:
        details = getattr(error, "details", None) or []
        problems += [f"sha256 校验失败：{d}" for d in details] or [f"BagIt 校验失败：{error}"]
    problems += _check_sm3(root)
    if not problems and tag_digest(root) != archive.tag_digest:
        problems.append("标签清单与归档记录不符：归档包被重建或替换")
    return problems


def _check_sm3(root: Path) -> list[str]:
    manifest = root / "manifest-sm3.txt"
    if not manifest.exists():
        return ["缺少 SM3 清单"]
    problems = []
    listed = set()
    for line in manifest.read_text("utf-8").splitlines():
        expected, _, name = line.partition(" ")
        name = name.strip()
        listed.add(name)
        path = root / name
        if not path.is_file():
            problems.append(f"SM3 清单中的文件缺失：{name}")
        elif hashlib.new("sm3", path.read_bytes()).hexdigest() != expected:
            problems.append(f"SM3 校验失败：{name}")
    present = {str(p.relative_to(root)) for p in (root / "data").rglob("*") if p.is_file()}
    problems += [f"清单外的文件：{name}" for name in sorted(present - listed)]
    return problems


def _load(root: Path, name: str) -> Any:
    return json.loads((root / "data" / name).read_text("utf-8"))


def _authentic(session: Session, root: Path, archive: Archive, report: Report) -> None:
    fixity = verify_fixity(root, archive)
    report.add("真实性", "固定性（sha256 与 SM3 清单、归档时的标签清单）", fixity)
    metadata = _load(root, "metadata.json").get("档案元数据") if not fixity else None
    if metadata is not None:
        inside = metadata.get("档号")
        wrong = (
            []
            if inside == archive.reference
            else [f"包内档号 {inside} 与档案记录 {archive.reference} 不符"]
        )
        report.add("真实性", "档号一致", wrong)
    problems = []
    for path in sorted((root / "data" / "licences").glob("*.ofd")):
        problems += _licence_signature(session, path)
    report.add("真实性", "电子证照国密签名", problems)
    problems = []
    for entry in _load(root, "documents.json") if not fixity else []:
        verdict = documents.verify(session, entry["文书编号"], entry["签名"])
        if (
            not verdict.valid
            or verdict.document is None
            or verdict.document.content != entry["内容"]
        ):
            problems.append(f"文书 {entry['文书编号']} 的印章或内容与签发记录不符")
    report.add("真实性", "文书电子印章", problems)


def _licence_signature(session: Session, path: Path) -> list[str]:
    data = path.read_bytes()
    opened = ofd.open_licence(data)
    if opened.document is None:
        return [f"{path.name} 不是电子证照 OFD"]
    licence = session.scalars(
        select(Licence).where(Licence.number == str(opened.document.get("number")))
    ).one_or_none()
    if licence is None:
        return [f"{path.name} 的证照不在签发记录中"]
    keys = session.scalars(
        select(DepartmentKey.public_key).where(
            DepartmentKey.department_id == licence.issuer_department_id,
            DepartmentKey.algorithm == seals.SM2,
        )
    ).all()
    if any(ofd.open_licence(data, key).problems == [] for key in keys):
        return []
    return [f"{path.name} 的国密签名未通过"]


def _complete(root: Path, archive: Archive, report: Report) -> None:
    data = root / "data"
    missing = [name for name in PARTS if not (data / name).is_file()]
    report.add("完整性", "组成部分齐全", [f"缺少 {name}" for name in missing])
    listed = []
    if (data / "materials.json").is_file():
        listed = [e["文件"] for e in _load(root, "materials.json") if e.get("文件")]
    absent = [
        f"材料文件缺失：{name}" for name in listed if not (data / "materials" / name).is_file()
    ]
    report.add("完整性", "材料文件齐全", absent)
    payload = [p for p in data.rglob("*") if p.is_file()]
    wrong = (
        []
        if len(payload) == archive.files
        else [f"文件数 {len(payload)}，归档时为 {archive.files}"]
    )
    report.add("完整性", "文件数与归档记录一致", wrong)
    metadata = (
        _load(root, "metadata.json").get("档案元数据") if "metadata.json" not in missing else None
    )
    if metadata is None:
        report.add(
            "完整性", "档案元数据", [], note="归档于档案元数据启用之前：元数据见移交时的元数据文件"
        )
    else:
        empty = [
            name
            for name in ("全宗号", "档号", "保管期限", "密级", "归档日期")
            if not metadata.get(name)
        ]
        report.add("完整性", "档案元数据", [f"缺少{name}" for name in empty])


def _opens(path: Path) -> str | None:
    """Why `path` does not open as its kind, or None."""
    data = path.read_bytes()
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            json.loads(data)
        elif suffix == ".pdf":
            if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-1024:]:
                return "不是完整的 PDF"
        elif suffix == ".ofd":
            ET.fromstring(zipfile.ZipFile(io.BytesIO(data)).read("OFD.xml"))
        elif suffix in (".jpg", ".jpeg"):
            if not data.startswith(b"\xff\xd8\xff"):
                return "不是 JPEG 图像"
        elif suffix == ".png":
            if not data.startswith(b"\x89PNG\r\n\x1a\n"):
                return "不是 PNG 图像"
        else:
            return f"不是归档保存格式（{suffix or '无扩展名'}）"
    except (ValueError, KeyError, zipfile.BadZipFile, ET.ParseError):
        return f"无法按 {suffix} 格式读取"
    return None


def _usable(root: Path, report: Report) -> None:
    problems = []
    for path in sorted((root / "data").rglob("*")):
        if path.is_file():
            reason = _opens(path)
            if reason:
                problems.append(f"{path.relative_to(root)}：{reason}")
    report.add("可用性", "格式可读（JSON、PDF、OFD、JPEG、PNG）", problems)


def _secure(root: Path, scanner: str | None, report: Report) -> None:
    writable, unsafe = [], []
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            unsafe.append(f"链接文件：{path.relative_to(root)}")
        elif mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            writable.append(str(path.relative_to(root)) or ".")
        if path.suffix.lower() in EXECUTABLE:
            unsafe.append(f"可执行内容：{path.relative_to(root)}")
    report.add("安全性", "只读保护", [f"可写：{name}" for name in writable[:5]])
    report.add("安全性", "无可执行内容或链接", unsafe)
    if not scanner:
        report.add("安全性", "病毒检测", [], note="未配置病毒扫描（QILU_ARCHIVE_SCANNER），未检测")
        return
    ran = subprocess.run(
        [*shlex.split(scanner), str(root)], capture_output=True, text=True, timeout=600
    )
    if ran.returncode == 0:
        report.add("安全性", "病毒检测", [], note="")
    elif ran.returncode == 1:
        report.add("安全性", "病毒检测", [f"发现病毒：{ran.stdout.strip()[:300]}"])
    else:
        report.add(
            "安全性", "病毒检测", [f"扫描未完成（{ran.returncode}）：{ran.stderr.strip()[:200]}"]
        )


def check(
    session: Session, data_dir: Path, archive: Archive, *, scanner: str | None, fonds: str
) -> Report:
    """The 四性检测 of one package, recorded on it."""
    now = datetime.now(UTC)
    if archive.reference is None:  # archived before metadata was kept
        assign(session, archive, fonds=fonds, on=beijing_today(archive.created_at))
    report = Report(archive.reference or "")
    root = data_dir / archive.path
    if not root.is_dir():
        report.add("完整性", "归档包存在", [f"{archive.path} 不存在"])
    else:
        _authentic(session, root, archive, report)
        _complete(root, archive, report)
        _usable(root, report)
        _secure(root, scanner, report)
    archive.check_passed = report.passed
    archive.check_report = report.as_dict(now)
    archive.checked_at = now
    return report


@dataclass(frozen=True)
class Transfer:
    sent: list[str]  # 档号
    held: list[tuple[str, str]]  # (档号 or application number, why)
    manifest: Path


def transfer(
    session: Session,
    data_dir: Path,
    target: Path,
    *,
    scanner: str | None,
    fonds: str,
    limit: int = 1000,
) -> Transfer:
    """Hand the packages not yet transferred to an archive system in the layout of the module's
    docstring; a package failing its 四性检测 is held back, with the reasons."""
    waiting = session.scalars(
        select(Archive).where(Archive.transferred_at.is_(None)).order_by(Archive.id).limit(limit)
    ).all()
    now = datetime.now(UTC)
    sent, held, listed = [], [], []
    for archive in waiting:
        report = check(session, data_dir, archive, scanner=scanner, fonds=fonds)
        reference = archive.reference or archive.application.number
        if not report.passed:
            reasons = "；".join(i["说明"] for i in report.items if i["结果"] == FAIL)
            held.append((reference, reasons))
            continue
        year = reference.split("·")[1][:4]
        folder = target / (archive.fonds or fonds) / year / (archive.retention or "D10")
        folder.mkdir(parents=True, exist_ok=True)
        destination = folder / reference
        if destination.exists():  # an earlier, unfinished transfer of it
            _writable(destination)
            shutil.rmtree(destination)
        shutil.copytree(data_dir / archive.path, destination)
        (folder / f"{reference}.元数据.json").write_text(
            json.dumps(metadata_of(archive), ensure_ascii=False, indent=2), "utf-8"
        )
        (folder / f"{reference}.四性检测.json").write_text(
            json.dumps(archive.check_report, ensure_ascii=False, indent=2), "utf-8"
        )
        archive.transferred_at = now
        sent.append(reference)
        listed.append(
            {
                "档号": reference,
                "申请编号": archive.application.number,
                "文件数": archive.files,
                "标签清单SM3": archive.tag_digest,
                "四性检测": PASS,
                "位置": str(destination.relative_to(target)),
            }
        )
    target.mkdir(parents=True, exist_ok=True)
    manifest = target / "移交清单.json"
    batch = {
        "移交时间": now.isoformat(),
        "移交单位": "山东省一体化政务服务平台（齐鲁）",
        "全宗号": fonds,
        "移交": listed,
        "未移交": [{"档号": r, "原因": why} for r, why in held],
    }
    manifest.write_text(json.dumps(batch, ensure_ascii=False, indent=2), "utf-8")
    return Transfer(sent, held, manifest)


def _writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        os.chmod(path, path.stat().st_mode | stat.S_IWUSR)
