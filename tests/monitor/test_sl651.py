"""SL 651-2014 codec (issue 15): HEX/BCD frames from yu-xiaoyao/sl651-2014-server@aeaae2e
(netty-client/…/Sl651ClientApplication.java, its sample frame per function code), element
definitions from the standard's 附录C, CRC from the CRC-16/MODBUS check value."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qilu.monitor import sl651
from qilu.monitor.frames import BEIJING, FrameError

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
