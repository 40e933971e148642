"""SL 651-2014 水文监测数据通信规约: hydrological stations, in both of its encodings.

HEX/BCD (§6.5): an uplink frame is 7E 7E, the centre address, the station address (5 bytes),
the password, the function code, the direction and body length (high nibble 0 up, 8 down; 12
bits of length), STX (or SYN and a packet number for multi-packet mode M3), the body, ETX (last)
or ETB (more follows), and CRC-16 (X¹⁶+X¹⁵+X²+1, as Modbus, high byte first) over everything
before it (表20). A body is the serial number, the send time, `F1 F1` and the station, then per
observation `F0 F0` and its time followed by elements: an identifier, a byte whose high five
bits give the length and low three the decimals, and the value in BCD (附录C).

ASCII (§6.4, 表16; body §6.6.2): SOH 01, then the same header as text: the centre address in 2
hex digits, the station in 10, the password in 4, the function code in 2, and 4 hex digits of
which the first is the direction (0 up, 8 down) and the other three the body's length; STX (or
SYN and 6 hex digits of packet total and number), the body, ETX or ETB, and the same CRC over
every byte before it written as 4 hex digits. The body is the serial (4 hex digits) and the
send time (12 digits) without a space, then `identifier space data space` groups: `ST` with the
station and its class letter, `TT` with the observation time, and elements by their 附录C
ASCII identifier (`PJ 4.0 Z 10.490 VT 10.99 `), `M` for a missing value.
"""

from __future__ import annotations

import json
import struct
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from qilu.monitor.frames import BEIJING, CRC_A001, Frame, FrameError, Reading, StreamBuffer

PROTOCOL = "sl651"
START = b"\x7e\x7e"
SOH = 0x01  # an ASCII frame's start
ASCII_HEAD = 24  # SOH, 22 characters of header, STX
HEX_DIGITS = frozenset(b"0123456789ABCDEFabcdef")
STX, SYN = 0x02, 0x16
ETX, ETB = 0x03, 0x17
EOT, ESC = 0x04, 0x1B
MAX_BODY = 4095
# 附录B: function codes of the reports a station sends by itself (the centre confirms them).
FUNCTIONS = {
    0x2F: "链路维持报",
    0x30: "测试报",
    0x31: "均匀时段水文信息报",
    0x32: "遥测站定时报",
    0x33: "遥测站加报报",
    0x34: "遥测站小时报",
    0x35: "遥测站人工置数报",
}
STATION_CLASSES = {  # 附录A
    "P": "降水",
    "H": "河道",
    "K": "水库（湖泊）",
    "Z": "闸坝",
    "D": "泵站",
    "T": "潮汐",
    "M": "墒情",
    "G": "地下水",
    "Q": "水质",
    "I": "取水口",
    "O": "排水口",
}
FIVE_MINUTES = timedelta(minutes=5)


def crc(data: bytes) -> int:
    """CRC-16 with the generator X¹⁶+X¹⁵+X²+1, reflected, register from FFFF (CRC-16/MODBUS)."""
    register = 0xFFFF
    for byte in data:
        register = (register >> 8) ^ CRC_A001[(register ^ byte) & 0xFF]
    return register


@cache
def elements() -> dict[int, dict[str, str]]:
    """附录C 表C.1: each identifier's code (PJ, Z, VT …) and name."""
    text = resources.files("qilu.monitor").joinpath("data/sl651_elements.json").read_text()
    return {int(key, 16): value for key, value in json.loads(text).items()}


