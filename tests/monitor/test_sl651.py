"""SL 651-2014 codec (issue 15): HEX/BCD frames from yu-xiaoyao/sl651-2014-server@aeaae2e
(netty-client/…/Sl651ClientApplication.java, its sample frame per function code), element
definitions from the standard's 附录C, CRC from the CRC-16/MODBUS check value.

The ASCII test frame comes from another implementation: a C# hydrological data centre's parser
whose comment carries `000011223344123430004D0787181218192911ST 0011223344 H TT 1812181925
PJ 0.0 PT 3.5 Z 1.234 VT 12.29 4F49` with its control characters (SOH, STX, ETX) lost in the
comment (found by the code index, file id 30412909870; the index did not name its repository).
Put back where 表16 places them, its length (004D = 77) and its CRC (4F49, over SOH … ETX)
both check, which confirms the layout as this codec reads it."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qilu.monitor import sl651
from qilu.monitor.frames import BEIJING, FrameError

ASCII_TEST = (
    b"\x01000011223344123430004D\x020787181218192911ST 0011223344 H TT 1812181925 PJ 0.0 PT 3.5 "
    b"Z 1.234 VT 12.29 \x034F49"
)
KEEP_ALIVE = "7E7E01001234567812342F0008020003591011155111036BCA"
TIMED = (
    "7E7E05001122334403E832002B020034170718110016F1F1001122334448F0F01707181100201900004026190000"
    "403923000104903812109903A421"
)
HOURLY = (
    "7E7E05001122334403E8340068020033170718110014F1F1001122334448F0F01707181005F4600500000014FFFF"
    "FFFFFF0000F0F017071811002619000040F0F01707181005F5C0000C000C001C00310031FFFFFFFFFFFFFFFFFFFF"
    "00310031F0F0170718110039230001049020190000403812109903F502"
)


def test_the_crc_is_crc16_modbus_high_byte_first() -> None:
    assert sl651.crc(b"123456789") == 0x4B37  # the catalogue's check value of CRC-16/MODBUS
    frame = bytes.fromhex(TIMED)
    assert frame[-2:] == sl651.crc(frame[:-2]).to_bytes(2, "big")


def test_a_timed_report_decodes_its_elements() -> None:
    """The sample's elements are the standard's own example (§6.4: `PJ 4.0 PT 4.0 Z 10.490
    VT 10.99`): rainfall, accumulated rainfall, river level, supply voltage."""
    frame = sl651.decode(bytes.fromhex(TIMED))
    assert (frame.message, frame.source) == ("0x32", "0011223344")
    assert frame.time == datetime(2017, 7, 18, 11, 0, tzinfo=BEIJING)
    assert frame.details["station_class"] == "H" and frame.details["serial"] == 0x34
    assert [(r.metric, r.value) for r in frame.readings] == [
        ("PJ", 4.0),
        ("PT", 4.0),
        ("Z", 10.49),
        ("VT", 10.99),
    ]


def test_an_hourly_report_keeps_each_five_minute_value_with_its_time() -> None:
    frame = sl651.decode(bytes.fromhex(HOURLY))
    rain = [(r.time or frame.time, r.value) for r in frame.readings if r.metric == "DRP"]
    assert len(rain) == 7  # twelve steps, five of them FF (invalid)
    assert rain[0] == (datetime(2017, 7, 18, 10, 5, tzinfo=BEIJING), 0.5)
    assert rain[4] == (datetime(2017, 7, 18, 10, 25, tzinfo=BEIJING), 2.0)
    levels = [r.value for r in frame.readings if r.metric == "DRZ1"]
    assert levels == [0.12, 0.12, 0.28, 0.49, 0.49, 0.49, 0.49]
    latest = {r.metric: (r.value, r.time) for r in frame.readings if r.metric in ("Z", "PT")}
    assert latest["Z"] == (10.49, datetime(2017, 7, 18, 11, 0, tzinfo=BEIJING))


def test_a_keep_alive_has_no_readings_and_no_reply() -> None:
    frame = sl651.decode(bytes.fromhex(KEEP_ALIVE))
    assert frame.message == "0x2F" and frame.readings == ()
    assert sl651.reply(frame, datetime(2026, 12, 7, tzinfo=BEIJING)) is None


def test_the_centre_confirms_a_report_with_the_addresses_swapped() -> None:
    frame = sl651.decode(bytes.fromhex(TIMED))
    answer = sl651.reply(frame, datetime(2017, 7, 18, 11, 0, 20, tzinfo=BEIJING))
    assert answer is not None
    assert answer[:2] == b"\x7e\x7e" and answer[2:7].hex() == "0011223344" and answer[7] == 5
    assert answer[10] == 0x32 and answer[11] >> 4 == 8  # downlink
    assert answer[14:16] == (0x34).to_bytes(2, "big") and answer[-3] == sl651.EOT
    assert answer[-2:] == sl651.crc(answer[:-2]).to_bytes(2, "big")


@pytest.mark.parametrize(
    ("hex_text", "code"),
    [
        (TIMED[:-4] + "A420", "sl651.crc"),
        ("01" + TIMED[2:], "sl651.head"),
        (TIMED[:-10] + "03", "sl651.crc"),  # cut short
    ],
)
def test_bad_frames_are_refused_with_a_stable_code(hex_text: str, code: str) -> None:
    with pytest.raises(FrameError) as refused:
        sl651.decode(bytes.fromhex(hex_text))
    assert refused.value.code == code


def test_the_splitter_reads_frames_by_their_declared_length() -> None:
    timed, hourly = bytes.fromhex(TIMED), bytes.fromhex(HOURLY)
    splitter, got = sl651.Splitter(), []
    stream = b"\x00\x00" + timed + hourly + b"\xff" + timed
    for index in range(0, len(stream), 7):
        got += splitter.feed(stream[index : index + 7])
    assert [g for g in got if isinstance(g, bytes)] == [timed, hourly, timed]
    assert {g.code for g in got if isinstance(g, FrameError)} == {"sl651.garbage"}


@given(
    level=st.decimals(min_value=-99, max_value=9999, places=3).map(float),
    volts=st.decimals(min_value=0, max_value=99, places=2).map(float),
)
def test_what_the_encoder_writes_the_decoder_reads(level: float, volts: float) -> None:
    moment = datetime(2026, 7, 20, 8, 0, tzinfo=BEIJING)
    frame = sl651.encode(
        centre=1, station="0037010201", password="1234", function=0x33, serial=9,
        sent=moment, station_class="H", observed=moment,
        values={0x39: (level, 4, 3), 0x38: (volts, 2, 2)},
    )  # fmt: skip
    readings = {r.metric: r.value for r in sl651.decode(frame).readings}
    assert readings == {"Z": pytest.approx(level), "VT": pytest.approx(volts)}


def test_an_ascii_test_report_from_another_implementation_decodes() -> None:
    frame = sl651.decode(ASCII_TEST)
    assert (frame.message, frame.source) == ("0x30", "0011223344")
    assert frame.details["encoding"] == "ascii" and frame.details["serial"] == 0x0787
    assert frame.details["station_class"] == "H"
    assert frame.time == datetime(2018, 12, 18, 19, 25, tzinfo=BEIJING)
    assert [(r.metric, r.value) for r in frame.readings] == [
        ("PJ", 0.0),
        ("PT", 3.5),
        ("Z", 1.234),
        ("VT", 12.29),
    ]


def test_the_centre_confirms_an_ascii_report_in_ascii() -> None:
    """表17: SOH, station before centre, direction 8, the report's serial and the centre's
    time, EOT, the CRC as four hex digits."""
    now = datetime(2018, 12, 18, 19, 30, 5, tzinfo=BEIJING)
    answer = sl651.reply(sl651.decode(ASCII_TEST), now)
    assert answer is not None
    assert answer[:-4] == b"\x010011223344001234308010\x02" + b"0787181218193005\x04"
    assert answer[-4:] == f"{sl651.crc(answer[:-4]):04X}".encode()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (ASCII_TEST[:-4] + b"4F48", "sl651.crc"),
        (ASCII_TEST.replace(b"Z 1.234", b"Z 1.2x4"), "sl651.crc"),  # a changed byte
        (ASCII_TEST[:-6] + b"\x03" + b"0000", "sl651.crc"),  # cut short
        (b"\x01ZZ" + ASCII_TEST[3:], "sl651.head"),
    ],
)
def test_bad_ascii_frames_are_refused_with_a_stable_code(frame: bytes, code: str) -> None:
    with pytest.raises(FrameError) as refused:
        sl651.decode(frame)
    assert refused.value.code == code


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"Z": "1.2.3"}, "sl651.element"),
        ({"Z": "1e3"}, "sl651.element"),
        ({"Z": "--1"}, "sl651.element"),
        ({"DRP": "GG"}, "sl651.element"),
    ],
)
def test_bad_ascii_elements_are_refused(values: dict[str, str], code: str) -> None:
    moment = datetime(2026, 7, 20, 8, 0, tzinfo=BEIJING)
    frame = sl651.encode_ascii(
        centre=1, station="0037010201", password="1234", function=0x32, serial=3,
        sent=moment, station_class="H", observed=moment, values=values,
    )  # fmt: skip
    with pytest.raises(FrameError) as refused:
        sl651.decode(frame)
    assert refused.value.code == code


def test_an_ascii_hourly_series_and_a_missing_value() -> None:
    moment = datetime(2026, 7, 20, 8, 0, tzinfo=BEIJING)
    raw = sl651.encode_ascii(
        centre=1, station="0037010201", password="1234", function=0x34, serial=4,
        sent=moment, station_class="H", observed=moment,
        values={"DRP": "0500000014FFFFFFFFFF0000", "PT": "M", "VT": "12.5"},
    )  # fmt: skip
    frame = sl651.decode(raw)
    rain = [(r.time or frame.time, r.value) for r in frame.readings if r.metric == "DRP"]
    assert len(rain) == 7 and rain[0] == (moment, 0.5)
    assert {r.metric for r in frame.readings} == {"DRP", "VT"}  # PT: M, no value


def test_the_splitter_takes_both_encodings_from_one_stream() -> None:
    timed = bytes.fromhex(TIMED)
    splitter, got = sl651.Splitter(), []
    stream = b"\x00" + ASCII_TEST + timed + b"\x01garbage" + ASCII_TEST
    for index in range(0, len(stream), 5):
        got += splitter.feed(stream[index : index + 5])
    assert [g for g in got if isinstance(g, bytes)] == [ASCII_TEST, timed, ASCII_TEST]
    assert {g.code for g in got if isinstance(g, FrameError)} == {"sl651.garbage"}


@given(
    level=st.decimals(min_value=-99, max_value=9999, places=3),
    volts=st.decimals(min_value=0, max_value=99, places=2),
)
def test_what_the_ascii_encoder_writes_the_decoder_reads(level: object, volts: object) -> None:
    moment = datetime(2026, 7, 20, 8, 0, tzinfo=BEIJING)
    frame = sl651.encode_ascii(
        centre=1, station="0037010201", password="1234", function=0x33, serial=9,
        sent=moment, station_class="H", observed=moment,
        values={"Z": str(level), "VT": str(volts)},
    )  # fmt: skip
    readings = {r.metric: r.value for r in sl651.decode(frame).readings}
    assert readings == {"Z": float(str(level)), "VT": float(str(volts))}
