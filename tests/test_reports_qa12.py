"""QA round 12 of the query tool, reports and charts: options an action does not apply are refused (never
silently ignored), and a compatibility cell whose check failed still shows the results measured on the pair."""
from __future__ import annotations

import json

import duckdb
import pytest

import benchmark_db_query as query


@pytest.fixture()
def db(sample_db_path) -> str:
    return sample_db_path


def run(capsys, *argv):
    code = query.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("option", [("--model", "bert"), ("--hardware", "cpu"), ("--batch-size", "1"),
                                    ("--since", "2020-01-01"), ("--include-simulated",), ("--metric", "latency")])
def test_sql_refuses_filters_it_would_ignore(db, capsys, option):
    # `--sql "SELECT ..." --model bert` printed every row: the filter was silently dropped
    code, out, err = run(capsys, "--db", db, "--sql", "SELECT count(*) AS n FROM benchmark_performance",
                         "--format", "csv", *option)
    assert code == 2 and out == ""
    assert "error DB000" in err and option[0] in err and "WHERE" in err and "Traceback" not in err


@pytest.mark.parametrize("option", [("--batch-size", "1"), ("--precision", "fp16"), ("--model-family", "bert"),
                                    ("--since", "2020-01-01"), ("--until", "2020-01-01")])
def test_regression_check_refuses_filters_it_does_not_apply(db, capsys, option):
    code, out, err = run(capsys, "--db", db, "--regression-check", "--last-days", "30", "--format", "json", *option)
    assert code == 2 and out == ""
    assert "error DB000" in err and option[0] in err and "Traceback" not in err


def test_regression_check_compares_the_metric_asked_for(db, capsys):
    # --metric was silently dropped: the check always compared latency
    code, out, err = run(capsys, "--db", db, "--regression-check", "--last-days", "30", "--format", "json",
                         "--metric", "throughput")
    import json

    assert code in (0, 1), err
    report = json.loads(out)
    assert report["metric"] == "throughput" and report["unit"] == "items/s" and report["higher_is_worse"] is False
    code, out, _ = run(capsys, "--db", db, "--regression-check", "--last-days", "30", "--format", "json")
    assert json.loads(out)["metric"] == "latency"  # the default stays latency


