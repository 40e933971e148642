"""Loading rows: validation, upsert by key, history, sealing, reports; failure changes nothing."""

from __future__ import annotations

import io
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from qilu.audit.models import AuditEvent
from qilu.codes.uscc import make_uscc
from qilu.data import loading
from qilu.data.catalog import get_resource, install_standard_catalog
from qilu.data.files import read_rows
from qilu.data.loading import Layout, error_report, find_record, load_rows
from qilu.data.models import DataRecord, RecordChange
from qilu.errors import QiluError
from qilu.identity.roles import OPERATOR
from qilu.pii import Vault

WANG, LI, ZHAO = "11010519491231002X", "370102199003073516", "370102198001010015"
HEADER = "公民身份号码,姓名,性别,出生日期,户籍地行政区划,联系电话\n"


@pytest.fixture
def catalog(session: Session, departments: None) -> None:
    install_standard_catalog(session)


def csv_rows(session: Session, text: str, name: str = "people.csv") -> Any:
    fields = Layout.of(session, get_resource(session, "JC-RK-001")).fields
    return read_rows(io.BytesIO(text.encode("utf-8")), name, fields)


def load(session: Session, vault: Vault, text: str, name: str = "people.csv") -> Any:
    rows = csv_rows(session, text, name)
    return load_rows(session, vault, "JC-RK-001", rows, source=name, actor=OPERATOR)


def test_valid_rows_go_in_and_bad_ones_are_reported_by_row_and_field(
    session: Session, vault: Vault, catalog: None
) -> None:
    text = HEADER + (
        f"{WANG},王芳,2,1949-12-31,110105,13800138000\n"
        "370102199003073510,李强,1,1990-03-07,370102,\n"  # wrong check digit
        f"{ZHAO},,1,1980/01/01,370199,\n"  # no name, no such division
        f"{LI},李强,3,19900307,370102,\n"  # sex not in the enumeration
    )
    result = load(session, vault, text)
    assert (result.total, result.inserted, result.rejected) == (4, 1, 3)
    by_row = {(p["row"], p["field"]) for p in result.problems}
    assert by_row == {(3, "id_number"), (4, "name"), (4, "household_division"), (5, "sex")}
    reasons = " ".join(p["reason"] for p in result.problems)
    assert "校验码" in reasons and "必填" in reasons and "可选值" in reasons
    record = find_record(session, vault, "JC-RK-001", [WANG])
    assert record is not None and record["name"] == "王芳" and record["birth_date"] == "1949-12-31"
    stored = session.scalars(select(DataRecord)).one()
    assert WANG not in stored.record_key and "王芳" not in str(stored.content)
    assert stored.content == {"household_division": "110105"} and stored.sealed
    report = error_report(result)
    assert report.startswith("\ufeff行号,字段,原因") and "\n3,id_number," in report
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "data.loaded")).one()
    assert event.details["inserted"] == 1 and event.details["rejected"] == 3


def test_loading_again_updates_by_key_and_keeps_history(
    session: Session, vault: Vault, catalog: None
) -> None:
    first = HEADER + f"{WANG},王芳,2,1949-12-31,110105,\n{LI},李强,1,1990-03-07,370102,\n"
    load(session, vault, first)
    second = HEADER + f"{WANG},王芳,2,1949-12-31,110105,\n{LI},李强,1,1990-03-07,370103,\n"
    result = load(session, vault, second)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 1)
    change = session.scalars(select(RecordChange)).one()
    assert change.before_content == {"household_division": "370102"}
    assert change.after_content == {"household_division": "370103"}
    assert change.load_id == result.id and change.version == 2
    assert find_record(session, vault, "JC-RK-001", [LI])["household_division"] == "370103"  # type: ignore[index]


