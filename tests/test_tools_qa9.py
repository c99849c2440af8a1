"""QA round 9 of the tools: maintenance on a missing database, reports whose filters match nothing, CSV of
multi-section reports, and the size of the analytics hardware-comparison chart."""
from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest

import benchmark_db_maintenance as maintenance_cli
import benchmark_db_query as query


def run(module, capsys, *argv):
    code = module.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ 1. maintenance on a missing database
# The guide's maintenance lines (and its cron line on a new machine) run before anything was ingested: a
# missing database is created, with a warning, as by every writer. What a typo'd --db used to hide ("no
# problems", exit 0) is said: --check-integrity reports the database it created as a problem (exit 1).
@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_check_integrity_of_a_database_it_had_to_create_is_a_finding(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    typo = tmp_path / "typo.duckdb"
    code, out, err = run(maintenance_cli, capsys, "--db", str(typo), "--check-integrity")
    assert code == 1 and typo.exists()
    assert f"database {typo} does not exist; creating it with the current schema" in err
    assert f"{typo} did not exist: this run created it empty (check --db if you meant an existing database)" in err
    # once it exists (empty, as created), it has no problems
    assert run(maintenance_cli, capsys, "--db", str(typo), "--check-integrity")[0] == 0


@pytest.mark.parametrize("steps", [
    ["--migration-stats", "--output", "stats.json"],
    ["--optimize-db", "--vacuum"],
    ["--optimize-db", "--vacuum", "--backup", "--purge-backups", "--backup-retention", "30", "--clean-json",
     "--older-than", "30", "--action", "archive"],  # the guide's cron line
])
def test_the_guides_maintenance_lines_work_before_anything_was_ingested(tmp_path, monkeypatch, capsys, steps):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(maintenance_cli, capsys, *steps)
    assert code == 0 and (tmp_path / "benchmark_db.duckdb").exists(), err
    assert "does not exist; creating it with the current schema" in err


def test_maintenance_without_a_database_still_purges_and_restores(sample_db_path, tmp_path, monkeypatch, capsys):
    """What needs no existing database keeps working: purge alone opens none, a restore makes its target."""
    monkeypatch.chdir(tmp_path)
    assert run(maintenance_cli, capsys, "--backup", "--backup-dir", "bk", "--db", sample_db_path)[0] == 0
    backup = next(p for p in (tmp_path / "bk").iterdir() if p.name.endswith(".duckdb"))
    target = tmp_path / "restored.duckdb"
    code, out, _ = run(maintenance_cli, capsys, "--restore", str(backup), "--db", str(target))
    assert code == 0 and "restored to" in out and target.exists()
    code, _, _ = run(maintenance_cli, capsys, "--purge-backups", "--backup-dir", "bk", "--db", "absent.duckdb")
    assert code == 0 and not (tmp_path / "absent.duckdb").exists()
    code, _, _ = run(maintenance_cli, capsys, "--check-integrity", "--db", str(target))
    assert code == 0


# --------------------------------------------------------------- 2. a summary whose filters match nothing
@pytest.mark.slow  # over 0.35 s here: outside make test-fast
@pytest.mark.parametrize("extra, exists", [(["--batch-size", "999"], "batch sizes: 1, "),
                                           (["--precision", "int3"], "precisions: ")])
def test_summary_whose_filters_match_no_result_says_so_naming_them(sample_db_path, capsys, extra, exists):
    """The summary printed all-zero performance figures (exit 0) with no hint: the compatibility checks, which
    carry no batch size or precision, are listed anyway. It stays a report, exit 0, since it does show rows
    (test_reports_qa8 relies on that; DB004 is for reports where nothing at all matches, as with --model),
    but says on stderr and in the report's notes that no performance result matched, naming the filters."""
    said = f"no performance results match {' '.join(extra)}; simulated results excluded; {exists}"
    code, out, err = run(query, capsys, "--db", sample_db_path, "--report", "summary", "--format", "csv", *extra)
    assert code == 0 and out.startswith("item,value")
    assert said in err and "WARNING" in err
    code, out, err = run(query, capsys, "--db", sample_db_path, "--report", "summary", "--format", "markdown", *extra)
    assert code == 0 and f"- {said}" in out
    # a filter that matches: no warning
    code, out, err = run(query, capsys, "--db", sample_db_path, "--report", "summary", "--format", "csv",
                         "--batch-size", "1")
    assert code == 0 and "no performance results match" not in err
    # nothing at all matches: DB004 as before
    code, _, err = run(query, capsys, "--db", sample_db_path, "--report", "summary", "--model", "nosuch")
    assert code == 2 and err.startswith("error DB004: ")


# ------------------------------------------------------------------- 3. CSV of a multi-section report
def test_csv_report_to_a_file_writes_one_csv_per_section(sample_db_path, tmp_path, capsys):
    from benchmark_db import reports
    from benchmark_db.connection import connect

    target = tmp_path / "out" / "perf.csv"
    code, out, _ = run(query, capsys, "--db", sample_db_path, "--report", "performance", "--format", "csv",
                       "--output", str(target))
    assert code == 0
    with connect(sample_db_path, read_only=True) as conn:
        report = reports.build_report(conn, "performance")
    sibling = tmp_path / "out" / "perf-by_hardware.csv"
    assert sorted(p.name for p in target.parent.iterdir()) == ["perf-by_hardware.csv", "perf.csv"]
    # the main file is still the main table alone, as before; each other section is a plain CSV of its own
    main_rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(main_rows) == len(report.sections[0].frame) and "throughput_items_per_s_mean" in main_rows[0]
    pivot = list(csv.reader(io.StringIO(sibling.read_text())))
    assert pivot[0] == [str(c) for c in report.sections[1].frame.columns] and len(pivot) == len(report.sections[1].frame) + 1
    assert str(target) in out and str(sibling) in out and report.sections[1].title in out


def test_csv_report_on_stdout_names_the_sections_it_leaves_out(sample_db_path, capsys):
    code, out, err = run(query, capsys, "--db", sample_db_path, "--report", "summary", "--format", "csv")
    assert code == 0 and out.startswith("item,value")
    assert "Fastest hardware per model and configuration" not in out  # stdout stays one table for pipes
    assert "1 more section" in err and "'Fastest hardware per model and configuration'" in err and "--output" in err
    code, out, err = run(query, capsys, "--db", sample_db_path, "--report", "integration", "--format", "csv")
    assert code == 0 and "section" not in err  # one section: nothing is left out, nothing to say


# ------------------------------------------------------------- 4. the hardware-comparison chart's size
def _many_models_db(path: Path, models: int, hardware: list[str]) -> str:
    from tests.test_analytics import _write

    when = dt.datetime(2026, 1, 1, 8, 0)
    rows = [dict(model=f"organisation-{i}/a-rather-long-model-name-{i}-base-uncased", family=f"fam{i % 5}",
                 params=100, hw=hw, batch=1, precision="fp32", latency=10.0 / (1 + j) * (1 + i % 3), when=when)
            for i in range(models) for j, hw in enumerate(hardware)]
    return _write(path, rows)


@pytest.mark.slow  # writes a database of 240 results and renders the chart (about 2 s)
def test_hardware_comparison_chart_stays_bounded_with_many_models(tmp_path, capsys):
    from PIL import Image

    import benchmark_db_analytics as analytics

    hardware = ["cpu", "cuda", "openvino", "mps", "rocm", "webgpu"]
    db = _many_models_db(tmp_path / "wide.duckdb", 40, hardware)
    code = analytics.main(["--db", db, "--analysis", "hardware-comparison", "--output-dir", str(tmp_path / "a")])
    out = capsys.readouterr().out
    assert code == 0
    width, height = Image.open(tmp_path / "a" / "hardware-comparison.png").size
    assert width <= 2100 and height <= 2700  # was 7260 x 720 px for 40 models
    assert "models are shown" in out  # the models left out of the chart are named as such in the summary
    rows = list(csv.DictReader(open(tmp_path / "a" / "hardware-comparison.csv")))
    assert len({r["model"] for r in rows}) == 40  # the data keeps every model