class Splitter:
    """Cuts a TCP stream at frame starts (7E 7E, or SOH for ASCII), by the length the frame
    declares; what lies between frames is reported and dropped."""

    def __init__(self) -> None:
        self.buffer = StreamBuffer(2 * (ASCII_HEAD + 6 + MAX_BODY + 5))

    def feed(self, chunk: bytes) -> list[bytes | FrameError]:
        self.buffer.feed(chunk)
        out: list[bytes | FrameError] = []
        data, junk = self.buffer.data, bytearray()
        while data:
            junk += self._skip()
            end = self._end(data)
            if end is None or len(data) < end:
                break
            if end == 0:  # an SOH whose header is not text: not a frame start after all
                junk += self.buffer.discard(1)
                continue
            if junk:
                out.append(_garbage(bytes(junk)))
                junk.clear()
            out.append(self.buffer.discard(end))
        if junk:
            out.append(_garbage(bytes(junk)))
        return out

    def _skip(self) -> bytes:
        """Drop what comes before the next frame start of either encoding."""
        data = self.buffer.data
        starts = [i for i in (data.find(START), data.find(SOH)) if i >= 0]
        if starts:
            return self.buffer.discard(min(starts))
        return self.buffer.skip_to(START)

    @staticmethod
    def _end(data: bytearray) -> int | None:
        """Where the frame at the buffer's start ends (None: too little yet to tell; 0: not a
        frame)."""
        if not data:
            return None
        if data[0] == SOH:
            if len(data) < ASCII_HEAD:
                return None
            if not set(data[1:23]) <= HEX_DIGITS or data[23] not in (STX, SYN):
                return 0
            packet = 6 if data[23] == SYN else 0
            return ASCII_HEAD + packet + int(data[20:23], 16) + 1 + 4
        if len(data) < 14:
            return None
        length_bytes = int.from_bytes(data[11:13], "big") & 0x0FFF
        marker = 4 if data[13] == SYN else 1
        return 13 + marker + length_bytes + 1 + 2


def _garbage(skipped: bytes) -> FrameError:
    return FrameError(PROTOCOL, "garbage", f"丢弃了 {len(skipped)} 个不属于任何报文的字节", skipped)


def decode(frame: bytes) -> Frame:
    """One uplink frame, in either encoding."""
    if frame[:1] == bytes((SOH,)):
        return decode_ascii(frame)
    if not frame.startswith(START):
        raise FrameError(PROTOCOL, "head", "报文须以 7E7E（HEX/BCD）或 SOH 01（ASCII）开头")
    if len(frame) < 17:
        raise FrameError(PROTOCOL, "length", f"报文只有 {len(frame)} 字节")
    given, computed = int.from_bytes(frame[-2:], "big"), crc(frame[:-2])
    if given != computed:
        raise FrameError(PROTOCOL, "crc", f"CRC 校验失败：报文内 {given:04X}，应为 {computed:04X}")
    centre, station = frame[2], frame[3:8].hex().upper()
    password, function = frame[8:10].hex().upper(), frame[10]
    direction, length = frame[11] >> 4, int.from_bytes(frame[11:13], "big") & 0x0FFF
    if direction != 0:
        raise FrameError(PROTOCOL, "direction", "这是中心站发出的下行报文")
    details: dict[str, Any] = {"centre": centre, "password": password}
    if frame[13] == SYN:
        numbers = int.from_bytes(frame[14:17], "big")
        details["packet"] = {"total": numbers >> 12, "index": numbers & 0xFFF}
        body_start = 17
    elif frame[13] == STX:
        body_start = 14
    else:
        raise FrameError(PROTOCOL, "start", f"正文起始符应为 02 或 16，实为 {frame[13]:02X}")
    body = frame[body_start : body_start + length]
    end = frame[body_start + length] if body_start + length < len(frame) - 2 else None
    if len(body) != length or end not in (ETX, ETB) or body_start + length + 3 != len(frame):
        raise FrameError(PROTOCOL, "length", f"正文长度标为 {length}，与报文不符")
    details["more"] = end == ETB
    if len(body) < 8:
        raise FrameError(PROTOCOL, "body", "正文不足 8 字节（流水号和发报时间）")
    details["serial"] = int.from_bytes(body[:2], "big")
    sent = _time(body[2:8], "%y%m%d%H%M%S")
    details["sent"] = sent.isoformat()
    message = f"0x{function:02X}"
    if "packet" in details or function not in FUNCTIONS or function == 0x2F:
        if function not in FUNCTIONS:
            details["body"] = body.hex()
        return Frame(PROTOCOL, message, station, sent, details=details)
    station_class, readings, observed = _observations(body[8:], station)
    details["station_class"] = station_class
    return Frame(PROTOCOL, message, station, observed or sent, tuple(readings), details=details)