def test_a_key_twice_in_one_file_is_refused_the_second_time(
    session: Session, vault: Vault, catalog: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "BATCH", 2)  # the repeat lands in a later batch too
    text = HEADER + "".join(
        [
            f"{WANG},王芳,2,1949-12-31,110105,\n",
            f"{WANG},王芳,2,1949-12-31,110106,\n",  # same batch
            f"{LI},李强,1,1990-03-07,370102,\n",
            f"{ZHAO},赵六,1,1980-01-01,370102,\n",
            f"{WANG},王芳,2,1949-12-31,110107,\n",  # a later batch
        ]
    )
    result = load(session, vault, text)
    assert (result.inserted, result.rejected) == (3, 2)
    assert [p["row"] for p in result.problems] == [3, 6]
    assert all("重复" in p["reason"] for p in result.problems)
    assert find_record(session, vault, "JC-RK-001", [WANG])["household_division"] == "110105"  # type: ignore[index]


def test_a_failed_load_leaves_the_library_as_it_was(
    session: Session, vault: Vault, catalog: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "BATCH", 1)
    good = csv_rows(session, HEADER + f"{WANG},王芳,2,1949-12-31,110105,\n")

    def breaks() -> Any:
        yield from good
        raise OSError("disk unplugged")

    with pytest.raises(OSError), session.begin_nested():
        load_rows(session, vault, "JC-RK-001", breaks(), source="x.csv", actor=OPERATOR)
    assert session.scalar(select(func.count()).select_from(DataRecord)) == 0


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("公民身份号码,姓名,性别,出生日期,户籍地行政区划,血型\n", "data.unknown_column"),
        ("公民身份号码,姓名\n", "data.missing_column"),
        ("", "data.empty_file"),
    ],
)
def test_a_file_with_a_wrong_header_is_refused_whole(
    session: Session, catalog: None, text: str, code: str
) -> None:
    with pytest.raises(QiluError) as refused:
        csv_rows(session, text)
    assert refused.value.code == code and refused.value.field == "file"


def test_other_formats_and_encodings(session: Session, vault: Vault, catalog: None) -> None:
    from openpyxl import Workbook

    fields = Layout.of(session, get_resource(session, "JC-RK-001")).fields
    gbk = (HEADER + f"{WANG},王芳,2,1949-12-31,110105,\n").encode("gb18030")
    assert [n for n, _ in read_rows(io.BytesIO(gbk), "a.csv", fields)] == [2]
    jsonl = (
        f'{{"id_number": "{WANG}", "name": "王芳", "sex": "2", "birth_date": "1949-12-31",'
        ' "household_division": "110105"}\nnot json\n{"血型": "A"}\n'
    ).encode()
    rows = list(read_rows(io.BytesIO(jsonl), "a.jsonl", fields))
    assert rows[0][1]["name"] == "王芳" and "__invalid__" in rows[1][1] and rows[2][0] == 3
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["公民身份号码", "姓名", "性别", "出生日期", "户籍地行政区划"])
    sheet.append([WANG, "王芳", "2", "1949-12-31", "110105"])
    buffer = io.BytesIO()
    book.save(buffer)
    buffer.seek(0)
    result = load_rows(
        session, vault, "JC-RK-001", read_rows(buffer, "a.xlsx", fields), source="a", actor=OPERATOR
    )
    assert result.inserted == 1
    with pytest.raises(QiluError) as refused:
        read_rows(io.BytesIO(b"x"), "people.pdf", fields)
    assert refused.value.code == "data.file_format"


def test_a_real_but_nonconforming_uscc_is_kept_with_a_warning(
    session: Session, vault: Vault, catalog: None
) -> None:
    fields = Layout.of(session, get_resource(session, "JC-FR-001")).fields
    text = (
        "统一社会信用代码,名称,行业门类,住所行政区划,登记状态\n"
        "913701021234567805,济南老字号商店,F,370102,存续\n"
    )
    rows = read_rows(io.BytesIO(text.encode()), "e.csv", fields)
    result = load_rows(session, vault, "JC-FR-001", rows, source="e.csv", actor=OPERATOR)
    assert result.inserted == 1 and result.rejected == 0
    assert result.warnings and "GB 11714" in result.warnings[0]["reason"]
    record = find_record(session, vault, "JC-FR-001", ["913701021234567805"])
    assert record is not None and record["name"] == "济南老字号商店"


