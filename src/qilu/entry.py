"""The `qilu` command's entry point. A bulk check of codes from standard input (`qilu codes
check -`, a register of millions of numbers piped through) starts without loading the rest of
the platform (web stack, database, settings); every other command goes to `qilu.cli`."""

from __future__ import annotations

import os
import sys


def main() -> None:
    arguments = sys.argv[1:]
    options = arguments[2:]
    if (
        arguments[:2] == ["codes", "check"]
        and options.count("-") == 1
        and set(options)
        <= {
            "-",
            "--strict",
        }
    ):
        from qilu.codes.check import check_stream

        workers = min(os.cpu_count() or 1, 4)
        strict = "--strict" in options
        valid = check_stream(sys.stdin.buffer, sys.stdout.buffer, strict=strict, workers=workers)
        sys.exit(0 if valid else 1)
    from qilu.cli import main as run

    run()


if __name__ == "__main__":
    main()
