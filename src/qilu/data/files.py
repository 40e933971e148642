"""Rows from the files stewards upload: CSV (UTF-8 or GB18030), JSON Lines and XLSX, read as a
stream so a large file never sits in memory. Columns may be named by field name or by label."""

from __future__ import annotations

import codecs
import csv
import io
import json
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


def _text(stream: IO[bytes]) -> io.TextIOWrapper:
    """UTF-8 (with or without BOM), else GB18030, as Chinese spreadsheets often save."""
    head = stream.read(64 * 1024)
    stream.seek(0)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        encoding = "utf-8-sig"
    except UnicodeDecodeError:
        encoding = "gb18030"
    return io.TextIOWrapper(stream, encoding=encoding, newline="")


def _csv(stream: IO[bytes], fields: list[FieldSpec]) -> Iterator[Row]:
    text = _text(stream)
    reader = csv.reader(text)
    header = next(reader, None)
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

    return rows()


def _jsonl(stream: IO[bytes], fields: list[FieldSpec]) -> Iterator[Row]:
    known = {f.name for f in fields} | {f.label for f in fields}
    to_name = {f.label: f.name for f in fields}

    def rows() -> Iterator[Row]:
        text = _text(stream)
        try:
            yield from _json_lines(text, known, to_name)
        finally:
            text.detach()  # the caller's file stays open: it is theirs to close

    return rows()


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


def _xlsx(stream: IO[bytes], fields: list[FieldSpec]) -> Iterator[Row]:
    from openpyxl import load_workbook

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
