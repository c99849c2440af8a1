#!/usr/bin/env python3
"""The main job, end to end: measure the small model set on this machine's CPU and OpenVINO into the database,
then write the HTML report and print where it is.

    python scripts/demo.py [--db ./benchmark_db.duckdb] [--report reports/benchmark_report.html]

Every number comes from a real measurement of this run; nothing is made up. Each stage is the documented
command's own `main()`, so the demo shows exactly what those commands do.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_db.cli import add_common_options, add_db_option, run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="demo.py", description=__doc__.split("\n\n")[0].replace("\n", " "))
    add_db_option(parser)
    parser.add_argument("--report", default="reports/benchmark_report.html", metavar="FILE",
                        help="where to write the HTML report (default: %(default)s)")
    parser.add_argument("--hardware", default="cpu,openvino", help="platforms to measure, separated by commas or spaces (default: %(default)s)")
    add_common_options(parser)
    return parser


def hardware_list(hardware: str) -> list[str]:
    """The platforms of --hardware, separated by spaces or commas as the runners take them, checked by the
    runners' own rules before the first stage starts: a bad name ended the demo with DB000 after it had
    announced "== 1/3 measuring"."""
    from benchmark_db.errors import UsageError
    from runners.engine import resolve_hardware

    platforms = [name for name in re.split(r"[\s,]+", hardware) if name]
    if not platforms:
        raise UsageError("--hardware names no platform", "pass e.g. --hardware cpu,openvino or \"cpu openvino\"")
    resolve_hardware(platforms)  # UsageError (DB000) for an unknown name
    return platforms


def run_demo(db: str | None, report: str, hardware: str, quiet: bool = False) -> int:
    import benchmark_db_query
    from benchmark_db.connection import resolve_db_path
    from runners import run_model_benchmarks

    db = resolve_db_path(db)
    platforms = hardware_list(hardware)
    say = (lambda _text: None) if quiet else (lambda text: print(text, file=sys.stderr))  # --quiet: nothing
    say(f"== 1/3 measuring the small model set on {', '.join(platforms)} into {db}")
    code = run_model_benchmarks.main(["--db", db, "--models-set", "small", "--hardware", *platforms,
                                      "--batch-sizes", "1,4"] + (["--quiet"] if quiet else []))
    if code != 0:
        return code
    say("== 2/3 summary of what the database now holds")
    code = benchmark_db_query.main(["--db", db, "--report", "summary", "--format", "table"])
    if code != 0:
        return code
    say("== 3/3 writing the HTML report")
    code = benchmark_db_query.main(["--db", db, "--report", "performance", "--format", "html", "--output", report])
    if code == 0:
        print(f"HTML report: {Path(report).resolve()}")
    return code


def main(argv: list[str] | None = None) -> int:
    return run_cli(build_parser(), lambda a: run_demo(a.db, a.report, a.hardware, a.quiet), argv)


if __name__ == "__main__":
    raise SystemExit(main())