def _observations(data: bytes, station: str) -> tuple[str, list[Reading], datetime | None]:
    """`F1 F1` station and class, then `F0 F0` observation times each followed by elements."""
    if data[:2] != b"\xf1\xf1" or len(data) < 8:
        raise FrameError(PROTOCOL, "body", "正文缺少测站编码引导符 F1F1")
    if data[2:7].hex().upper() != station:
        raise FrameError(PROTOCOL, "station", "正文中的测站地址与报头不一致")
    station_class = chr(data[7])
    readings: list[Reading] = []
    first: datetime | None = None
    observed: datetime | None = None
    index = 8
    while index < len(data):
        ident = data[index]
        if ident == 0xF0 and data[index + 1 : index + 2] == b"\xf0":
            observed = _time(data[index + 2 : index + 7], "%y%m%d%H%M")
            first = first or observed
            index += 7
            continue
        if index + 2 > len(data):
            raise FrameError(PROTOCOL, "element", "要素标识符后缺少数据定义")
        size = data[index + 1] >> 3
        value = data[index + 2 : index + 2 + size]
        if len(value) < size or size == 0:
            raise FrameError(PROTOCOL, "element", f"要素 {ident:02X}H 的数据长度不符")
        if observed is None:
            raise FrameError(PROTOCOL, "element", "要素前缺少观测时间引导符 F0F0")
        readings += _element(ident, data[index + 1] & 0x7, value, observed)
        index += 2 + size
    # A reading keeps its own time only where it is not the frame's (the first observation's).
    readings = [replace(r, time=None) if r.time == first else r for r in readings]
    return station_class, readings, first


def _element(ident: int, decimals: int, value: bytes, observed: datetime) -> list[Reading]:
    known = elements().get(ident)
    code = known["code"] if known else f"{ident:02X}H"
    if ident == 0xF4:  # DRP: twelve 5-minute rainfalls, 0.1 mm each, FF invalid
        return [
            Reading("DRP", step / 10, None, observed + FIVE_MINUTES * n)
            for n, step in enumerate(value)
            if step != 0xFF
        ]
    if 0xF5 <= ident <= 0xFC:  # DRZ1–8: twelve 5-minute relative levels, 0.01 m, FFFF invalid
        steps = struct.unpack(f">{len(value) // 2}H", value)
        return [
            Reading(code, step / 100, None, observed + FIVE_MINUTES * n)
            for n, step in enumerate(steps)
            if step != 0xFFFF
        ]
    if ident == 0x45:  # ZT: status and alarm bits (表58), four bytes HEX
        return [Reading(code, float(int.from_bytes(value, "big")), None, observed)]
    if all(b == 0xFF for b in value):  # 全 F: no value
        return []
    digits = value.hex()
    negative = digits.startswith("ff")
    digits = digits[2:] if negative else digits
    if not digits.isdigit():
        raise FrameError(PROTOCOL, "bcd", f"要素 {code} 的值 {value.hex()} 不是 BCD")
    number = int(digits) / 10**decimals
    return [Reading(code, -number if negative else number, None, observed)]


def _time(data: bytes, layout: str) -> datetime:
    return _clock(data.hex(), layout)


def _clock(text: str, layout: str) -> datetime:
    try:
        return datetime.strptime(text, layout).replace(tzinfo=BEIJING)
    except ValueError:
        raise FrameError(PROTOCOL, "time", f"时间 {text} 不是 BCD 日期时间") from None


