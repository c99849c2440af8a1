"""QA round 10 of the tools: one format on the maintenance tool's stdout, migration figures that add up and
say what they count, summary figures that add up and say what they count, distinguishable chart series, and
the names of the CSV files of a multi-section report."""
from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

import benchmark_db_maintenance as maintenance_cli
import benchmark_db_query as query
from benchmark_db import charts, reports
from benchmark_db.reports import ReportFilters


def run(module, capsys, *argv):
    code = module.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------ 1. the maintenance tool's stdout is one format
def test_migration_stats_with_another_step_keep_stdout_one_json_document(sample_db_path, capsys):
    """The JSON report used to be followed on stdout by the step summary table: neither json.loads nor a
    table reader could read the whole. The report owns stdout; the step summary goes to stderr."""
    code, out, err = run(maintenance_cli, capsys, "--check-integrity", "--migration-stats", "--db", sample_db_path)
    assert code == 0
    report = json.loads(out)
    assert set(report) >= {"totals", "tables"}
    assert "check-integrity" in err and "no problems" in err and "migration-stats" in err
    code, out, err = run(maintenance_cli, capsys, "--check-integrity", "--migration-stats", "--format", "csv",
                         "--db", sample_db_path)
    assert code == 0 and "check-integrity" not in out and "step" not in out.split("\n")[1]
    assert "check-integrity,ok,no problems" in err


def test_migration_stats_to_an_unknown_extension_is_a_db000_line(sample_db_path, tmp_path, capsys):
    """`--output x.yaml` silently wrote CSV-like text into x.yaml."""
    target = tmp_path / "stats.yaml"
    code, out, err = run(maintenance_cli, capsys, "--migration-stats", "--output", str(target), "--db",
                         sample_db_path)
    assert code == 2 and out == "" and not target.exists()
    assert err.count("\n") == 1 and err.startswith(f"error DB000: --output {target}: this tool does not write YAML")
    # an explicit --format still writes any name, and the known extensions keep working
    assert run(maintenance_cli, capsys, "--migration-stats", "--output", str(target), "--format", "json",
               "--db", sample_db_path)[0] == 0
    assert "totals" in json.loads(target.read_text())
    assert run(maintenance_cli, capsys, "--migration-stats", "--output", str(tmp_path / "s.md"), "--db",
               sample_db_path)[0] == 0


def test_query_output_to_an_unknown_extension_is_a_db000_line(sample_db_path, tmp_path, capsys):
    target = tmp_path / "summary.yaml"
    code, out, err = run(query, capsys, "--db", sample_db_path, "--report", "summary", "--output", str(target))
    assert code == 2 and not target.exists() and "error DB000: --output " in err and "this tool does not write YAML" in err


# ------------------------------------------------------ 2. migration figures that add up and say what they are
def _log(conn, path, status, rows_by_table=None):
    rows = sum(rows_by_table.values()) if rows_by_table else 0
    conn.execute("INSERT INTO ingested_files (path, sha256, kind, status, rows, rows_by_table) "
                 "VALUES (?, ?, 'performance', ?, ?, ?)",
                 [path, path, status, rows, json.dumps(rows_by_table) if rows_by_table else None])


def test_migration_stats_files_add_up_and_rows_say_what_they_count(db_path, capsys):
    """`rows_imported` summed the log's per-file counts, which count a model two files name twice; the
    summary line left the skipped files out of `N files (i ingested, f failed)`."""
    conn = duckdb.connect(db_path)
    conn.execute("INSERT INTO models (model_id, model_name) VALUES (1, 'bert')")
    _log(conn, "a.json", "ingested", {"models": 1, "performance_results": 2})
    _log(conn, "b.json", "ingested", {"models": 1, "performance_results": 2})
    _log(conn, "c.json", "skipped")
    _log(conn, "d.json", "failed")
    conn.close()
    code, out, err = run(maintenance_cli, capsys, "--migration-stats", "--format", "json", "--db", db_path)
    assert code == 0
    report = json.loads(out)
    totals = report["totals"]
    assert (totals["files"], totals["ingested"], totals["skipped"], totals["failed"]) == (4, 2, 1, 1)
    assert totals["rows_logged"] == 6
    by_table = {r["table"]: r for r in report["rows_by_table"]}
    assert (by_table["models"]["rows_logged"], by_table["models"]["rows_stored"]) == (2, 1)
    assert (by_table["performance_results"]["rows_logged"], by_table["performance_results"]["rows_stored"]) == (4, 0)
    assert "migration-stats: 4 files (2 ingested, 1 skipped, 1 failed)" in err
    code, out, _ = run(maintenance_cli, capsys, "--migration-stats", "--format", "markdown", "--db", db_path)
    assert "rows_logged" in out and "rows_imported" not in out and "## Rows by table" in out


