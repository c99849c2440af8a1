"""QA round 16b of the compatibility matrix and the visualizer: simulated results read `simulated` in the
matrix and its report (they read as measured), the compatibility chart keeps real, emulated and simulated
results in columns of their own (one cell summed them), and an --output the visualizer cannot write is the
query tool's one-line DB000 (it was an unexpected FileNotFoundError)."""
from __future__ import annotations

import datetime as dt
import json

import pytest

import benchmark_db_query as query
import benchmark_db_visualizer as visualizer
from tests.report_fixtures import build_history

# every test here writes a database and runs a report or draws a chart: each over a third of a second
pytestmark = pytest.mark.slow

START = dt.datetime(2025, 3, 1, 8, 0, 0)


def build_webgpu_mix(path: str) -> str:
    """bert-base-uncased on cpu and on webgpu three times over: a real adapter, SwiftShader (emulated) and a
    mock (simulated), two results each."""
    from benchmark_db_models import BenchmarkDB, PerformanceResults

    with BenchmarkDB(path) as db, db.transaction():
        bert = db.get_or_add_model("bert-base-uncased", model_family="bert")
        records = []
        for hardware, device, emulated, simulated, latency in (
                ("cpu", "Test CPU", False, False, 50.0), ("webgpu", "NVIDIA RTX 4090 (Dawn)", False, False, 10.0),
                ("webgpu", "SwiftShader", True, False, 40.0), ("webgpu", "mock", False, True, 1.0)):
            hardware_id = db.get_or_add_hardware(hardware, device)
            for batch in (1, 4):
                records.append(PerformanceResults(
                    model_id=bert, hardware_id=hardware_id, model_name="bert-base-uncased", hardware_type=hardware,
                    test_case="inference", batch_size=batch, precision="fp32", average_latency_ms=latency * batch,
                    throughput_items_per_second=1000.0 / latency, is_emulated=emulated, is_simulated=simulated,
                    created_at=START + dt.timedelta(days=batch)))
        db.insert_many(records)
    return path


@pytest.fixture()
def mix_db(db_path) -> str:
    return build_webgpu_mix(db_path)


def run_query(capsys, *argv):
    code = query.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_compatibility_matrix_labels_simulated_results(mix_db, capsys):
    """With --include-simulated a webgpu cell read `yes (2 results); yes (2 results, emulated); yes (2 results)`:
    the third, simulated, unlabelled, and its row in the report had is_simulated null."""
    code, out, err = run_query(capsys, "--db", mix_db, "--compatibility-matrix", "--include-simulated",
                               "--format", "json")
    assert code == 0, err
    cells = {row["model"]: row for row in json.loads(out)}
    assert cells["bert-base-uncased"]["webgpu"] == ("yes (2 results); yes (2 results, emulated); "
                                                   "yes (2 results, simulated)")
    assert cells["bert-base-uncased"]["cpu"] == "yes (2 results)"
    code, out, err = run_query(capsys, "--db", mix_db, "--report", "compatibility", "--include-simulated",
                               "--format", "json")
    assert code == 0, err
    rows = {row["device"]: row for row in json.loads(out)["sections"]["compatibility"]["rows"]}
    assert rows["mock"]["is_simulated"] is True and rows["mock"]["simulated_results"] == 2
    assert rows["SwiftShader"]["is_simulated"] is False and rows["SwiftShader"]["emulated_results"] == 2
    assert rows["NVIDIA RTX 4090 (Dawn)"]["is_simulated"] is False
    # without --include-simulated the simulated device is left out, as before
    code, out, _ = run_query(capsys, "--db", mix_db, "--compatibility-matrix", "--format", "json")
    assert json.loads(out)[0]["webgpu"] == "yes (2 results); yes (2 results, emulated)"