def decode_ascii(frame: bytes) -> Frame:
    """One uplink frame, ASCII encoded (表16; M3's 表18)."""
    if len(frame) < ASCII_HEAD + 1 + 4:
        raise FrameError(PROTOCOL, "length", f"报文只有 {len(frame)} 字节")
    if not set(frame[1:23]) <= HEX_DIGITS:
        raise FrameError(PROTOCOL, "head", "ASCII 报文的报头须为十六进制字符")
    given = frame[-4:]
    computed = crc(frame[:-4])
    if not set(given) <= HEX_DIGITS or int(given, 16) != computed:
        shown = given.decode(errors="replace")
        raise FrameError(PROTOCOL, "crc", f"CRC 校验失败：报文内 {shown}，应为 {computed:04X}")
    head = frame[1:23].decode()
    centre, station, password = int(head[0:2], 16), head[2:12].upper(), head[12:16].upper()
    function, direction, length = int(head[16:18], 16), head[18], int(head[19:22], 16)
    if direction != "0":
        raise FrameError(PROTOCOL, "direction", "这是中心站发出的下行报文")
    details: dict[str, Any] = {"centre": centre, "password": password, "encoding": "ascii"}
    if frame[23] == SYN:
        numbers = frame[24:30]
        if not set(numbers) <= HEX_DIGITS or len(numbers) < 6:
            raise FrameError(PROTOCOL, "start", "多包传输的包总数及序列号须为 6 个十六进制字符")
        details["packet"] = {"total": int(numbers[:3], 16), "index": int(numbers[3:], 16)}
        body_start = 30
    elif frame[23] == STX:
        body_start = ASCII_HEAD
    else:
        raise FrameError(PROTOCOL, "start", f"正文起始符应为 02 或 16，实为 {frame[23]:02X}")
    body = frame[body_start : body_start + length]
    end = frame[body_start + length] if body_start + length < len(frame) - 4 else None
    if len(body) != length or end not in (ETX, ETB) or body_start + length + 5 != len(frame):
        raise FrameError(PROTOCOL, "length", f"正文长度标为 {length}，与报文不符")
    details["more"] = end == ETB
    message = f"0x{function:02X}"
    if details.get("packet", {}).get("index", 1) > 1:  # only a first packet has the serial
        details["body"] = body.decode(errors="replace")
        return Frame(PROTOCOL, message, station, None, details=details)
    text = body.decode("ascii", errors="replace")
    if len(text) < 16 or not set(text[:4].encode()) <= HEX_DIGITS:
        raise FrameError(PROTOCOL, "body", "正文须以流水号（4 位十六进制）和发报时间开头")
    details["serial"] = int(text[:4], 16)
    sent = _clock(text[4:16], "%y%m%d%H%M%S")
    details["sent"] = sent.isoformat()
    if "packet" in details or function not in FUNCTIONS or function == 0x2F:
        if function not in FUNCTIONS:
            details["body"] = text[16:]
        return Frame(PROTOCOL, message, station, sent, details=details)
    station_class, readings, observed = _ascii_observations(text[16:], station)
    details["station_class"] = station_class
    return Frame(PROTOCOL, message, station, observed or sent, tuple(readings), details=details)


def _ascii_observations(text: str, station: str) -> tuple[str, list[Reading], datetime | None]:
    """`ST` station and class, then `TT` observation times each followed by elements, every
    group ending in a space (§6.6.2.1)."""
    tokens = text.split(" ")
    if tokens[-1] != "":
        raise FrameError(PROTOCOL, "body", "ASCII 报文正文最后须有 1 个空格")
    tokens.pop()
    codes = {value["code"]: ident for ident, value in elements().items()}
    station_class: str | None = None
    readings: list[Reading] = []
    first: datetime | None = None
    observed: datetime | None = None
    index = 0
    while index < len(tokens):
        name = tokens[index]
        if name == "ST":
            named = tokens[index + 1 : index + 2]
            if [n.upper() for n in named] != [station] or index + 2 >= len(tokens):
                raise FrameError(PROTOCOL, "station", "正文中的测站地址与报头不一致")
            station_class, index = tokens[index + 2], index + 3
            continue
        if name == "TT" and index + 1 < len(tokens):
            observed = _clock(tokens[index + 1], "%y%m%d%H%M")
            first, index = first or observed, index + 2
            continue
        if name[:2] == "DR" and name[2:3] in ("D", "H", "N") and name[3:].isdigit():
            index += 1  # a time step code (表C.2): its value is in its name
            continue
        if observed is None or index + 1 >= len(tokens):
            raise FrameError(PROTOCOL, "element", f"要素 {name} 前缺少观测时间或后缺少数据")
        readings += _ascii_element(codes, name, tokens[index + 1], observed)
        index += 2
    if station_class is None:
        raise FrameError(PROTOCOL, "body", "正文缺少测站编码 ST")
    readings = [replace(r, time=None) if r.time == first else r for r in readings]
    return station_class, readings, first


def _ascii_element(
    codes: dict[str, int], name: str, value: str, observed: datetime
) -> list[Reading]:
    """An element's data: a decimal number, `M` for none, or HEX for the 5-minute series
    and the status word (as in the HEX/BCD encoding, written as hex digits)."""
    if value == "M":
        return []
    ident = codes.get(name)
    if ident is not None and (ident == 0x45 or 0xF4 <= ident <= 0xFC):
        try:
            return _element(ident, 0, bytes.fromhex(value), observed)
        except ValueError:
            raise FrameError(PROTOCOL, "element", f"要素 {name} 的数据须为十六进制") from None
    if not value.removeprefix("-").replace(".", "", 1).isdigit():  # no 1e3, inf, nan or --1
        raise FrameError(PROTOCOL, "element", f"要素 {name} 的值 {value} 不是数")
    return [Reading(name, float(value), None, observed)]


