"""`qilu monitor decode` (issue 15): one frame per line in, one JSON object per line out."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from qilu.monitor import hj212
from qilu.settings import Settings

from ..services.test_cli import store_env
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_registered_device_is_heard_by_the_listen_command(empty_store: Settings) -> None:
    env = {**store_env(empty_store), "QILU_MONITOR_JT808_PORT": "0", "QILU_MONITOR_SL651_PORT": "0"}
    port = free_port()
    env["QILU_MONITOR_HJ212_PORT"] = str(port)
    assert run("db", "upgrade", env=env).returncode == 0
    added = run(
        "monitor", "devices", "add", "--protocol", "hj212", "--code", "Y80110010000010",
        "--kind", "air_station", "--name", "历下空气站", "--division", "370102", env=env,
    )  # fmt: skip
    assert added.returncode == 0 and "已登记设备" in added.stdout, added.stderr
    refused = run(
        "monitor", "devices", "add", "--protocol", "hj212", "--code", "X",
        "--kind", "air_station", "--name", "站", "--division", "110101", env=env,
    )  # fmt: skip
    assert refused.returncode == 1 and "山东省" in refused.stderr
    listening = subprocess.Popen(
        [sys.executable, "-m", "qilu.entry", "monitor", "listen", "--host", "127.0.0.1"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert listening.stdout is not None
        assert f"hj212 {port}" in listening.stdout.readline()
        upload = hj212.encode(
            cn="2011", mn="Y80110010000010", st="22", pw="123456", qn="20261207090000001",
            data_time=None, values={"a34004-Rtd": 41.0}, ack=True,
        )  # fmt: skip
        with socket.create_connection(("127.0.0.1", port), timeout=10) as device:
            device.sendall(upload)
            answer = device.recv(4096)
        assert hj212.decode(answer).message == "9014"
    finally:
        listening.terminate()
        listening.wait(10)
