"""The national formats' cost per record: `python -m bench.national_formats [--count N]`.

For N licences: the licence document sealed with SM2 as Qilu has sealed it since issue 13 (the
baseline), the same licence written as an OFD package (face, data index, attachment, SM3 of
every file, SM2 over the signature file), that OFD verified (every digest and the signature),
and the 电子证照标识 built with its MOD 37,36 check; and a national report message signed (SM2
over its canonical JSON). Prints each per record and as a ratio to the baseline.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

from qilu import ofd, seals
from qilu.codes.licence_ids import identifier

TYPE, ISSUER = "11370000000000238M001", "11370102000004781Y"


def timed(label: str, count: int, run: Callable[[int], object], baseline: float | None) -> float:
    started = time.perf_counter()
    for n in range(count):
        run(n)
    each = (time.perf_counter() - started) / count
    ratio = f"  {each / baseline:6.1f}× the seal" if baseline else ""
    print(f"{label:<34} {each * 1000:8.3f} ms{ratio}")
    return each


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=500)
    count = parser.parse_args().count
    key = seals.new_key()
    documents = [
        {
            "number": f"370102202612070{n:09d}",
            "type": "营业执照",
            "holder_name": "程涵晴",
            "issuer": "历下区行政审批服务局",
            "content": {"拟设立名称": "济南市历下区涵晴便利店", "经营范围": "日用百货零售"},
            "version": 1,
        }
        for n in range(count)
    ]

    def seal(n: int) -> bytes:
        body = json.dumps(documents[n], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return key.sign(body.encode())

    def face(n: int) -> ofd.Face:
        content: dict[str, str] = documents[n]["content"]  # type: ignore[assignment]
        lines = [(k, v) for k, v in content.items()]
        return ofd.Face("营业执照", lines, "历下区行政审批服务局", "2026-12-07", f"id-{n}")

    baseline = timed("seal (SM2 over the document)", count, seal, None)
    packages = [b""] * count

    def write(n: int) -> None:
        packages[n] = ofd.licence_ofd(face(n), documents[n], "00", key, signer="历下区")

    timed("OFD written and signed", count, write, baseline)
    timed(
        "OFD verified (SM3 ×8, SM2)",
        count,
        lambda n: ofd.open_licence(packages[n], key.public_key),
        baseline,
    )
    timed(
        "电子证照标识 with its check",
        count,
        lambda n: identifier(TYPE, ISSUER, f"{n:020d}"),
        baseline,
    )
    message = {"kind": "accept", "records": [{"project_no": "x" * 43, "task_code": "y" * 31}]}

    def report(n: int) -> bytes:
        body = json.dumps({**message, "batch": n}, ensure_ascii=False, sort_keys=True)
        return key.sign(body.encode())

    timed("report message signed", count, report, baseline)
    size = sum(len(p) for p in packages) / count
    print(f"{'OFD package size':<34} {size / 1024:8.1f} KB")


if __name__ == "__main__":
    main()