def test_worker_processes_load_exactly_what_one_process_does(
    session: Session, vault: Vault, catalog: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "BATCH", 2)
    text = HEADER + "".join(
        [
            f"{WANG},王芳,2,1949-12-31,110105,\n",
            "370102199003073510,李强,1,1990-03-07,370102,\n",  # wrong check digit
            f"{LI},李强,1,1990-03-07,370102,\n",
            f"{WANG},王芳,2,1949-12-31,110107,\n",  # repeated key, a later chunk
            f"{ZHAO},赵六,1,1980-01-01,370102,\n",
        ]
    )
    result = load_rows(
        session, vault, "JC-RK-001", csv_rows(session, text), source="p", actor=OPERATOR, workers=2
    )
    assert (result.total, result.inserted, result.rejected) == (5, 3, 2)
    assert [(p["row"], p["field"]) for p in result.problems] == [(3, "id_number"), (5, "id_number")]
    assert find_record(session, vault, "JC-RK-001", [ZHAO])["name"] == "赵六"  # type: ignore[index]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("registered_capital", "-5", "不能小于 0"),
        ("registered_capital", "9" * 401, "超出范围"),
        ("registered_capital", "1.123456789", "超出范围"),
        ("registered_capital", "nan", "不是数字"),
    ],
)
def test_numbers_outside_their_range_are_refused(
    session: Session, vault: Vault, catalog: None, field: str, value: str, reason: str
) -> None:
    row = {"uscc": make_uscc("9", "1", "370102", "MA000001"), "name": "济南某公司",
           "industry": "F", "division": "370102", "status": "存续", field: value}  # fmt: skip
    result = load_rows(session, vault, "JC-FR-001", [(1, row)], source="t", actor=OPERATOR)
    assert result.rejected == 1 and reason in result.problems[0]["reason"]


def test_a_credit_list_code_must_pass_its_check(
    session: Session, vault: Vault, catalog: None
) -> None:
    """Found: a USCC with a wrong check character was loaded into the blacklist without a word."""
    good = make_uscc("9", "1", "370102", "MA000001")
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    rows = [
        (n, {"subject_code": code, "subject_name": "某公司", "list_type": "黑名单",
             "reason": "失信", "listed_on": "2026-01-01"})
        for n, code in enumerate([good, wrong, "11010519491231002X"], start=1)
    ]  # fmt: skip
    result = load_rows(session, vault, "ZT-XY-001", rows, source="t", actor=OPERATOR)
    assert result.inserted == 2 and result.rejected == 1
    assert result.problems[0]["row"] == 2 and "统一社会信用代码" in result.problems[0]["reason"]


def test_a_file_in_another_encoding_is_named_not_a_server_error(
    session: Session, vault: Vault, catalog: None
) -> None:
    """Found: a CSV neither UTF-8 nor GB18030 answered a server error."""
    fields = Layout.of(session, get_resource(session, "JC-RK-001")).fields
    header = "公民身份号码,姓名,性别,出生日期,户籍地行政区划\n".encode()
    for body in (b"\xff\xfe\x00\x80" * 10, header + b"\x80\xff\xfe\x81\x30" * 20_000):
        with pytest.raises(QiluError) as refused:
            rows = read_rows(io.BytesIO(body), "x.csv", fields)
            load_rows(session, vault, "JC-RK-001", rows, source="x.csv", actor=OPERATOR)
        assert refused.value.code == "data.encoding" and refused.value.field == "file"


def test_an_xlsx_bomb_is_refused_before_it_is_read(session: Session, catalog: None) -> None:
    """Found: 0.9 MB of XLSX unpacked to 406 MB of shared strings before any check."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/sharedStrings.xml", b"<si><t>a</t></si>" * 2_000_000)  # 34 MB
    buffer.seek(0)
    fields = Layout.of(session, get_resource(session, "JC-RK-001")).fields
    with pytest.raises(QiluError) as refused:
        read_rows(buffer, "bomb.xlsx", fields)
    assert refused.value.code == "data.xlsx_too_large"
