"""JT/T 808 codec (issue 15), on frames asserted by two independent implementations:
SmallChi/JT808@c9552b0 (MIT, .NET, xUnit) and yezhihao/jt808-server@309beff (Apache-2.0, Java,
jtt808-protocol/src/test/resources/JT808.txt); each test names its frame's source."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qilu.monitor import jt808
from qilu.monitor.frames import BEIJING, FrameError

# SmallChi JT808_0x0200Test.Parallel_Test1_1: alarm 1, status 2, 12.222222 N 132.444444 E,
# altitude 40, speed 60 (6.0 km/h), 2018-07-15 10:10:10, mileage 100, fuel 55.
SMALLCHI_LOCATION = (
    "7E020000260112233445500000000000010000000200BA7F0E07E4F11C0028003C00001807151010100104"
    "0000006402020037AB7E"
)
# yezhihao JT808.txt, 0x0200 in the 2013 and the 2019 header; its position has latitude and
# longitude swapped (116.3, 40.0): the codec reports what was sent, ingestion flags it.
YEZHIHAO_2013 = (
    "7e0200007c0123456789017fff000004000000080006eeb6ad02633df701380003006320070719235901040000"
    "000b02020016030200210402002c051e3737370000000000000000000000000000000000000000000000000000"
    "001105420000004212064d0000004d4d1307000000580058582504000000632a02000a2b040000001430011e31"
    "01286b7e"
)
YEZHIHAO_2019 = (
    "7e0200407c0100000000017299841738ffff000004000000080006eeb6ad02633df701380003006320070719"
    "235901040000000b02020016030200210402002c051e37373700000000000000000000000000000000000000"
    "00000000000000001105420000004212064d0000004d4d1307000000580058582504000000632a02000a2b04"
    "0000001430011e310128637e"
)
# SmallChi JT808_0x0100Test: registration, 2013 and 2019, plate 粤A12345 in GBK.
REGISTER_2013 = (
    "7E0100002D000123456789000A002800323132333400736D616C6C636869313233000000000000000000434849"
    "3132330001D4C14131323334358A7E"
)
REGISTER_2019 = (
    "7E010040540100000000000123456789000A002800323132333400000000000000736D616C6C636869313233"
    "0000000000000000000000000000000000000043484931323300000000000000000000000000000000000000"
    "000000000001D4C1413132333435B27E"
)


def frame_of(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


def lengthened(hex_text: str) -> str:
    """The frame with its body length one more than its body, the check code made again."""
    raw = bytearray(jt808.unescape(frame_of(hex_text)[1:-1])[:-1])
    raw[3] += 1
    return (b"\x7e" + jt808.escape(bytes(raw) + bytes((jt808.checksum(raw),))) + b"\x7e").hex()


def test_a_location_report_decodes_to_named_readings_alarms_and_status() -> None:
    frame = jt808.decode(frame_of(SMALLCHI_LOCATION))
    assert frame.message == "0x0200" and frame.details["version"] == "2013"
    assert frame.time == datetime(2018, 7, 15, 10, 10, 10, tzinfo=BEIJING)
    readings = {r.metric: r.value for r in frame.readings}
    assert readings == {
        "lat": 12.222222,
        "lng": 132.444444,
        "speed_kmh": 6.0,
        "altitude_m": 40.0,
        "direction": 0.0,
        "alarm_flags": 1.0,
        "mileage_km": 10.0,
        "fuel_l": 5.5,
    }
    assert frame.alarms == ("emergency",) and frame.status == ("located",)


def test_both_headers_of_one_report_decode_alike() -> None:
    old, new = jt808.decode(frame_of(YEZHIHAO_2013)), jt808.decode(frame_of(YEZHIHAO_2019))
    assert (old.details["version"], new.details["version"]) == ("2013", "2019")
    assert old.readings == new.readings and old.time == new.time
    assert old.source == "12345678901" and new.source == "17299841738"
    assert {r.metric: r.value for r in old.readings}["lat"] == 116.307629  # as sent (swapped)
    assert old.alarms == ("tts_fault",) and old.status == ("circuit_cut",)


def test_a_2013_terminal_that_sets_the_2019_bit_is_read_by_its_length() -> None:
    """SmallChi's JTT2013Force case: bit 14 set on a 2013 header."""
    raw = jt808.unescape(frame_of(SMALLCHI_LOCATION)[1:-1])[:-1]
    forced = bytearray(raw)
    forced[2] |= 0x40
    frame = b"\x7e" + jt808.escape(bytes(forced) + bytes((jt808.checksum(forced),))) + b"\x7e"
    decoded = jt808.decode(frame)
    assert decoded.details["version"] == "2013" and decoded.source == "11223344550"


