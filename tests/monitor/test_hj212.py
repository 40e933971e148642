"""HJ 212-2017 codec (issue 15), on vectors whose source each test names: the standard's own
examples (Appendix A, 表C.14) and frames from public implementations' tests."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qilu.monitor import hj212
from qilu.monitor.frames import BEIJING, FrameError

# HJ 212-2017 Appendix A: "其中 1C80 为 CRC16 校验码" of this data segment.
STANDARD = (
    b"##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;Flag=5"
    b";CP=&&RtdInterval=30&&1C80\r\n"
)
# guocay/hj212-protocol@5a1ac2a protocol/src/test/java/…/ApplicationTest.java: an air station's
# real-time data, CRC in lower case.
GUOCAY = (
    b"##0317QN=20191012133710130;ST=22;CN=2011;PW=123456;MN=Y80110010000010;Flag=4;CP=&&"
    b"DataTime=20191012133710;a21005-Rtd=0.00,a21005-Flag=N;a21004-Rtd=0.00,a21004-Flag=N;"
    b"a21007-Rtd=0.033,a21007-Flag=N;a21006-Rtd=0.036,a21006-Flag=N;a21001-Rtd=25.40,"
    b"a21001-Flag=N;a21003-Rtd=101.94,a21003-Flag=N;a21002-Rtd=49.20,a21002-Flag=N&&cc01\r\n"
)
# A weather station's frame in a Java parser's main() (search index, file id 11533503262).
WEATHER = (
    b"##0275QN=20190814170100001;ST=22;CN=2011;PW=123456;MN=2019031801100018;Flag=5;CP=&&"
    b"DataTime=20190814170100;a01007-Rtd=1.7,a01007-Flag=N;a01008-Rtd=199.1,a01008-Flag=N;"
    b"a01001-Rtd=22.9,a01001-Flag=N;a01002-Rtd=85.8,a01002-Flag=N;a01006-Rtd=98.7,"
    b"a01006-Flag=N;R01-Rtd=0.0,R01-Flag=N&&9301"
)


def test_the_crc_is_the_standards_not_modbus() -> None:
    assert hj212.crc(STANDARD[6:-6]) == 0x1C80  # Appendix A's example
    assert hj212.crc(b"123456789") == 0x2F80  # CRC-16/MODBUS would give 4B37


def test_the_standards_example_decodes() -> None:
    frame = hj212.decode(STANDARD)
    assert (frame.message, frame.source) == ("1062", "010000A8900016F000169DC0")
    assert frame.details["version"] == "2017" and frame.details["flag"] == 5
    assert frame.details["cp"] == {"RtdInterval": "30"}


def test_real_frames_from_two_sources_decode_with_flags_and_time() -> None:
    air = hj212.decode(GUOCAY)
    assert air.message == "2011" and air.source == "Y80110010000010"
    assert air.time == datetime(2019, 10, 12, 13, 37, 10, tzinfo=BEIJING)
    assert [(r.metric, r.value, r.flag) for r in air.readings][-2:] == [
        ("a21003-Rtd", 101.94, "N"),
        ("a21002-Rtd", 49.2, "N"),
    ]
    weather = hj212.decode(WEATHER)  # no CR LF: a line of text
    assert weather.time == datetime(2019, 8, 14, 17, 1, tzinfo=BEIJING)
    assert {r.metric: r.value for r in weather.readings}["a01008-Rtd"] == 199.1


@pytest.mark.parametrize(
    ("packet", "code"),
    [
        # guocay@5a1ac2a ApplicationTest: hand-edited frames whose CRC does not match.
        (
            b"##0275QN=20190901181526940;ST=32;CN=2011;PW=123456;MN=Y80110010000010;Flag=4;CP=&&"
            b"DataTime=20190901181500;a21005-Rtd=1.760,a21005-Flag=N;a21026-Rtd=106.400,a21026-"
            b"Flag=N;O3-Rtd=63.400,O3-Flag=N;a21004-Rtd=63.200,a21004-Flag=N;a34002-Rtd=9,a34002-"
            b"Flag=N;a34004-Rtd=4,a34004-Flag=N&&1100\r\n",
            "hj212.crc",
        ),
        (STANDARD.replace(b"0101", b"0102"), "hj212.length"),
        (STANDARD.replace(b"1C80", b"1C8G"), "hj212.crc"),
        (STANDARD[1:], "hj212.head"),
        (hj212.pack("QN=1;ST=32;CN=2011;PW=1;Flag=4;CP=&&&&"), "hj212.field"),  # no MN
        (hj212.pack("ST=32;CN=2011;PW=1;MN=X;Flag=4;CP=&&a34004-Rtd=abc&&"), "hj212.value"),
        (hj212.pack("ST=32;CN=2011;PW=1;MN=X;Flag=4;CP=&&DataTime=2019&&"), "hj212.time"),
        (hj212.pack("ST=32;CN=2011;PW=1;MN=X;Flag=4;DataTime=1"), "hj212.cp"),
    ],
)
def test_bad_packets_are_refused_with_a_stable_code(packet: bytes, code: str) -> None:
    with pytest.raises(FrameError) as refused:
        hj212.decode(packet)
    assert refused.value.code == code and refused.value.reason


def test_a_2005_frame_is_marked_and_its_codes_mapped() -> None:
    """guocay@5a1ac2a ApplicationTest's HJ/T 212-2005 frame (old codes B01, 011, 060; no QN or
    Flag), packed again because its published CRC is wrong (4980; the standard's gives 3C00)."""
    segment = (
        "ST=32;CN=2011;PW=123456;MN=LD130133000015;CP=&&DataTime=20160824003817;B01-Rtd=36.91;"
        "011-Rtd=231.0,011-Flag=N;060-Rtd=1.803,060-Flag=N&&"
    )
    assert f"{hj212.crc(segment.encode()):04X}" == "3C00"
    frame = hj212.decode(hj212.pack(segment))
    assert frame.details["version"] == "2005"
    readings = {r.metric: (r.value, r.flag) for r in frame.readings}
    # Appendix B: B01 污水 → w00000, 011 化学需氧量 → w01018, 060 氨氮 → w21003.
    assert readings == {
        "w00000-Rtd": (36.91, None),
        "w01018-Rtd": (231.0, "N"),
        "w21003-Rtd": (1.803, "N"),
    }


def test_the_platform_acknowledges_what_asks_for_it() -> None:
    """表C.14: an upload with Flag=5 gets 9014 with the same QN; Flag=4 asks for nothing."""
    upload = hj212.encode(
        cn="2011",
        mn="010000A8900016F000169DC0",
        st="32",
        pw="123456",
        qn="20160801085857223",
        data_time=datetime(2016, 8, 1, 8, 58, 57, tzinfo=BEIJING),
        values={"w01018-Rtd": 2.2},
        flags={"w01018": "N"},
        ack=True,
    )
    frame = hj212.decode(upload)
    answer = hj212.reply(frame)
    assert answer is not None
    assert answer[6:-6] == (
        b"QN=20160801085857223;ST=91;CN=9014;PW=123456;MN=010000A8900016F000169DC0;Flag=4;CP=&&&&"
    )
    assert hj212.decode(answer).message == "9014"
    assert hj212.reply(hj212.decode(GUOCAY)) is None  # Flag=4
    notice = hj212.pack("QN=1;ST=32;CN=1013;PW=1;MN=X;Flag=5;CP=&&PolId=w01018&&")
    assert hj212.decode(hj212.reply(hj212.decode(notice)) or b"").message == "9013"


def test_the_splitter_survives_garbage_short_reads_and_floods() -> None:
    stream = b"noise" + STANDARD + GUOCAY + b"##abcd" + STANDARD
    whole = hj212.Splitter().feed(stream)
    assert [g for g in whole if isinstance(g, bytes)] == [STANDARD, GUOCAY, STANDARD]
    errors = [g.code for g in whole if isinstance(g, FrameError)]
    assert errors == ["hj212.garbage", "hj212.length", "hj212.garbage"]  # `abcd` after `##`
    splitter, got = hj212.Splitter(), []
    for index in range(len(stream)):  # one byte at a time, as a slow link delivers
        got += splitter.feed(stream[index : index + 1])
    assert [g for g in got if isinstance(g, bytes)] == [STANDARD, GUOCAY, STANDARD]
    flood = hj212.Splitter()
    for _ in range(1000):  # a megabyte without a packet: reported, and the buffer stays small
        flood.feed(b"x" * 1024)
    assert len(flood.buffer.data) <= flood.buffer.limit


@given(
    values=st.dictionaries(
        st.sampled_from(["a34004-Rtd", "a21026-Avg", "w01018-Cou", "a01001-Max"]),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda v: round(v, 3)),
        min_size=1,
    )
)
def test_what_the_encoder_writes_the_decoder_reads(values: dict[str, float]) -> None:
    packet = hj212.encode(
        cn="2051", mn="MN1", st="22", pw="1", qn=None, data_time=None, values=values
    )
    assert {r.metric: r.value for r in hj212.decode(packet).readings} == pytest.approx(values)
