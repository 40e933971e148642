"""Rows from the files stewards upload: CSV (UTF-8 or GB18030), JSON Lines and XLSX, read as a
stream so a large file never sits in memory. Columns may be named by field name or by label."""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import PurePath
from typing import IO, Any

from qilu.data.catalog import FieldSpec
from qilu.errors import QiluError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "xlsx"}


def file_format(name: str) -> str:
    suffix = PurePath(name).suffix.lower()
    if suffix not in FORMATS:
        raise QiluError(
            "data.file_format",
            f"不支持的文件类型 {suffix or '（无扩展名）'}：请上传 CSV、JSON Lines 或 XLSX",
            field="file",
        )
    return FORMATS[suffix]


Row = tuple[int, dict[str, Any]]  # the row's number as the steward sees it, and its values


def read_rows(stream: IO[bytes], name: str, fields: list[FieldSpec]) -> Iterator[Row]:
    """Each data row numbered as in the file, as {field name: value}; the header is checked
    before the first row is read. A line that cannot be read carries `__invalid__`."""
    kind = file_format(name)
    if kind == "jsonl":
        return _jsonl(stream, fields)
    if kind == "xlsx":
        return _xlsx(stream, fields)
    return _csv(stream, fields)


def _columns(header: list[Any], fields: list[FieldSpec]) -> list[str | None]:
    """Map header cells to field names (by name or by label); refuse unknown or missing ones."""
    by_label = {f.label: f.name for f in fields} | {f.name: f.name for f in fields}
    cells = [str(cell).strip() if cell is not None else "" for cell in header]
    unknown = [cell for cell in cells if cell and cell not in by_label]
    if unknown:
        raise QiluError(
            "data.unknown_column",
            f"文件中有资源未定义的列：{'、'.join(unknown)}",
            field="file",
            columns=unknown,
        )
    names = [by_label.get(cell) for cell in cells]
    missing = [f.label for f in fields if f.required and f.name not in names]
    if missing:
        raise QiluError(
            "data.missing_column",
            f"文件缺少必填列：{'、'.join(missing)}",
            field="file",
            columns=missing,
        )
    return names


ENCODING_REFUSED = "文件既不是 UTF-8 也不是 GB18030 编码：请在表格软件中另存为“CSV UTF-8”后再上传"


def _text(stream: IO[bytes]) -> io.TextIOWrapper:
    """UTF-8 (with or without BOM), else GB18030, as Chinese spreadsheets often save; any
    other encoding is refused by name (also if it shows only further into the file)."""
    head = stream.read(64 * 1024)
    stream.seek(0)
    encoding = "gb18030"
    for candidate in ("utf-8-sig", "gb18030"):
        try:
            codecs.getincrementaldecoder(candidate)().decode(head, final=False)
        except UnicodeDecodeError:
            continue
        encoding = candidate
        break
    else:
        raise QiluError("data.encoding", ENCODING_REFUSED, field="file")
    return io.TextIOWrapper(stream, encoding=encoding, newline="")


def _readable(lines: Iterator[Row]) -> Iterator[Row]:
    """Rows, with a bad byte or an oversized field further on said as a file problem."""
    try:
        yield from lines
    except UnicodeDecodeError:
        raise QiluError("data.encoding", ENCODING_REFUSED, field="file") from None
    except csv.Error as error:
        raise QiluError("data.csv", f"CSV 格式有误：{error}", field="file") from None


def _csv(stream: IO[bytes], fields: list[FieldSpec]) -> Iterator[Row]:
    text = _text(stream)
    reader = csv.reader(text)
    try:
        header = next(reader, None)
    except (UnicodeDecodeError, csv.Error):
        text.detach()
        raise QiluError("data.encoding", ENCODING_REFUSED, field="file") from None
    if header is None:
        text.detach()
        raise QiluError("data.empty_file", "文件是空的", field="file")
    try:
        names = _columns(header, fields)
    except QiluError:
        text.detach()
        raise

    def rows() -> Iterator[Row]:
        try:
            for cells in reader:
                if not any(cell.strip() for cell in cells):
                    continue
                values = {n: cells[i] if i < len(cells) else "" for i, n in enumerate(names) if n}
                yield reader.line_num, values
        finally:
            text.detach()  # the caller's file stays open: it is theirs to close

    return _readable(rows())


def _jsonl(stream: IO[bytes], fields: list[FieldSpec]) -> Iterator[Row]:
    known = {f.name for f in fields} | {f.label for f in fields}
    to_name = {f.label: f.name for f in fields}

    def rows() -> Iterator[Row]:
        text = _text(stream)
        try:
            yield from _json_lines(text, known, to_name)
        finally:
            text.detach()  # the caller's file stays open: it is theirs to close

    return _readable(rows())


def _json_lines(text: IO[str], known: set[str], to_name: dict[str, str]) -> Iterator[Row]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, {"__invalid__": f"不是 JSON：{error.msg}"}
            continue
        if not isinstance(entry, dict):
            yield number, {"__invalid__": "不是 JSON 对象"}
            continue
        unknown = [key for key in entry if key not in known]
        if unknown:
            yield number, {"__invalid__": f"有资源未定义的字段：{'、'.join(unknown)}"}
            continue
        yield number, {to_name.get(str(k), str(k)): value for k, value in entry.items()}


# An XLSX is a zip: what it would unpack to is checked before openpyxl reads it (its shared
# strings are read whole, so a 1 MB file could otherwise fill hundreds of MB).
LARGEST_XLSX_PART = 256 * 1024 * 1024
LARGEST_XLSX_RATIO = 100  # …beyond this much larger than its compressed size
SMALL_XLSX_PART = 32 * 1024 * 1024  # a part this small is not worth refusing for its ratio


def _check_xlsx(stream: IO[bytes]) -> None:
    try:
        with zipfile.ZipFile(stream) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        raise QiluError(
            "data.xlsx", "无法读取 XLSX 文件：文件已损坏或不是 XLSX", field="file"
        ) from None
    finally:
        stream.seek(0)
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        suspicious = part.file_size > SMALL_XLSX_PART and ratio > LARGEST_XLSX_RATIO
        if part.file_size > LARGEST_XLSX_PART or suspicious:
            raise QiluError(
                "data.xlsx_too_large",
                f"XLSX 文件解压后过大（{part.filename}）：请拆分文件或改用 CSV",
                field="file",
            )


def _xlsx(stream: IO[bytes], fields: list[FieldSpec]) -> Iterator[Row]:
    from openpyxl import load_workbook

    _check_xlsx(stream)
    try:
        book = load_workbook(stream, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a damaged file
        raise QiluError("data.xlsx", f"无法读取 XLSX 文件：{error}", field="file") from None
    sheet = book.worksheets[0]
    cells = sheet.iter_rows(values_only=True)
    header = next(cells, None)
    if header is None:
        raise QiluError("data.empty_file", "文件是空的", field="file")
    names = _columns(list(header), fields)

    def rows() -> Iterator[Row]:
        for number, values in enumerate(cells, start=2):
            if all(v is None for v in values):
                continue
            yield number, {n: values[i] for i, n in enumerate(names) if n and i < len(values)}
        book.close()

    return rows()