def reply(frame: Frame, now: datetime, *, stay_online: bool = False) -> bytes | None:
    """The centre's confirmation of a report (M2): the downlink frame swaps the addresses and
    carries the report's serial and the centre's time, ending EOT (or ESC to keep the link open
    for ten minutes). A link keep-alive (2F) and a multi-packet part are not confirmed."""
    function = int(frame.message, 16)
    if function == 0x2F or function not in FUNCTIONS or "packet" in frame.details:
        return None
    serial = int(frame.details["serial"])
    stamp = now.astimezone(BEIJING).strftime("%y%m%d%H%M%S")
    end = bytes((ESC if stay_online else EOT,))
    if frame.details.get("encoding") == "ascii":  # 表17: the same fields, as text
        text = f"{serial:04X}{stamp}"
        words = (
            f"{frame.source}{int(frame.details['centre']):02X}{frame.details['password']}"
            f"{function:02X}8{len(text):03X}"
        )
        content = bytes((SOH,)) + words.encode() + bytes((STX,)) + text.encode() + end
        return content + f"{crc(content):04X}".encode()
    body = serial.to_bytes(2, "big") + bytes.fromhex(stamp)
    head = (
        START
        + bytes.fromhex(frame.source)
        + bytes((int(frame.details["centre"]),))
        + bytes.fromhex(str(frame.details["password"]))
        + bytes((function,))
        + (0x8000 | len(body)).to_bytes(2, "big")
        + bytes((STX,))
    )
    content = head + body + end
    return content + crc(content).to_bytes(2, "big")


def encode(
    *,
    centre: int,
    station: str,
    password: str,
    function: int,
    serial: int,
    sent: datetime,
    station_class: str,
    observed: datetime,
    values: dict[int, tuple[float, int, int]],
) -> bytes:
    """An uplink report (the simulator's and the tests'): `values` maps an element identifier
    to (value, bytes, decimals)."""
    body = serial.to_bytes(2, "big") + bytes.fromhex(
        sent.astimezone(BEIJING).strftime("%y%m%d%H%M%S")
    )
    body += b"\xf1\xf1" + bytes.fromhex(station) + station_class.encode()
    body += b"\xf0\xf0" + bytes.fromhex(observed.astimezone(BEIJING).strftime("%y%m%d%H%M"))
    for ident, (value, size, decimals) in values.items():
        digits = f"{round(abs(value) * 10**decimals):0{size * 2}d}"
        if value < 0:
            digits = "ff" + digits[2:]
        body += bytes((ident, size << 3 | decimals)) + bytes.fromhex(digits)
    content = (
        START
        + bytes((centre,))
        + bytes.fromhex(station)
        + bytes.fromhex(password)
        + bytes((function,))
        + len(body).to_bytes(2, "big")
        + bytes((STX,))
        + body
        + bytes((ETX,))
    )
    return content + crc(content).to_bytes(2, "big")


def encode_ascii(
    *,
    centre: int,
    station: str,
    password: str,
    function: int,
    serial: int,
    sent: datetime,
    station_class: str,
    observed: datetime,
    values: dict[str, str],
) -> bytes:
    """An uplink report in the ASCII encoding (the simulator's and the tests'): `values` maps
    an element's ASCII identifier to its data as written (`"10.490"`)."""
    text = f"{serial:04X}" + sent.astimezone(BEIJING).strftime("%y%m%d%H%M%S")
    text += f"ST {station} {station_class} "
    text += "TT " + observed.astimezone(BEIJING).strftime("%y%m%d%H%M") + " "
    text += "".join(f"{name} {value} " for name, value in values.items())
    head = f"{centre:02X}{station}{password}{function:02X}0{len(text):03X}"
    content = bytes((SOH,)) + head.encode() + bytes((STX,)) + text.encode() + bytes((ETX,))
    return content + f"{crc(content):04X}".encode()
