"""HJ 212-2017 污染物在线监控(监测)系统数据传输标准: pollution sources and air stations.

A packet is `##`, the data segment's length in four digits, the data segment, its CRC in four
hex digits and CR LF (§6.3.1 表2). The data segment is `QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;
[PNUM=…;PNO=…;]CP=&&…&&` (表3). HJ/T 212-2005 frames (no Flag, or its version bits 0, and the
old factor codes of Appendix B) are still in the field: they are read, mapped and marked.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from importlib import resources

from qilu.monitor.frames import BEIJING, CRC_A001, Frame, FrameError, Reading, StreamBuffer

PROTOCOL = "hj212"
MAX_SEGMENT = 1024  # 表2: 0 ≤ n ≤ 1024
HEAD, TAIL = b"##", b"\r\n"
# 表8 数据标记: N 正常, F 停运, M 维护, S 手工输入设定值, D 故障, C 校准, T 超测量上限, B 通讯异常.
FLAGS = frozenset("NFMSDCTB")
VALUE_SUFFIXES = frozenset(
    ("Rtd", "Min", "Avg", "Max", "ZsRtd", "ZsMin", "ZsAvg", "ZsMax", "Cou", "RS", "RT")
)
# Uploads the platform acknowledges with 9014 when the Flag asks (表9 上传命令), and the one
# notice from a device, answered with 9013 (表C.4 现场机时间校准请求).
_DEVICE_UPLOADS = ["1011", "1061", "1063", "2011", "2021", "2031", "2041", "2051", "2061"]
UPLOADS = frozenset([*_DEVICE_UPLOADS, "2081", "3015", "3017", "3018", "3019", "3020"])
NOTICES = frozenset(("1013",))


def crc(segment: bytes) -> int:
    """Appendix A: the register starts at FFFF; for each byte it becomes (register >> 8) XOR the
    byte, then eight shifts right with XOR A001 when a one falls out. Only the high byte of the
    register survives each step, so it is one table look-up per byte (not CRC-16/MODBUS)."""
    register = 0xFFFF
    for byte in segment:
        register = CRC_A001[(register >> 8) ^ byte]
    return register


def pack(segment: str) -> bytes:
    """The packet around a data segment."""
    body = segment.encode()
    if len(body) > MAX_SEGMENT:
        raise FrameError(PROTOCOL, "length", f"数据段 {len(body)} 字节，超过 {MAX_SEGMENT}")
    return HEAD + f"{len(body):04d}".encode() + body + f"{crc(body):04X}".encode() + TAIL


class Splitter:
    """Cuts a TCP stream into packets; garbage before a `##` and packets of a wrong length are
    reported, not fatal, and the buffer never holds more than one largest packet."""

    def __init__(self) -> None:
        self.buffer = StreamBuffer(2 * (len(HEAD) + 4 + MAX_SEGMENT + 4 + len(TAIL)))

    def feed(self, chunk: bytes) -> list[bytes | FrameError]:
        self.buffer.feed(chunk)
        out: list[bytes | FrameError] = []
        data = self.buffer.data
        while data:
            if skipped := self.buffer.skip_to(HEAD):
                out.append(_garbage(skipped))
            if len(data) < 6:
                break
            length = bytes(data[2:6])
            if not length.isdigit() or int(length) > MAX_SEGMENT:
                dropped = self.buffer.discard(2)
                out.append(FrameError(PROTOCOL, "length", f"数据段长度 {length!r} 无效", dropped))
                continue
            end = 6 + int(length) + 4 + 2
            if len(data) < end:
                break
            out.append(self.buffer.discard(end))
        return out


def _garbage(skipped: bytes) -> FrameError:
    reason = f"丢弃了 {len(skipped)} 个不属于任何数据包的字节"
    return FrameError(PROTOCOL, "garbage", reason, skipped)


def decode(packet: bytes) -> Frame:
    """One whole packet (as the splitter cut it, or a line of text with or without CR LF)."""
    if not packet.startswith(HEAD) or len(packet) < 10:
        raise FrameError(PROTOCOL, "head", "数据包须以 ## 开头")
    packet = packet.removesuffix(TAIL)
    length = packet[2:6]
    if not length.isdigit():
        raise FrameError(PROTOCOL, "length", f"数据段长度 {length!r} 无效")
    segment, checksum = packet[6:-4], packet[-4:]
    if len(segment) != int(length):
        raise FrameError(
            PROTOCOL, "length", f"数据段长度标为 {int(length)}，实为 {len(segment)} 字节"
        )
    try:
        given = int(checksum, 16)
    except ValueError:
        raise FrameError(PROTOCOL, "crc", f"CRC {checksum!r} 不是十六进制数") from None
    if given != crc(segment):
        raise FrameError(
            PROTOCOL, "crc", f"CRC 校验失败：包内 {checksum.decode()}，应为 {crc(segment):04X}"
        )
    try:
        text = segment.decode()
    except UnicodeDecodeError:
        raise FrameError(PROTOCOL, "encoding", "数据段不是 UTF-8 文本") from None
    return parse_segment(text)


def parse_segment(text: str) -> Frame:
    """The data segment's fields and its CP data area."""
    head, marker, rest = text.partition("CP=&&")
    if not marker or not rest.endswith("&&"):
        raise FrameError(PROTOCOL, "cp", "缺少 CP=&&…&& 数据区")
    fields = dict(_pairs(head.split(";")))
    for name in ("ST", "CN", "MN"):
        if not fields.get(name):
            raise FrameError(PROTOCOL, "field", f"缺少字段 {name}")
    flag = fields.get("Flag")
    if flag is not None and not flag.isdigit():
        raise FrameError(PROTOCOL, "flag", f"Flag={flag} 不是 0–255 的整数")
    version = "2017" if flag is not None and int(flag) >> 2 == 1 else "2005"
    area = dict(_pairs(item for group in rest[:-2].split(";") for item in group.split(",")))
    readings = _readings(area, legacy=version == "2005")
    details: dict[str, object] = {"version": version, "st": fields["ST"]}
    for name in ("QN", "PW", "PNUM", "PNO"):
        if name in fields:
            details[name.lower()] = fields[name]
    if flag is not None:
        details["flag"] = int(flag)
    others = {k: v for k, v in area.items() if "-" not in k and k != "DataTime"}
    if others:
        details["cp"] = others
    time = _time(area.get("DataTime") or area.get("SystemTime"))
    return Frame(PROTOCOL, fields["CN"], fields["MN"], time, readings, details=details)


