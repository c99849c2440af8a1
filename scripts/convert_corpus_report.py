#!/usr/bin/env python3
"""Account for every JSON file under the given folders: what the converter makes of each (no database).

    python scripts/convert_corpus_report.py ../shared/data/legacy_corpus ../shared/data/foreign
    python scripts/convert_corpus_report.py ../shared/data/legacy_corpus --per-file --format json

Prints files by kind and status, rows by table, the reasons files were skipped or failed, and the checks
the issue asks for (performance rows with a placeholder model, zero throughput/latency, simulated rows).
Exit code 1 when a file is unaccounted for (a failure other than invalid JSON) or a check finds a problem.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark_db.cli import add_common_options, add_output_options, resolve_format, run_cli, write_text

PLACEHOLDERS = {"", "unknown", "test", "none", "null", "n/a"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convert_corpus_report.py", description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", metavar="FOLDER", help="folders searched for *.json files")
    parser.add_argument("--per-file", action="store_true", help="one line per file instead of the summary")
    add_output_options(parser, formats=("table", "json", "csv", "markdown"))
    add_common_options(parser, database=False)  # it reads files only: no --lock-timeout
    return parser


def account_files(paths: list[Path]) -> list[dict]:
    """One dict per file: path, kind, status, reason, rows per table, conversions and the checks' counts."""
    from benchmark_db.convert import convert_document

    out = []
    for path in paths:
        data = path.read_bytes()
        conv = convert_document(data, str(path), hashlib.sha256(data).hexdigest())
        perf = [r for r in conv.records if r.TABLE == "performance_results"]
        out.append({
            "path": str(path), "kind": conv.kind, "status": conv.status, "reason": conv.reason,
            "rows": conv.rows_by_table(), "conversions": conv.conversions,
            "placeholder_model_rows": sum(1 for r in perf if (r.model_name or "").strip().lower() in PLACEHOLDERS),
            "zero_value_rows": sum(1 for r in perf if r.throughput_items_per_second == 0
                                   or r.average_latency_ms == 0),
            "simulated_rows": sum(1 for r in perf if r.is_simulated),
        })
    return out


def summarize(files: list[dict]) -> dict:
    by_kind = Counter((f["kind"], f["status"]) for f in files)
    rows: Counter = Counter()
    for f in files:
        rows.update(f["rows"])
    reasons = Counter((f["status"], f["reason"]) for f in files if f["status"] != "ingested")
    return {
        "files": len(files),
        "by_kind": [{"kind": k, "status": s, "files": n} for (k, s), n in sorted(by_kind.items())],
        "rows_by_table": dict(sorted(rows.items())),
        "reasons": [{"status": s, "reason": r, "files": n} for (s, r), n in reasons.most_common()],
        "placeholder_model_rows": sum(f["placeholder_model_rows"] for f in files),
        "zero_value_rows": sum(f["zero_value_rows"] for f in files),
        "simulated_performance_rows": sum(f["simulated_rows"] for f in files),
        "unaccounted": [f["path"] for f in files if f["status"] == "failed" and f["kind"] != "invalid"
                        or f["status"] not in ("ingested", "skipped", "failed")],
    }


def main(argv: list[str] | None = None) -> int:
    from benchmark_db.errors import UsageError
    from benchmark_db.output import render

    def run(args) -> int:
        paths = []
        for folder in args.folders:
            root = Path(folder)
            if not root.exists():
                raise UsageError(f"{folder} does not exist", "pass folders that hold result files")
            paths.extend(sorted(root.rglob("*.json")) if root.is_dir() else [root])
        files = account_files(paths)
        fmt = resolve_format(args.format, args.output, args.output_formats)
        if args.per_file:
            table = [{**f, "rows": sum(f["rows"].values()), "conversions": len(f["conversions"])} for f in files]
            write_text(render(table, fmt), args.output)
        else:
            summary = summarize(files)
            if fmt == "json":
                write_text(render([summary], "json"), args.output)
            else:
                parts = [render(summary["by_kind"], fmt),
                         render([{"table": t, "rows": n} for t, n in summary["rows_by_table"].items()], fmt),
                         render(summary["reasons"], fmt),
                         render([{"files": summary["files"],
                                  "placeholder_model_rows": summary["placeholder_model_rows"],
                                  "zero_value_rows": summary["zero_value_rows"],
                                  "simulated_performance_rows": summary["simulated_performance_rows"],
                                  "unaccounted_files": len(summary["unaccounted"])}], fmt)]
                write_text("\n".join(parts), args.output)
            files_bad = summary["unaccounted"] or summary["placeholder_model_rows"] or summary["zero_value_rows"]
            return 1 if files_bad else 0
        return 0

    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