def test_compatibility_matrix_counts_simulated_results_beside_measured_ones(tmp_path, capsys):
    """One device with measured and simulated results: the cell says how many are simulated, and the pair's
    verdict (resting on measured results too) is not simulated."""
    path = build_history(str(tmp_path / "h.duckdb"), runs=3, step_at=None)
    import duckdb

    conn = duckdb.connect(path)
    try:  # the simulated rocm result moves to cuda's device, beside its three measured results
        conn.execute("UPDATE performance_results SET hardware_id = (SELECT hardware_id FROM hardware_platforms "
                     "WHERE hardware_type = 'cuda'), hardware_type = 'cuda' WHERE is_simulated")
    finally:
        conn.close()
    code, out, err = run_query(capsys, "--db", path, "--report", "compatibility", "--include-simulated",
                               "--format", "json")
    assert code == 0, err
    report = json.loads(out)["sections"]
    matrix = {row["model"]: row for row in report["compatibility_matrix"]["rows"]}
    assert matrix["bert-base-uncased"]["cuda"] == "yes (4 results, 1 simulated)"
    cuda = [row for row in report["compatibility"]["rows"] if row["hardware"] == "cuda"]
    assert [(row["performance_results"], row["simulated_results"], row["is_simulated"]) for row in cuda] == \
        [(4, 1, False)]


def _drawn_figures(monkeypatch) -> list:
    """The figures the visualizer saves, kept for a look at their labels."""
    from benchmark_db import charts

    figures = []
    save = charts.save_figure

    def keep(fig, path):
        figures.append(fig)
        return save(fig, path)

    monkeypatch.setattr(charts, "save_figure", keep)
    return figures


def test_compatibility_chart_keeps_emulated_and_simulated_results_apart(mix_db, tmp_path, monkeypatch, capsys):
    """The chart's webgpu cell read `yes 4` (`yes 6` with --include-simulated): real, emulated and simulated
    results summed into one cell, where the matrix keeps them apart."""
    figures = _drawn_figures(monkeypatch)
    for extra in ([], ["--include-simulated"]):
        out = tmp_path / f"compat{len(extra)}.png"
        assert visualizer.main(["--db", mix_db, "--compatibility-matrix", "--output", str(out), *extra]) == 0
        assert out.stat().st_size > 0
    capsys.readouterr()
    plain, with_simulated = (fig.axes[0] for fig in figures)
    assert [t.get_text() for t in plain.get_xticklabels()] == ["cpu", "webgpu", "webgpu (emulated)"]
    assert [t.get_text() for t in with_simulated.get_xticklabels()] == ["cpu", "webgpu", "webgpu (emulated)",
                                                                       "webgpu (simulated)"]
    assert sorted(t.get_text() for t in with_simulated.texts) == ["yes\n2"] * 4  # two results a cell, no sum


def test_compatibility_chart_draws_a_simulated_check_in_a_simulated_column():
    import pandas as pd

    from benchmark_db import charts

    table = pd.DataFrame([
        {"model": "bert", "hardware": "cpu", "is_compatible": True, "performance_results": 3,
         "emulated_results": 0, "simulated_results": 0, "is_simulated": False},
        {"model": "bert", "hardware": "qualcomm", "is_compatible": False, "performance_results": 0,
         "emulated_results": 0, "simulated_results": 0, "is_simulated": True},
    ])
    ax = charts.compatibility_figure(table).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cpu", "qualcomm (simulated)"]
    assert sorted(t.get_text() for t in ax.texts) == ["no", "yes\n3"]


@pytest.mark.parametrize("action, name", [
    pytest.param(("--report", "summary"), "r.html", id="html"),
    pytest.param(("--compatibility-matrix",), "c.png", id="png")])
def test_visualizer_output_it_cannot_write_is_the_query_tools_db000(tmp_path, capsys, action, name):
    """An --output under a file (a folder that cannot be made) was `error: unexpected FileNotFoundError` (or
    FileExistsError) from the visualizer, where the query tool says `error DB000: cannot write ...`."""
    db = build_history(str(tmp_path / "h.duckdb"), runs=2, step_at=None)
    (tmp_path / "afile").write_text("in the way")
    code, out, err = run_query(capsys, "--db", db, "--report", "summary", "--output", str(tmp_path / "afile" / "x.json"))
    assert code == 2 and err.startswith("error DB000: cannot write ")
    target = tmp_path / "afile" / name
    code = visualizer.main(["--db", db, *action, "--output", str(target)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err == err.replace("x.json", name)  # the very line of the query tool, the path aside