def _pairs(items: Iterable[str]) -> list[tuple[str, str]]:
    out = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        key, equals, value = item.partition("=")
        if not equals:
            raise FrameError(PROTOCOL, "field", f"“{item[:40]}”缺少 =")
        out.append((key.strip(), value.strip()))
    return out


def _readings(area: dict[str, str], *, legacy: bool) -> tuple[Reading, ...]:
    """`code-Suffix=value` as readings, each with its factor's `code-Flag`; 2005 codes become
    today's (Appendix B's 原编码 column)."""
    readings = []
    for key, value in area.items():
        code, _, suffix = key.rpartition("-")
        if suffix not in VALUE_SUFFIXES or not code:
            continue
        try:
            number = float(value)
        except ValueError:
            raise FrameError(PROTOCOL, "value", f"{key}={value[:20]} 不是数值") from None
        flag = area.get(f"{code}-Flag")
        metric = f"{_current_code(code) if legacy else code}-{suffix}"
        readings.append(Reading(metric, number, flag))
    return tuple(readings)


def _current_code(code: str) -> str:
    return legacy_codes().get(code, code)


@cache
def factors() -> dict[str, dict[str, str | None]]:
    """Appendix B 表B.1/B.2: each factor code's name, HJ/T 212-2005 code and default unit."""
    text = resources.files("qilu.monitor").joinpath("data/hj212_factors.json").read_text()
    loaded: dict[str, dict[str, str | None]] = json.loads(text)
    return loaded


@cache
def legacy_codes() -> dict[str, str]:
    return {str(f["old"]): code for code, f in factors().items() if f["old"]}


def _time(text: str | None) -> datetime | None:
    """YYYYMMDDhhmmss (or a QN's YYYYMMDDhhmmsszzz), Beijing time."""
    if text is None:
        return None
    try:
        moment = datetime.strptime(text[:14], "%Y%m%d%H%M%S")
    except ValueError:
        raise FrameError(PROTOCOL, "time", f"时间 {text[:20]} 不是 YYYYMMDDhhmmss") from None
    return moment.replace(tzinfo=BEIJING)


def _decimal(value: float) -> str:
    """A value as the data area writes it: decimal, never in exponent form."""
    return f"{value:.6f}".rstrip("0").rstrip(".") or "0"


def reply(frame: Frame) -> bytes | None:
    """What the platform answers: 9014 数据应答 to an upload whose Flag asks for it (bit A),
    9013 通知应答 to a notice; nothing otherwise (表C.14, C.4)."""
    flag = frame.details.get("flag")
    wants = isinstance(flag, int) and flag & 1
    if frame.message in UPLOADS and wants:
        command = "9014"
    elif frame.message in NOTICES:
        command = "9013"
    else:
        return None
    qn, pw = frame.details.get("qn"), frame.details.get("pw", "")
    head = f"QN={qn};" if qn else ""
    return pack(f"{head}ST=91;CN={command};PW={pw};MN={frame.source};Flag=4;CP=&&&&")


def encode(
    *,
    cn: str,
    mn: str,
    st: str,
    pw: str,
    qn: str | None,
    data_time: datetime | None,
    values: dict[str, float],
    flags: dict[str, str] | None = None,
    ack: bool = False,
) -> bytes:
    """A device's upload (the simulator's, and the tests'): one group per factor code, its
    values and its flag."""
    groups: dict[str, list[str]] = {}
    for metric, value in values.items():
        code = metric.rpartition("-")[0]
        groups.setdefault(code, []).append(f"{metric}={_decimal(value)}")
    for code, flag in (flags or {}).items():
        groups.setdefault(code, []).append(f"{code}-Flag={flag}")
    area = [f"DataTime={data_time.astimezone(BEIJING):%Y%m%d%H%M%S}"] if data_time else []
    area += [",".join(parts) for parts in groups.values()]
    head = f"QN={qn};" if qn else ""
    flags_byte = 4 | (1 if ack else 0)  # version 2017, no packet numbers, ack asked or not
    segment = f"{head}ST={st};CN={cn};PW={pw};MN={mn};Flag={flags_byte};CP=&&{';'.join(area)}&&"
    return pack(segment)