# ---------------------------------------------------------- 3. summary figures that add up and say what they are
def test_summary_integration_statuses_add_up_and_counts_are_labelled(sample_db_path):
    conn = duckdb.connect(sample_db_path)
    conn.execute("INSERT INTO integration_test_results (test_result_id, test_name, status) VALUES "
                 "(9001, 'test_later', 'skipped'), (9002, 'test_todo', 'not_implemented')")
    # a test logged without a time had no latest status (arg_max by created_at skips NULL) and fell out
    conn.execute("INSERT INTO integration_test_results (test_result_id, test_name, status, created_at) VALUES "
                 "(9003, 'test_untimed', 'passed', NULL)")
    try:
        summary = dict(reports.summary_table(conn, ReportFilters()).itertuples(index=False))
        models, runs = conn.execute("SELECT (SELECT count(*) FROM models), (SELECT count(*) FROM test_runs)").fetchone()
    finally:
        conn.close()
    total = int(summary["integration tests"])
    statuses = {k: int(v) for k, v in summary.items() if k.startswith("integration tests ") and "(latest run)" in k}
    assert statuses["integration tests skipped (latest run)"] == 1
    assert statuses["integration tests not_implemented (latest run)"] == 1
    assert sum(statuses.values()) == total and not any("(none)" in k for k in statuses)
    assert "models" not in summary and "test runs" not in summary
    assert summary["models in the database"] == str(models) and summary["test runs in the database"] == str(runs)
    assert int(summary["models with measured performance results"]) <= models
    assert int(summary["test runs with measured performance results"]) <= runs


# ----------------------------------------------------------------------- 4. distinguishable chart series
@pytest.mark.slow  # the first matplotlib figure of a worker takes 1.5 s
def test_series_of_one_hardware_at_two_precisions_get_different_colours():
    rows = []
    for hardware, precision, value in (("cpu", "fp32", 10.0), ("cpu", None, 5.0), ("cuda", None, 50.0)):
        for batch in (1, 4):
            rows.append({"model": "bert", "hardware": hardware, "batch_size": batch, "precision": precision,
                         "is_emulated": False, "results": 3, "basis": "per-result values",
                         "throughput_items_per_s_p10": value * 0.9, "throughput_items_per_s_p50": value * batch,
                         "throughput_items_per_s_p90": value * 1.1 * batch})
    fig = charts.comparison_figure(pd.DataFrame(rows), "throughput", "hardware")
    try:
        from matplotlib.colors import to_hex

        handles, labels = fig.axes[0].get_legend_handles_labels()  # errorbar containers: data line first
        colours = {label: to_hex(handle.lines[0].get_color()) for handle, label in zip(handles, labels)}
    finally:
        charts._plt().close(fig)
    assert set(colours) == {"cpu fp32", "cpu (no precision)", "cuda (no precision)"}
    assert len(set(colours.values())) == 3, colours


# ----------------------------------------------------------------- 5. names of the CSV files of a report
@pytest.mark.parametrize("kind, stem, expected", [
    ("compatibility", "compatibility", ["compatibility-details.csv", "compatibility.csv"]),
    ("performance", "perf", ["perf-by_hardware.csv", "perf.csv"]),
    ("hardware", "hw", ["hw-fastest.csv", "hw.csv"]),
])
def test_csv_sections_are_named_stem_dash_section_without_repeating_the_stem(sample_db_path, tmp_path, capsys,
                                                                              kind, stem, expected):
    """`--report compatibility --output compatibility.csv` wrote compatibility.compatibility.csv."""
    target = tmp_path / "out" / f"{stem}.csv"
    code, out, _ = run(query, capsys, "--db", sample_db_path, "--report", kind, "--format", "csv",
                       "--output", str(target))
    assert code == 0
    assert sorted(p.name for p in target.parent.iterdir()) == expected
    assert all(name in out for name in expected)
