"""`qilu monitor decode` (issue 15): one frame per line in, one JSON object per line out."""

from __future__ import annotations

import json
from pathlib import Path

from ..test_cli import run
from .test_hj212 import GUOCAY, STANDARD
from .test_jt808 import SMALLCHI_LOCATION
from .test_sl651 import TIMED


def decoded(protocol: str, lines: list[str]) -> tuple[int, list[dict[str, object]]]:
    done = run("monitor", "decode", "--protocol", protocol, "-", stdin="\n".join(lines) + "\n")
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def test_each_line_becomes_one_json_object_and_a_refusal_makes_exit_1() -> None:
    code, out = decoded("hj212", [GUOCAY.decode().strip(), STANDARD.decode().strip()])
    assert code == 0 and [o["message"] for o in out] == ["2011", "1062"]
    first = out[0]
    assert set(first) >= {"ok", "protocol", "message", "source", "time", "readings"}
    assert first["time"] == "2019-10-12T13:37:10+08:00"
    assert first["readings"][0] == {"metric": "a21005-Rtd", "value": 0.0, "flag": "N"}
    code, out = decoded("hj212", ["##0005hello1234", STANDARD.decode().strip()])
    assert code == 1 and out[0] == {
        "ok": False,
        "protocol": "hj212",
        "error": "hj212.crc",
        "reason": out[0]["reason"],
    }
    assert out[1]["ok"] is True  # one bad line does not stop the rest


def test_binary_protocols_read_hex_lines(tmp_path: Path) -> None:
    code, out = decoded("jt808", [SMALLCHI_LOCATION, "not hex"])
    assert code == 1 and out[0]["alarms"] == ["emergency"] and out[0]["status"] == ["located"]
    assert {r["metric"] for r in out[0]["readings"]} >= {"lat", "lng", "speed_kmh"}  # type: ignore[union-attr]
    assert out[1]["error"] == "jt808.hex"
    frames = tmp_path / "frames.txt"
    frames.write_text(TIMED + "\n")
    done = run("monitor", "decode", "--protocol", "sl651", str(frames))
    assert done.returncode == 0 and json.loads(done.stdout)["source"] == "0011223344"
