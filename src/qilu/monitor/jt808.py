"""JT/T 808 (2013 and 2019 headers) 道路运输车辆卫星定位系统终端通讯协议: 两客一危 vehicles.

A frame is 7E, the header and body escaped (7E → 7D 02, 7D → 7D 01, the check code included),
the XOR of every unescaped header and body byte, and 7E; words are big-endian. Bit 14 of the
body properties marks the 2019 header (version byte, 10-byte BCD number), but 2013 devices in
the field set it too, so the header whose length agrees with the frame wins.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any

from qilu.monitor.frames import BEIJING, Frame, FrameError, Reading, StreamBuffer

PROTOCOL = "jt808"
MARK, ESCAPE = 0x7E, 0x7D
MAX_FRAME = 2 * (1 + 17 + 4 + 1023 + 1 + 1)  # every byte escaped, the longest 2019 header

# Alarm bits of 0x0200 (2013 table; 15–17 named in 2019): which names a report carries.
ALARMS = {
    0: "emergency",  # 紧急报警, cleared by the platform's 0x8203
    1: "overspeed",
    2: "fatigue",
    3: "danger_warning",
    4: "gnss_fault",
    5: "gnss_antenna_cut",
    6: "gnss_antenna_short",
    7: "power_low",
    8: "power_lost",
    9: "lcd_fault",
    10: "tts_fault",
    11: "camera_fault",
    12: "ic_card_fault",
    13: "overspeed_warning",
    14: "fatigue_warning",
    15: "illegal_driving",  # 2019: 违规行驶报警
    16: "tyre_pressure_warning",  # 2019
    17: "right_blind_spot",  # 2019
    18: "driving_overtime_today",
    19: "parking_overtime",
    20: "area_in_out",
    21: "route_in_out",
    22: "route_time",
    23: "route_deviation",
    24: "vss_fault",
    25: "fuel_abnormal",
    26: "stolen",
    27: "illegal_ignition",
    28: "illegal_displacement",
    29: "collision",
    30: "rollover",
    31: "illegal_door_open",
}
STATUS = {
    0: "acc_on",
    1: "located",
    2: "south_latitude",
    3: "west_longitude",
    4: "out_of_service",
    5: "position_encrypted",
    10: "fuel_cut",
    11: "circuit_cut",
    12: "doors_locked",
    13: "door1_open",
    14: "door2_open",
    15: "door3_open",
    16: "door4_open",
    17: "door5_open",
    18: "gps",
    19: "beidou",
    20: "glonass",
    21: "galileo",
}
LOADS = {0: None, 1: "half_loaded", 3: "fully_loaded"}  # status bits 8–9
NAMES = {
    0x0001: "终端通用应答",
    0x0002: "终端心跳",
    0x0003: "终端注销",
    0x0100: "终端注册",
    0x0102: "终端鉴权",
    0x0200: "位置信息汇报",
    0x0704: "定位数据批量上传",
}


class Splitter:
    """Cuts a TCP stream at 7E marks: bytes outside a frame are reported and dropped, a frame
    longer than any JT/T 808 frame can be is refused, and the buffer stays bounded."""

    def __init__(self) -> None:
        self.buffer = StreamBuffer(2 * MAX_FRAME)

    def feed(self, chunk: bytes) -> list[bytes | FrameError]:
        self.buffer.feed(chunk)
        out: list[bytes | FrameError] = []
        data = self.buffer.data
        while data:
            if skipped := self.buffer.skip_to(bytes((MARK,))):
                out.append(_garbage(skipped))
            if not data:
                break
            end = data.find(MARK, 1)
            if end < 0:
                if len(data) > MAX_FRAME:
                    out.append(_garbage(self.buffer.discard(len(data))))
                break
            if end == 1:  # 7E 7E: the end of a lost frame and a start, or a start repeated
                self.buffer.discard(1)
                continue
            out.append(self.buffer.discard(end + 1))
        return out


def _garbage(skipped: bytes) -> FrameError:
    return FrameError(PROTOCOL, "garbage", f"丢弃了 {len(skipped)} 个不在 7E 之间的字节", skipped)


def unescape(escaped: bytes) -> bytes:
    marks = escaped.count(b"\x7d")
    if not marks:
        return escaped
    # Every 7D starts a pair 7D 01 or 7D 02 (two of them cannot overlap: 7D 7D is invalid).
    if marks != escaped.count(b"\x7d\x01") + escaped.count(b"\x7d\x02"):
        raise FrameError(PROTOCOL, "escape", "7D 后只能是 01 或 02")
    return escaped.replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")


def escape(raw: bytes) -> bytes:
    return raw.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def checksum(data: bytes) -> int:
    """The XOR of every byte: the bytes as one integer, folded in halves down to one byte."""
    value, width = int.from_bytes(data, "big"), len(data)
    while width > 1:
        half = (width + 1) // 2
        value = (value >> (8 * half)) ^ (value & ((1 << (8 * half)) - 1))
        width = half
    return value


def decode(frame: bytes) -> Frame:
    """One frame with its 7E marks (or without them, as a hex line may come)."""
    inner = frame[1:-1] if frame[:1] == b"\x7e" and frame[-1:] == b"\x7e" else frame
    raw = unescape(inner)
    if len(raw) < 13:
        raise FrameError(PROTOCOL, "length", f"帧只有 {len(raw)} 字节，不足一个消息头")
    content, check = raw[:-1], raw[-1]
    if checksum(content) != check:
        raise FrameError(
            PROTOCOL, "checksum", f"校验码 {check:02X} 不符，应为 {checksum(content):02X}"
        )
    header = _header(content)
    body = content[header["size"] :]
    details: dict[str, Any] = {
        "version": header["version"],
        "serial": header["serial"],
        "terminal": header["phone"],
    }
    if header["packet"]:
        details["packet"] = header["packet"]
    if header["encryption"]:
        raise FrameError(PROTOCOL, "encrypted", "消息体已加密（RSA），平台未配置密钥")
    message = header["id"]
    source = header["phone"].lstrip("0") or "0"
    if message == 0x0200:
        location = _location(body)
        return Frame(PROTOCOL, "0x0200", source, **location, details=details)
    if message == 0x0704:
        details["locations"] = _batch(body, details)
    elif message == 0x0100:
        details |= _registration(body, header["version"])
    elif message == 0x0102:
        details |= _authentication(body, header["version"])
    elif message == 0x0001:
        if len(body) < 5:
            raise FrameError(PROTOCOL, "body", "终端通用应答的消息体不足 5 字节")
        serial, replied, result = struct.unpack(">HHB", body[:5])
        details |= {"reply_serial": serial, "reply_id": f"0x{replied:04X}", "result": result}
    elif message not in NAMES:
        details["body"] = body.hex()
    return Frame(PROTOCOL, f"0x{message:04X}", source, None, details=details)


def _header(content: bytes) -> dict[str, Any]:
    """The header, 2013 or 2019: whichever makes the body as long as the properties say."""
    message, properties = struct.unpack(">HH", content[:4])
    length, split = properties & 0x3FF, bool(properties & 0x2000)
    extra = 4 if split else 0
    layouts = [("2019", 17 + extra), ("2013", 12 + extra)]
    if not properties & 0x4000:
        layouts.reverse()
    fitting = [(version, size) for version, size in layouts if len(content) == size + length]
    if not fitting:
        raise FrameError(PROTOCOL, "length", f"消息体长度标为 {length}，与帧长 {len(content)} 不符")
    version, size = fitting[0]
    if version == "2019":
        phone, (serial,) = _bcd(content[5:15]), struct.unpack(">H", content[15:17])
    else:
        phone, (serial,) = _bcd(content[4:10]), struct.unpack(">H", content[10:12])
    packet = None
    if split:
        total, index = struct.unpack(">HH", content[size - 4 : size])
        packet = {"total": total, "index": index}
    return {
        "id": message,
        "size": size,
        "version": version,
        "phone": phone,
        "serial": serial,
        "packet": packet,
        "encryption": (properties >> 10) & 0x7,
    }


def _bcd(data: bytes) -> str:
    text = data.hex()
    if not text.isdigit():
        raise FrameError(PROTOCOL, "bcd", f"BCD 字段 {text} 含非十进制数字")
    return text


def _location(body: bytes) -> dict[str, Any]:
    """0x0200: alarm and status words, position (degrees × 10⁶, the sign in status bits 2 and
    3), altitude m, speed 0.1 km/h, direction, time BCD[6] in GMT+8, then TLV extras."""
    if len(body) < 28:
        raise FrameError(PROTOCOL, "body", f"位置信息只有 {len(body)} 字节，不足 28")
    alarm, status, lat, lng, altitude, speed, direction = struct.unpack(">IIIIHHH", body[:22])
    time = _time(body[22:28])
    latitude = lat / 1e6 * (-1 if status & 0x4 else 1)
    longitude = lng / 1e6 * (-1 if status & 0x8 else 1)
    readings = [
        Reading("lat", latitude),
        Reading("lng", longitude),
        Reading("speed_kmh", speed / 10),
        Reading("altitude_m", float(altitude)),
        Reading("direction", float(direction)),
        Reading("alarm_flags", float(alarm)),  # the word as sent, for `device_alarm` rules
    ]
    readings += _extras(body[28:])
    states = [name for bit, name in STATUS.items() if status >> bit & 1]
    load = LOADS.get(status >> 8 & 0x3)
    if load:
        states.append(load)
    alarms = tuple(name for bit, name in ALARMS.items() if alarm >> bit & 1)
    return {"time": time, "readings": tuple(readings), "alarms": alarms, "status": tuple(states)}


def _time(data: bytes) -> datetime:
    text = _bcd(data)
    try:
        return datetime.strptime(text, "%y%m%d%H%M%S").replace(tzinfo=BEIJING)
    except ValueError:
        raise FrameError(PROTOCOL, "time", f"时间 {text} 不是 YYMMDDhhmmss") from None


# Extras with a reading of their own: id → (metric, struct format, scale).
EXTRAS = {
    0x01: ("mileage_km", ">I", 0.1),
    0x02: ("fuel_l", ">H", 0.1),
    0x03: ("recorder_speed_kmh", ">H", 0.1),
    0x30: ("signal_strength", ">B", 1.0),
    0x31: ("satellites", ">B", 1.0),
}


def _extras(data: bytes) -> list[Reading]:
    readings = []
    index = 0
    while index + 2 <= len(data):
        extra, size = data[index], data[index + 1]
        value = data[index + 2 : index + 2 + size]
        if len(value) < size:
            raise FrameError(PROTOCOL, "body", f"附加信息 0x{extra:02X} 长度不足")
        known = EXTRAS.get(extra)
        if known and struct.calcsize(known[1]) == size:
            (number,) = struct.unpack(known[1], value)
            readings.append(Reading(known[0], round(number * known[2], 6)))
        index += 2 + size
    return readings


def _batch(body: bytes, details: dict[str, Any]) -> list[dict[str, Any]]:
    """0x0704: count, type (0 正常, 1 盲区补报), then each location with its length."""
    if len(body) < 3:
        raise FrameError(PROTOCOL, "body", "批量上传的消息体不足 3 字节")
    count, kind = struct.unpack(">HB", body[:3])
    details["backfill"] = kind == 1
    index, out = 3, []
    for _ in range(count):
        (size,) = struct.unpack(">H", body[index : index + 2])
        location = _location(body[index + 2 : index + 2 + size])
        out.append(
            {
                "time": location["time"].isoformat(),
                "readings": [{"metric": r.metric, "value": r.value} for r in location["readings"]],
                "alarms": list(location["alarms"]),
                "status": list(location["status"]),
            }
        )
        index += 2 + size
    if index != len(body):
        raise FrameError(PROTOCOL, "body", f"批量上传声明 {count} 条，长度与消息体不符")
    return out


def _registration(body: bytes, version: str) -> dict[str, Any]:
    """0x0100: province, city, maker, model, terminal id, plate colour, plate (GBK)."""
    sizes = (11, 30, 30) if version == "2019" else (5, 20, 7)
    fixed = 4 + sum(sizes) + 1
    if len(body) < fixed:
        raise FrameError(PROTOCOL, "body", f"终端注册的消息体不足 {fixed} 字节")
    province, city = struct.unpack(">HH", body[:4])
    fields, index = [], 4
    for size in sizes:
        fields.append(_text(body[index : index + size]))
        index += size
    return {
        "province": province,
        "city": city,
        "maker": fields[0],
        "model": fields[1],
        "terminal_id": fields[2],
        "plate_colour": body[index],
        "plate": _text(body[index + 1 :]),
    }


def _authentication(body: bytes, version: str) -> dict[str, Any]:
    if version == "2013":
        return {"auth_code": _text(body)}
    if not body or len(body) < 1 + body[0]:
        raise FrameError(PROTOCOL, "body", "鉴权码长度不符")
    size = body[0]
    return {
        "auth_code": _text(body[1 : 1 + size]),
        "imei": _text(body[1 + size : 16 + size]),
        "software_version": _text(body[16 + size : 36 + size]),
    }


def _text(data: bytes) -> str:
    return data.rstrip(b"\x00").decode("gbk", errors="replace").strip()


def encode(
    message: int, terminal: str, serial: int, body: bytes = b"", *, version: str = "2013"
) -> bytes:
    """A whole frame: header, body, check code, escaped, between 7E marks."""
    if version == "2019":
        properties = 0x4000 | len(body)
        header = struct.pack(">HHB", message, properties, 1) + bytes.fromhex(terminal.zfill(20))
    else:
        header = struct.pack(">HH", message, len(body)) + bytes.fromhex(terminal.zfill(12))
    content = header + struct.pack(">H", serial & 0xFFFF) + body
    return b"\x7e" + escape(content + bytes((checksum(content),))) + b"\x7e"


def general_reply(frame: Frame, serial: int, result: int = 0) -> bytes:
    """0x8001 平台通用应答: the terminal's serial and message id, and the result (0 成功, 1 失败,
    2 消息有误, 3 不支持, 4 报警处理确认)."""
    body = struct.pack(">HHB", frame.details["serial"], int(frame.message, 16), result)
    return encode(0x8001, frame.details["terminal"], serial, body, version=frame.details["version"])


# What a terminal may send on a connection before it has authenticated there: 注册, 鉴权, 注销.
# Anything else (a position, a heartbeat) is refused: a terminal authenticates each time it
# connects, before anything else (JT/T 808 §"终端鉴权"), so a connection that skips it is not
# taken for the terminal it names.
OPEN_MESSAGES = frozenset({"0x0100", "0x0102", "0x0003"})


class Connection:
    """The terminals that have authenticated on one TCP connection."""

    def __init__(self) -> None:
        self.authenticated: set[str] = set()

    def refusal(self, frame: Frame) -> FrameError | None:
        """Why the frame is not taken from this connection, if it is not."""
        if frame.message in OPEN_MESSAGES or frame.source in self.authenticated:
            return None
        return FrameError(
            PROTOCOL, "unauthenticated", f"终端 {frame.source} 未在本连接上鉴权，报文不予接收"
        )

    def answered(self, frame: Frame, answer: bytes | None) -> None:
        """Note an authentication the platform accepted (0x8001 result 0 to a 0x0102)."""
        if frame.message == "0x0102" and answer and unescape(answer[1:-1])[-2] == 0:
            self.authenticated.add(frame.source)


def registration_reply(frame: Frame, serial: int, result: int, auth_code: str = "") -> bytes:
    """0x8100 终端注册应答: 0 成功 (with the code the terminal authenticates with), 1 车辆已被
    注册, 2 数据库中无该车辆, 3 终端已被注册, 4 数据库中无该终端."""
    body = struct.pack(">HB", frame.details["serial"], result)
    if result == 0:
        body += auth_code.encode("gbk")
    return encode(0x8100, frame.details["terminal"], serial, body, version=frame.details["version"])


def location(
    *,
    lat: float,
    lng: float,
    speed_kmh: float,
    altitude_m: int,
    direction: int,
    time: datetime,
    alarm: int = 0,
    status: int = 0x2,
) -> bytes:
    """A 0x0200 body (the simulator's and the tests'): status bit 1 (located) by default."""
    status |= (0x4 if lat < 0 else 0) | (0x8 if lng < 0 else 0)
    stamp = bytes.fromhex(time.astimezone(BEIJING).strftime("%y%m%d%H%M%S"))
    return (
        struct.pack(
            ">IIIIHHH",
            alarm,
            status,
            round(abs(lat) * 1e6),
            round(abs(lng) * 1e6),
            altitude_m,
            round(speed_kmh * 10),
            direction,
        )
        + stamp
    )
