"""benchmark_db_analytics: every analysis on the sample database, prediction on a synthetic dataset with a
known performance law (must beat the baseline clearly) and on a tiny one (must decline), trends and
anomalies on a history with a known step, and the interactive page in headless Chromium."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import benchmark_db_analytics as analytics
from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

T0 = dt.datetime(2026, 1, 1, 8, 0)


def _write(path, rows):
    """rows: dicts with model, family, params, hw, batch, precision, latency, samples, when, simulated."""
    with BenchmarkDB(str(path)) as db, db.transaction():
        records, runs = [], {}
        for r in rows:
            when = r["when"]
            if when not in runs:
                runs[when] = db.insert_test_runs(TestRuns(test_name=f"run {when:%Y-%m-%d %H:%M}", started_at=when))
            mid = db.get_or_add_model(r["model"], model_family=r["family"], parameters_million=r["params"])
            hid = db.get_or_add_hardware(r["hw"])
            lat = float(r["latency"])
            records.append(PerformanceResults(
                run_id=runs[when], model_id=mid, hardware_id=hid, model_name=r["model"], hardware_type=r["hw"],
                test_case="inference", batch_size=r["batch"], sequence_length=128, precision=r["precision"],
                average_latency_ms=lat, throughput_items_per_second=r["batch"] * 1000 / lat,
                memory_peak_mb=r["params"] * 4 + r["batch"] * 8, latency_samples_ms=r.get("samples"),
                is_simulated=r.get("simulated", False), created_at=when))
        db.insert_many(records)
    return str(path)


def law_rows(seed=0, noise=0.05):
    """Throughput follows a known law: speed(hw) * prec(precision) * batch^0.7 / params^0.9, with noise."""
    rng = np.random.default_rng(seed)
    speed = {"cpu": 1.0, "cuda": 20.0, "openvino": 2.0, "mps": 6.0}
    prec = {"fp32": 1.0, "fp16": 1.8, "int8": 2.5}
    families = {"bert": 110, "t5": 60, "vit": 86, "whisper": 39, "clip": 150, "llama": 1100, "qwen2": 500}
    rows = []
    for fam, params in families.items():
        for hw, sp in speed.items():
            for batch in (1, 2, 4, 8, 16, 32):
                for p, pf in prec.items():
                    if rng.random() < 0.2:  # leave some configurations untested
                        continue
                    thr = 2000 * sp * pf * batch ** 0.7 / params ** 0.9 * rng.lognormal(0, noise)
                    rows.append(dict(model=f"{fam}-model", family=fam, params=params, hw=hw, batch=batch,
                                     precision=p, latency=batch * 1000 / thr, when=T0))
    return rows


@pytest.fixture(scope="module")
def law_db(tmp_path_factory):
    return _write(tmp_path_factory.mktemp("law") / "law.duckdb", law_rows())


def run_main(argv, capsys):
    code = analytics.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_is_fast_and_lists_the_analyses(capsys):
    with pytest.raises(SystemExit) as exc:
        analytics.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for name in analytics.ANALYSES:
        assert name in text
    for option in ("--prediction-features", "--regression-threshold", "--interactive", "--include-simulated",
                   "--predict", "--output-dir", "--model-family", "--hardware-type"):
        assert option in text


@pytest.mark.slow
def test_all_analyses_on_the_sample_database(sample_db_path, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, _ = run_main(["--db", sample_db_path, "--analysis", "all", "--output-dir", str(out_dir), "-q"], capsys)
    assert code == 0
    index = {a["analysis"]: a for a in json.loads((out_dir / "analytics_index.json").read_text())["analyses"]}
    # three runs per series are too few for outliers or change points: that analysis declines and says why
    assert index.pop("anomaly-detection")["status"] == "unavailable"
    assert "anomaly-detection: unavailable (no model x hardware x batch series has 5 or more results" in out
    assert {a["status"] for a in index.values()} == {"ok"} and len(index) == len(analytics.ANALYSES) - 1
    for name in index:
        assert (out_dir / f"{name}.md").read_text().strip() in out  # the summary printed is the one written
        for suffix in ("csv", "json", "md", "png"):
            assert (out_dir / f"{name}.{suffix}").is_file(), (name, suffix)
        assert (out_dir / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    # the numbers come from the data: hardware comparison says cuda is fastest for bert at batch 1
    best = json.loads((out_dir / "hardware-comparison.json").read_text())["best_hardware"]
    assert {(b["model_family"], b["batch_size"]): b["hardware"] for b in best}[("bert", 1)] == "cuda"
    table = pd.read_csv(out_dir / "hardware-comparison.csv")
    cuda = table[(table.model == "bert-base-uncased") & (table.hardware == "cuda") & (table.batch_size == 1)].iloc[0]
    assert cuda.ci95_low < cuda.speedup_vs_reference < cuda.ci95_high and cuda.speedup_vs_reference > 5
    assert "raw samples" in cuda.evidence
    # the simulated rocm row is left out, and included on request
    assert "rocm" not in set(table.hardware)


@pytest.mark.slow  # over 1.5 s: outside make test-fast
def test_hardware_comparison_filters_and_simulated(sample_db_path, tmp_path, capsys):
    out_dir = tmp_path / "hw"
    code, out, _ = run_main(["--db", sample_db_path, "--analysis", "hardware-comparison", "--model-family", "bert",
                             "--output-dir", str(out_dir), "--include-simulated", "--format", "svg"], capsys)
    assert code == 0 and "Hardware comparison" in out
    table = pd.read_csv(out_dir / "hardware-comparison.csv")
    # the one simulated (rocm) result has no simulated result of its configuration to be compared with: it is
    # never set against the measured CPU (session 16), and the summary says it was left out
    assert set(table.model_family) == {"bert"} and not any("rocm" in hw for hw in table.hardware)
    assert not table.is_simulated.any()
    assert (out_dir / "hardware-comparison.svg").read_text().lstrip().startswith("<?xml")
    assert "1 simulated result(s)" in out
    assert "1 simulated result(s) are not compared" in (out_dir / "hardware-comparison.md").read_text()


@pytest.mark.slow  # over a second
def test_model_comparison_on_one_hardware(sample_db_path, tmp_path, capsys):
    out_dir = tmp_path / "mc"
    code, out, _ = run_main(["--db", sample_db_path, "--analysis", "model-comparison", "--hardware-type", "cuda",
                             "--output-dir", str(out_dir), "--format", "pdf"], capsys)
    assert code == 0
    table = pd.read_csv(out_dir / "model-comparison.csv")
    assert set(table.hardware) == {"cuda"} and table.model.nunique() == 5
    assert (table.latency_ci95_low <= table.median_latency_ms).all()
    assert (out_dir / "model-comparison.pdf").read_bytes()[:4] == b"%PDF"


@pytest.mark.slow  # 2-7 s: fits models on a generated database
def test_prediction_beats_the_baseline_on_a_known_law(law_db, tmp_path, capsys):
    out_dir = tmp_path / "pred"
    code, out, _ = run_main(["--db", law_db, "--analysis", "performance-prediction", "--output-dir", str(out_dir),
                             "--prediction-features", "model_family,hardware_type,batch_size,precision",
                             "--predict", "model_family=bert,hardware_type=cuda,batch_size=16,precision=fp16"],
                            capsys)
    assert code == 0
    data = json.loads((out_dir / "performance-prediction.json").read_text())
    assert data["cv_mape_pct"] < 0.5 * data["baseline_cv_mape_pct"], data
    assert "cross-validated MAPE" in out and "baseline" in out
    pred = data["prediction"]
    truth = 2000 * 20 * 1.8 * 16 ** 0.7 / 110 ** 0.9
    assert pred["interval_low"] < pred["predicted_throughput"] < pred["interval_high"]
    assert abs(pred["predicted_throughput"] / truth - 1) < 0.25
    assert pred["interval_low"] < truth < pred["interval_high"]


@pytest.mark.slow  # over 1.5 s: outside make test-fast
def test_prediction_declines_on_a_tiny_dataset(tmp_path, capsys):
    rows = [r for r in law_rows()[:8]]
    db = _write(tmp_path / "tiny.duckdb", rows)
    out_dir = tmp_path / "tiny"
    code, out, _ = run_main(["--db", db, "--analysis", "performance-prediction", "--output-dir", str(out_dir),
                             "--predict", "model_family=bert,hardware_type=cuda,batch_size=16,precision=fp16"], capsys)
    assert code == 0
    assert "Could not run" in out and "at least" in out
    assert "items/s" not in out and not (out_dir / "performance-prediction.json").exists()


@pytest.mark.slow  # 2-7 s: fits models on a generated database
def test_prediction_declines_unknown_hardware(law_db, tmp_path, capsys):
    code, out, _ = run_main(["--db", law_db, "--output-dir", str(tmp_path / "p"),
                             "--predict", "model_family=bert,hardware_type=rocm,batch_size=16,precision=fp16"], capsys)
    assert code == 0 and "Declined" in out and "rocm" in out


@pytest.mark.slow  # over 1.5 s: outside make test-fast
def test_bad_predict_is_a_usage_error(law_db, tmp_path, capsys):
    code, _, err = run_main(["--db", law_db, "--output-dir", str(tmp_path / "p"), "--predict", "batch_size"], capsys)
    assert code == 2 and "error DB000" in err


def _history_rows(step_at=30, n=50, factor=1.25):
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        when = T0 + dt.timedelta(days=i)
        for hw, base in (("cpu", 20.0), ("cuda", 2.0)):
            level = base * (factor if hw == "cpu" and i >= step_at else 1.0)
            samples = list(level * rng.lognormal(0, 0.03, 10))
            if hw == "cuda" and i == 12:
                samples = [s * 2.5 for s in samples]  # one bad run
            rows.append(dict(model="bert-base-uncased", family="bert", params=110, hw=hw, batch=1, precision="fp32",
                             latency=float(np.mean(samples)), samples=samples, when=when))
    return rows


@pytest.mark.slow
def test_trends_and_anomalies_find_a_known_step(tmp_path, capsys):
    db = _write(tmp_path / "hist.duckdb", _history_rows())
    out_dir = tmp_path / "hist_out"
    code, out, _ = run_main(["--db", db, "--analysis", "performance-trends", "--output-dir", str(out_dir)], capsys)
    assert code == 0
    trends = pd.read_csv(out_dir / "performance-trends.csv").set_index("hardware")
    assert trends.loc["cpu", "change_points"] == 1 and "run 30" in trends.loc["cpu", "change_points_detail"]
    assert trends.loc["cpu", "p_value"] < 0.05 and trends.loc["cuda", "change_points"] == 0
    # the fitted change over the series' own span, beside the per-day slope (which extrapolates)
    cpu = trends.loc["cpu"]
    span = (pd.Timestamp(cpu["last"]) - pd.Timestamp(cpu["first"])).total_seconds() / 86400
    assert cpu["span_days"] == pytest.approx(span)
    assert cpu["change_pct_over_span"] == pytest.approx(((1 + cpu["slope_pct_per_day"] / 100) ** span - 1) * 100)
    assert 5 < cpu["change_pct_over_span"] < 40  # the known +25% step, fitted as a trend of log latency
    code, out, _ = run_main(["--db", db, "--analysis", "anomaly-detection", "--regression-threshold", "0.1",
                             "--output-dir", str(out_dir)], capsys)
    assert code == 0
    found = pd.read_csv(out_dir / "anomaly-detection.csv")
    kinds = {(r.hardware, r.kind) for r in found.itertuples()}
    assert kinds == {("cpu", "change point"), ("cuda", "outlier")}
    cp = found[found.kind == "change point"].iloc[0]
    assert cp.change_pct == pytest.approx(25, abs=4)
    # a threshold above the step size hides it
    run_main(["--db", db, "--analysis", "anomaly-detection", "--regression-threshold", "40",
              "--output-dir", str(out_dir)], capsys)
    found = pd.read_csv(out_dir / "anomaly-detection.csv")
    assert set(found.kind) <= {"outlier"}


@pytest.mark.slow  # 2-7 s: fits models on a generated database
def test_correlation_and_feature_importance(law_db, tmp_path, capsys):
    out_dir = tmp_path / "corr"
    code, out, _ = run_main(["--db", law_db, "--analysis", "correlation-analysis", "--output-dir", str(out_dir)], capsys)
    assert code == 0 and "Spearman" in out
    corr = pd.read_csv(out_dir / "correlation-analysis.csv")
    row = corr[(corr.x == "parameters_million") & (corr.y == "throughput")].iloc[0]
    assert row.spearman_rho < -0.3 and row.n > 100
    code, out, _ = run_main(["--db", law_db, "--analysis", "feature-importance", "--output-dir", str(out_dir)], capsys)
    assert code == 0 and "Caveat" in out
    imp = pd.read_csv(out_dir / "feature-importance.csv")
    assert imp.iloc[0].feature in {"hardware", "model_family", "parameters_million"}
    assert imp.set_index("feature").loc["hardware", "importance_mean"] > imp.set_index("feature").loc[
        "precision", "importance_mean"] > 0


@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_all_on_a_tiny_database_reports_what_could_not_run(tmp_path, capsys):
    db = _write(tmp_path / "tiny.duckdb", law_rows()[:4])
    code, out, _ = run_main(["--db", db, "--analysis", "all", "--output-dir", str(tmp_path / "o")], capsys)
    assert code == 0
    assert "## Analyses run" in out and "performance-prediction: unavailable" in out
    assert "performance-trends: unavailable" in out


def test_empty_database_and_missing_database(db_path, tmp_path, capsys):
    code, out, _ = run_main(["--db", db_path, "--analysis", "all", "--output-dir", str(tmp_path / "o")], capsys)
    assert code == 0 and out.count("no performance results") >= 8
    code, _, err = run_main(["--db", str(tmp_path / "nope.duckdb"), "--output-dir", str(tmp_path / "o")], capsys)
    assert code == 3 and "error DB001" in err


@pytest.mark.slow  # over 1.5 s: outside make test-fast
def test_interactive_page_is_self_contained(sample_db_path, tmp_path, capsys):
    out_dir = tmp_path / "inter"
    code, _, _ = run_main(["--db", sample_db_path, "--analysis", "batch-scaling", "--interactive",
                           "--output-dir", str(out_dir)], capsys)
    assert code == 0
    page = (out_dir / "batch-scaling.html").read_text()
    assert "<script src=\"http" not in page and "cdn.plot.ly" not in page.split("</head>")[0]
    assert 'id="filter-model"' in page and 'id="filter-hardware"' in page and "t5-small" in page


BROWSER_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs /usr/bin/chromium (Debian package chromium)")
def test_interactive_page_opens_in_chromium_without_errors(sample_db_path, tmp_path, capsys):
    pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import sync_playwright

    out_dir = tmp_path / "browser"
    assert analytics.main(["--db", sample_db_path, "--analysis", "hardware-comparison", "--interactive",
                           "--output-dir", str(out_dir), "-q"]) == 0
    page_path = out_dir / "hardware-comparison.html"
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.route("**/*", lambda route: route.abort() if not route.request.url.startswith("file:")
                       else route.continue_())  # offline: nothing outside the file may load
            page.goto(page_path.as_uri())
            page.wait_for_selector(".plotly-graph-div .main-svg", timeout=20000)
            total = page.evaluate("document.querySelector('.plotly-graph-div').data.length")
            page.select_option("#filter-model", "t5-small")
            visible = page.evaluate("document.querySelector('.plotly-graph-div').data"
                                    ".filter(t => t.visible !== false).length")
            page.screenshot(path=str(tmp_path / "analytics.png"))
        finally:
            browser.close()
    assert errors == []
    assert 0 < visible < total


@pytest.mark.slow  # over 0.8 s
def test_charts_give_every_series_its_own_colour_and_tables_no_na(tmp_path, monkeypatch):
    """Twelve series in one chart (the most it draws): twelve colours, not tab10's ten repeated; a missing
    batch size is an empty markdown cell, not '<NA>'."""
    rows = []
    for i in range(12):
        for batch in (1, 2, 4):
            rows.append({"model": f"m{i:02d}", "family": "bert", "params": 100.0 + i, "hw": "cpu", "batch": batch,
                         "precision": "fp32", "latency": (10.0 + i) * batch ** 0.8, "when": T0})
    db = _write(tmp_path / "twelve.duckdb", rows)
    figures = []
    monkeypatch.setattr(analytics, "_save_fig", lambda fig, opts, stem, files: figures.append(fig))
    from benchmark_db.connection import connect

    conn = connect(db, read_only=True)
    try:
        df = analytics.load_performance(conn)
    finally:
        conn.close()
    (tmp_path / "out").mkdir()
    analytics.batch_scaling(df, analytics.Options(output_dir=tmp_path / "out"))
    ax = figures[0].axes[1]
    colours = {tuple(line.get_color()) if not isinstance(line.get_color(), str) else line.get_color()
               for line in ax.get_lines()}
    assert len(ax.get_lines()) == 12 and len(colours) == 12

    table = pd.DataFrame({"model": ["a", "b"], "batch_size": pd.array([1, None], dtype="Int64")})
    md = analytics._md_table(table)
    assert "<NA>" not in md and md.splitlines()[-1] == "| b |  |"


@pytest.mark.slow  # over a second
def test_filter_matching_nothing_is_db004_naming_what_exists(law_db, tmp_path, capsys):
    """Like the reports: a filter that matches nothing is DB004 with what exists, not 'Could not run' and 0."""
    code, out, err = run_main(["--db", law_db, "--model-family", "nonexistent", "--output-dir", str(tmp_path / "o")],
                              capsys)
    assert code == 2 and out == ""
    assert err.startswith("error DB004: no performance results match --model-family nonexistent")
    assert "model families: bert, clip, llama" in err
    code, _, err = run_main(["--db", law_db, "--hardware-type", "tpu", "--analysis", "batch-scaling",
                             "--output-dir", str(tmp_path / "o")], capsys)
    assert code == 2 and "hardware matching the other filters: cpu, cuda, mps, openvino" in err
    code, _, _ = run_main(["--db", law_db, "--hardware-type", "gpu", "--analysis", "batch-scaling",
                           "--output-dir", str(tmp_path / "o")], capsys)
    assert code == 0  # gpu is cuda, as in the reports


def test_series_labels_leave_missing_parts_out():
    assert analytics._series_label("bert", "cpu", pd.NA, "unknown") == "bert | cpu"
    assert analytics._series_label("bert", "cuda", 8.0, "fp16") == "bert | cuda | bs 8 | fp16"
    assert analytics._series_label("bert", "unknown", None, None) == "bert"


def _wide_history(tmp_path):
    """Latencies from 0.01 ms to 10,000 ms over 6 runs: two models far apart."""
    rows = []
    for i in range(6):
        for model, latency in (("tiny-model", 0.01), ("huge-model", 10_000.0)):
            rows.append(dict(model=model, family="bert", params=1.0 if model == "tiny-model" else 1000.0, hw="cpu",
                             batch=1, precision="fp32", latency=latency * (1 + 0.01 * i),
                             when=T0 + dt.timedelta(days=i)))
    path = _write(tmp_path / "wide.duckdb", rows)
    import duckdb

    with duckdb.connect(path) as conn:  # legacy results often carry neither batch size nor precision
        conn.execute("UPDATE performance_results SET batch_size = NULL, precision = NULL")
    return path


def _captured_pages(monkeypatch):
    pages = []
    monkeypatch.setattr(analytics, "_write_interactive",
                        lambda name, title, figures, opts, files, note="": pages.append((name, figures, note)))
    return pages


@pytest.mark.slow  # about 1 s or more: outside make test-fast
def test_interactive_trends_use_a_log_axis_for_values_over_decades(tmp_path, monkeypatch):
    from benchmark_db.connection import connect

    db = _wide_history(tmp_path)
    with connect(db, read_only=True) as conn:
        df = analytics.load_performance(conn)
    pages = _captured_pages(monkeypatch)
    (tmp_path / "out").mkdir()
    analytics.performance_trends(df, analytics.Options(output_dir=tmp_path / "out", interactive=True))
    (_, figures, _), = pages
    assert figures[0].layout.yaxis.type == "log"
    names = {trace.name for trace in figures[0].data}
    assert names == {"tiny-model | cpu", "huge-model | cpu"}  # no 'bs <NA> | unknown'


@pytest.mark.slow
def test_interactive_anomaly_page_without_anomalies_says_so(tmp_path, capsys):
    db = _wide_history(tmp_path)
    out_dir = tmp_path / "anom"
    code, _, _ = run_main(["--db", db, "--analysis", "anomaly-detection", "--regression-threshold", "1000",
                           "--interactive", "--output-dir", str(out_dir)], capsys)
    assert code == 0
    page = (out_dir / "anomaly-detection.html").read_text()
    assert "No anomalies" in page and 'class="plotly-graph-div' not in page and 'id="filter-model"' not in page
    assert "Plotly.newPlot" not in page  # no empty axes drawn


@pytest.mark.slow  # about 0.8 s: outside make test-fast
def test_model_comparison_bars_sit_on_their_ticks_and_the_legend_beside_them(tmp_path, monkeypatch):
    rows = [dict(model=m, family="bert", params=100.0, hw=hw, batch=1, precision="fp32", latency=lat, when=T0)
            for m, hw, lat in (("a-model", "cpu", 10.0), ("a-model", "cuda", 2.0), ("b-model", "cpu", 12.0),
                               ("c-model", "cuda", 3.0))]
    db = _write(tmp_path / "bars.duckdb", rows)
    figures = []
    monkeypatch.setattr(analytics, "_save_fig", lambda fig, opts, stem, files: figures.append(fig))
    from benchmark_db.connection import connect

    with connect(db, read_only=True) as conn:
        df = analytics.load_performance(conn)
    (tmp_path / "out").mkdir()
    analytics.model_comparison(df, analytics.Options(output_dir=tmp_path / "out"))
    fig = figures[0]
    ax = fig.axes[0]
    ticks = {label.get_text(): x for label, x in zip(ax.get_xticklabels(), ax.get_xticks())}
    centres = sorted(round(p.get_x() + p.get_width() / 2, 6) for p in ax.patches if p.get_height() > 0)
    width = ax.patches[0].get_width()
    assert round(ticks["b-model"], 6) in centres and round(ticks["c-model"], 6) in centres  # lone bars on the tick
    assert round(ticks["a-model"] - width / 2, 6) in centres and round(ticks["a-model"] + width / 2, 6) in centres
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1  # beside the axes: it cannot cover a bar


@pytest.mark.slow  # over 1.5 s: outside make test-fast
def test_prediction_headings_are_readable(law_db, tmp_path, capsys):
    assert analytics.describe_configuration({"model_family": "bert", "hardware": "cuda", "batch_size": 16.0,
                                             "precision": "fp16"}) == "bert family on cuda, batch 16, fp16"
    assert analytics.describe_configuration({"model": "bert-base-uncased", "hardware_type": "cuda",
                                             "batch_size": "16"}) == "bert-base-uncased on cuda, batch 16"
    code, out, _ = run_main(["--db", law_db, "--output-dir", str(tmp_path / "p"),
                             "--predict", "model_family=bert,hardware_type=rocm,batch_size=16,precision=fp16"], capsys)
    assert code == 0 and "### Prediction for bert family on rocm, batch 16, fp16\n" in out and "{" not in out


@pytest.mark.slow  # 2-7 s: fits models on a generated database
def test_prediction_features_are_honoured_or_the_additions_named(law_db, tmp_path, capsys):
    asked = "model_family,hardware_type,batch_size,precision"
    out_dir = tmp_path / "exact"
    code, out, _ = run_main(["--db", law_db, "--analysis", "performance-prediction", "--output-dir", str(out_dir),
                             "--prediction-features", asked,
                             "--predict", "model_family=bert,hardware_type=cuda,batch_size=16,precision=fp16"], capsys)
    data = json.loads((out_dir / "performance-prediction.json").read_text())
    assert code == 0 and data["features"] == ["model_family", "hardware", "batch_size", "precision"]
    assert data["features_added"] == {} and "Added to the default features" not in out
    assert "### Prediction for bert family on cuda, batch 16, fp16\n" in out
    out_dir = tmp_path / "default"
    code, out, _ = run_main(["--db", law_db, "--analysis", "performance-prediction", "--output-dir", str(out_dir)],
                            capsys)
    data = json.loads((out_dir / "performance-prediction.json").read_text())
    assert code == 0 and "parameters_million" in data["features"] and "parameters_million" in data["features_added"]
    assert "Added to the default features: parameters_million" in out and "--prediction-features" in out