def test_registration_and_authentication() -> None:
    for hex_text, version in ((REGISTER_2013, "2013"), (REGISTER_2019, "2019")):
        frame = jt808.decode(frame_of(hex_text))
        assert frame.message == "0x0100" and frame.details["version"] == version
        assert frame.source == "123456789"
        details = frame.details
        assert (details["province"], details["city"], details["maker"]) == (40, 50, "1234")
        assert (details["model"], details["terminal_id"]) == ("smallchi123", "CHI123")
        assert (details["plate_colour"], details["plate"]) == (1, "粤A12345")
    # yezhihao JT808.txt: 0x0102, 2013 (the code alone) and 2019 (code, IMEI, version).
    old = jt808.decode(frame_of("7e0102000b0123456789017fff6162634031323326343536017e"))
    assert old.details["auth_code"] == "abc@123&456"
    new = jt808.decode(
        frame_of(
            "7e010240500100000000017299841738ffff2c706d59477a47756b4f384b345a356c70494f5467386471"
            "623365707259614842625853504c7464627947383d313233343536373839303132333435332e372e3135"
            "0000000000000000000000000000347e"
        )
    )
    assert new.details["imei"] == "123456789012345" and new.details["software_version"] == "3.7.15"


def test_a_batch_carries_each_location() -> None:
    """yezhihao JT808.txt 0x0704: three buffered locations, type 1 (盲区补报)."""
    frame = jt808.decode(
        frame_of(
            "7e0704005d0123456789017fff000301001c000004000000080006eeb6ad02633df7013800030063200707"
            "192359001c000004000000080006eeb6ad02633df7013800030063200707192359001c0000040000000800"
            "06eeb6ad02633df7013800030063200707192359067e"
        )
    )
    assert frame.details["backfill"] is True and len(frame.details["locations"]) == 3
    assert frame.details["locations"][0]["time"] == "2020-07-07T19:23:59+08:00"


def test_the_platform_replies_as_the_reference_implementations_do() -> None:
    """SmallChi JT808_0x8001Test: 0x8001 to 0x0200 serial 100, platform serial 10."""
    report = jt808.encode(0x0200, "012345678900", 100, jt808.location(
        lat=36.65, lng=117.0, speed_kmh=60, altitude_m=30, direction=90,
        time=datetime(2026, 12, 7, 9, 0, tzinfo=BEIJING),
    ))  # fmt: skip
    answer = jt808.general_reply(jt808.decode(report), serial=10)
    assert answer.hex().upper() == "7E80010005012345678900000A0064020000617E"
    # yezhihao JT808.txt: 0x8100 to serial 0x970C, result 0, its auth code.
    registration = jt808.decode(jt808.encode(0x0100, "012345678901", 0x970C, b"\x00" * 37))
    reply = jt808.registration_reply(registration, 0x7FFF, 0, "chwD0SE1f" * 3)
    assert reply.hex() == (
        "7e8100001e0123456789017fff970c00636877443053453166636877443053453166636877443053453166457e"
    )


@pytest.mark.parametrize(
    ("hex_text", "code"),
    [
        (SMALLCHI_LOCATION[:-4] + "AA7E", "jt808.checksum"),  # check code changed
        ("7E0200" + "7D03" + "00" * 20 + "7E", "jt808.escape"),
        ("7E02000026011223347E", "jt808.length"),
        (lengthened(SMALLCHI_LOCATION), "jt808.length"),
    ],
)
def test_bad_frames_are_refused_with_a_stable_code(hex_text: str, code: str) -> None:
    with pytest.raises(FrameError) as refused:
        jt808.decode(frame_of(hex_text))
    assert refused.value.code == code


def test_the_splitter_finds_frames_between_marks_and_drops_the_rest() -> None:
    one, two = frame_of(SMALLCHI_LOCATION), frame_of(YEZHIHAO_2019)
    got = jt808.Splitter().feed(b"junk" + one + two + b"\x00\x01" + one)
    assert [g for g in got if isinstance(g, bytes)] == [one, two, one]
    assert [g.code for g in got if isinstance(g, FrameError)] == ["jt808.garbage"] * 2
    flood = jt808.Splitter()
    flood.feed(b"\x7e" + b"\x01" * 1_000_000)  # a start and a megabyte without an end
    assert len(flood.buffer.data) <= flood.buffer.limit


@given(
    lat=st.floats(min_value=-90, max_value=90),
    lng=st.floats(min_value=-180, max_value=180),
    speed=st.integers(min_value=0, max_value=2000),
    serial=st.integers(min_value=0, max_value=0xFFFF),
    version=st.sampled_from(["2013", "2019"]),
)
def test_what_the_encoder_writes_the_decoder_reads(
    lat: float, lng: float, speed: int, serial: int, version: str
) -> None:
    body = jt808.location(
        lat=lat, lng=lng, speed_kmh=speed / 10, altitude_m=5, direction=359,
        time=datetime(2026, 12, 7, 9, 0, tzinfo=BEIJING),
    )  # fmt: skip
    frame = jt808.decode(jt808.encode(0x0200, "13800138000", serial, body, version=version))
    readings = {r.metric: r.value for r in frame.readings}
    assert readings["lat"] == pytest.approx(lat, abs=1e-6)
    assert readings["lng"] == pytest.approx(lng, abs=1e-6)
    assert readings["speed_kmh"] == speed / 10 and frame.details["serial"] == serial


@given(st.binary(max_size=300))
def test_escaping_round_trips_and_the_check_code_is_the_xor_of_every_byte(data: bytes) -> None:
    escaped = jt808.escape(data)
    assert b"\x7e" not in escaped and jt808.unescape(escaped) == data
    expected = 0
    for byte in data:
        expected ^= byte
    assert jt808.checksum(data) == expected