def _failed_check_beside_results(path: str) -> tuple[str, str, int]:
    """Mark one measured (model, hardware) pair's latest compatibility check as failed; return it and its count."""
    conn = duckdb.connect(path)
    try:
        model_id, hardware_id, model, hardware, n = conn.execute("""
            SELECT pr.model_id, pr.hardware_id, m.model_name, hp.hardware_type, count(*)
            FROM performance_results pr JOIN models m USING (model_id) JOIN hardware_platforms hp USING (hardware_id)
            WHERE NOT pr.is_simulated AND hp.hardware_type = 'cpu'
            GROUP BY ALL ORDER BY m.model_name LIMIT 1""").fetchone()
        columns = [r[0] for r in conn.execute("DESCRIBE hardware_compatibility").fetchall()]
        values = {"compatibility_id": 990001, "model_id": model_id, "hardware_id": hardware_id,
                  "is_compatible": False, "error_type": "OutOfMemory", "created_at": "2100-01-01 00:00:00"}
        cols = [c for c in values if c in columns]
        conn.execute(f"INSERT INTO hardware_compatibility ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                     [values[c] for c in cols])
    finally:
        conn.close()
    return model, hardware, n


def test_compatibility_matrix_no_cell_keeps_the_measured_results(db, capsys):
    # the legacy corpus has such pairs (distilbert-base-uncased on cpu: a failed check, 22 results): the
    # matrix read a bare "no" while the performance report listed the 22 results
    model, hardware, n = _failed_check_beside_results(db)
    code, out, err = run(capsys, "--db", db, "--compatibility-matrix", "--format", "json")
    assert code == 0, err
    import json

    row = next(r for r in json.loads(out) if r["model"] == model)
    assert row[hardware] == f"no (OutOfMemory; {n} result{'s' if n != 1 else ''})"


@pytest.mark.slow
def test_compatibility_chart_no_cell_keeps_the_measured_results(db):
    from benchmark_db import charts, reports
    from benchmark_db.connection import connect

    model, hardware, n = _failed_check_beside_results(db)
    conn = connect(db, read_only=True)
    try:
        table = reports.compatibility_table(conn, reports.ReportFilters())
    finally:
        conn.close()
    fig = charts.compatibility_figure(table, None)
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert f"no\n{n}" in texts


def test_sql_json_is_json_with_infinite_values(db, capsys):
    # NaN became null but an infinity was written as the bare word Infinity, which no JSON parser reads
    import json

    code, out, err = run(capsys, "--db", db, "--sql", "SELECT 'inf'::DOUBLE AS a, '-inf'::DOUBLE AS b, "
                         "'nan'::DOUBLE AS c, [1.0, 'inf'::DOUBLE] AS l, 2.5 AS d", "--format", "json")
    assert code == 0, err

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    assert json.loads(out, parse_constant=refuse) == [{"a": None, "b": None, "c": None, "l": [1.0, None], "d": 2.5}]


def test_empty_compatibility_matrix_has_the_matrix_columns(tmp_path, capsys):
    # an empty database printed the header of the table the matrix pivots (model_family, evidence, ...)
    from scripts.create_benchmark_schema import create_database

    path = str(tmp_path / "empty.duckdb")
    create_database(path, sample_data=False)
    code, out, err = run(capsys, "--db", path, "--compatibility-matrix", "--format", "csv")
    assert code == 0, err
    assert out.strip().splitlines() == ["model"]


@pytest.mark.parametrize("batch", ["-4", "0", "nan"])
@pytest.mark.slow
def test_prediction_refuses_a_batch_size_below_one(tmp_path, capsys, batch):
    # --predict ...,batch_size=-4 ended in "error: unexpected ValueError: Input X contains NaN" from sklearn
    import benchmark_db_analytics as analytics
    from tests.test_analytics import _write, law_rows

    db = _write(tmp_path / "law.duckdb", law_rows())
    code = analytics.main(["--db", db, "--analysis", "performance-prediction", "--output-dir", str(tmp_path / "o"),
                           "--prediction-features", "model_family,hardware_type,batch_size,precision",
                           "--predict", f"model_family=bert,hardware_type=cuda,batch_size={batch},precision=fp16"])
    err = capsys.readouterr().err
    assert code == 2 and "error DB000" in err and "batch_size" in err and "unexpected" not in err


@pytest.mark.slow  # about 2.1 s: outside make test-fast
def test_hardware_report_chart_refuses_a_metric_it_does_not_draw(db, tmp_path, capsys):
    # --report hardware --metric latency --output hw.png drew throughput relative to CPU all the same
    import benchmark_db_visualizer as visualizer

    out = tmp_path / "hw.png"
    code = visualizer.main(["--db", db, "--report", "hardware", "--metric", "latency", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "error DB000" in err and "latency" in err and not out.exists()
    assert visualizer.main(["--db", db, "--report", "hardware", "--output", str(out)]) == 0 and out.exists()


def test_compatibility_matrix_labels_results_measured_on_an_emulated_device(db, capsys):
    """A webgpu cell read `yes (N results)` for results measured on SwiftShader, a CPU emulation of WebGPU,
    though every other report labels them emulated."""
    conn = duckdb.connect(db)
    try:
        model, n = conn.execute("SELECT model_name, count(*) FROM performance_results WHERE hardware_type = 'cpu' "
                                "AND NOT is_simulated GROUP BY ALL ORDER BY 2 DESC, 1 LIMIT 1").fetchone()
        conn.execute("UPDATE performance_results SET is_emulated = true WHERE model_name = ? AND hardware_type = "
                     "'cpu' AND NOT is_simulated AND result_id IN (SELECT result_id FROM performance_results "
                     "WHERE model_name = ? AND hardware_type = 'cpu' AND NOT is_simulated ORDER BY result_id "
                     "LIMIT 2)", [model, model])
    finally:
        conn.close()
    code, out, _ = run(capsys, "--db", db, "--compatibility-matrix", "--format", "json")
    cells = {row["model"]: row for row in json.loads(out)}
    assert code == 0 and cells[model]["cpu"] == f"yes ({n} results, 2 emulated)"
