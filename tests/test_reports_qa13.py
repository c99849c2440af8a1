"""QA round 13 of the reports, analytics pages and the regression gate: interactive pages show only filter
menus that offer a choice, and --regression-check --model means the model named, as in every other report."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

import benchmark_db_analytics as analytics
import benchmark_db_query as query
from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns


def run(capsys, main, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _selects(page: str) -> dict[str, list[str]]:
    """The filter menus of an interactive page: id -> option labels."""
    import re

    return {m.group(1): re.findall(r"<option value=\"[^\"]*\">([^<]*)</option>", m.group(2))
            for m in re.finditer(r'<select id="([^"]+)">(.*?)</select>', page, re.S)}


# ---------------------------------------------------------------------- 1. analytics filter menus
@pytest.mark.slow  # fits the model behind the page: about 2 s
def test_feature_importance_page_has_no_empty_filter_menus(sample_db_path, tmp_path, capsys):
    # the page's one chart ranks features over the whole data set: its Model and Hardware menus held only "all"
    out_dir = tmp_path / "fi"
    code, _, err = run(capsys, analytics.main, "--db", sample_db_path, "--analysis", "feature-importance",
                       "--interactive", "--output-dir", str(out_dir), "-q")
    assert code == 0, err
    page = (out_dir / "feature-importance.html").read_text()
    assert _selects(page) == {} and "filter traces" not in page
    assert 'class="plotly-graph-div' in page


def test_menus_offer_every_real_choice_and_only_those(tmp_path):
    import plotly.graph_objects as go

    def page(traces) -> str:
        fig = go.Figure([go.Scatter(x=[1], y=[1], meta=meta) for meta in traces])
        opts = analytics.Options(output_dir=tmp_path)
        analytics._write_interactive("p", "P", [fig], opts, [])
        return (tmp_path / "p.html").read_text()

    # one model on two hardware types: a model menu would offer nothing but "all"
    text = page([{"model": "t5-small", "hardware": "cpu"}, {"model": "t5-small", "hardware": "cuda"}])
    assert _selects(text) == {"filter-hardware": ["all", "cpu", "cuda"]}
    assert "filter traces by hardware." in text
    text = page([{"model": "a", "hardware": "cpu"}, {"model": "b", "hardware": "cuda"}])
    assert _selects(text) == {"filter-model": ["all", "a", "b"], "filter-hardware": ["all", "cpu", "cuda"]}


@pytest.mark.browser
@pytest.mark.slow  # about 25 s: three pages, every menu exercised
@pytest.mark.skipif(not shutil.which("chromium"), reason="needs chromium (Debian package chromium)")
def test_analytics_pages_open_without_errors_and_every_menu_filters(sample_db_path, tmp_path, capsys):
    pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import sync_playwright

    out_dir = tmp_path / "pages"
    for analysis in ("feature-importance", "hardware-comparison", "correlation-analysis"):
        code, _, err = run(capsys, analytics.main, "--db", sample_db_path, "--analysis", analysis, "--interactive",
                           "--output-dir", str(out_dir), "-q")
        assert code == 0, err
    pages = sorted(out_dir.glob("*.html"))
    seen = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            for path in pages:
                errors: list[str] = []
                page = browser.new_page()
                page.on("console", lambda msg, errors=errors: errors.append(msg.text) if msg.type == "error" else None)
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.goto(path.as_uri())
                page.wait_for_selector(".plotly-graph-div .main-svg", timeout=20000)
                menus = page.eval_on_selector_all("select", "els => els.map(e => [e.id, e.options.length])")
                for menu_id, count in menus:
                    assert count > 2, f"{path.name}: menu {menu_id} offers no choice"
                    # picking the first real choice hides some traces and raises no error
                    page.select_option(f"#{menu_id}", index=1)
                    page.select_option(f"#{menu_id}", index=0)
                page.screenshot(path=str(tmp_path / f"{path.stem}.png"))
                seen[path.stem] = (menus, errors)
                page.close()
        finally:
            browser.close()
    assert all(errors == [] for _menus, errors in seen.values()), seen
    assert seen["feature-importance"][0] == []
    assert [m for m, _ in seen["hardware-comparison"][0]] == ["filter-model", "filter-hardware"]


# ---------------------------------------------------------------------- 2. --regression-check --model
def _family_db(path: Path, factor: float, days=(0, 10)) -> str:
    """Two bert-family models measured 12 days ago and 2 days ago, when bert-large-uncased's latency was
    multiplied by `factor` (relative to now: --last-days counts back from the current time)."""
    start = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=12)
    with BenchmarkDB(str(path)) as db, db.transaction():
        for day, scale in zip(days, (1.0, factor)):
            when = start + dt.timedelta(days=day)
            run_id = db.insert_test_runs(TestRuns(test_name=f"bench-{day}", started_at=when, success=True))
            hid = db.get_or_add_hardware("cpu")
            for name, base in (("bert-base-uncased", 10.0), ("bert-large-uncased", 30.0)):
                mid = db.get_or_add_model(name, model_family="bert", parameters_million=110.0)
                lat = base * (scale if name == "bert-large-uncased" else 1.0)
                samples = [lat * (1 + 0.001 * i) for i in range(20)]
                db.insert_many([PerformanceResults(
                    run_id=run_id, model_id=mid, hardware_id=hid, model_name=name, hardware_type="cpu",
                    test_case="inference", batch_size=1, sequence_length=128, precision="fp32",
                    average_latency_ms=lat, throughput_items_per_second=1000 / lat, memory_peak_mb=100.0,
                    latency_samples_ms=samples, created_at=when)])
    return str(path)


def _models(out: str) -> set[str]:
    report = json.loads(out)
    return {g["key"]["model"] if "key" in g else g["model"]
            for name in ("regressions", "improvements", "unchanged") for g in report.get(name, [])}


@pytest.mark.slow  # about 0.6 s: outside make test-fast
def test_regression_check_model_is_the_model_named_not_its_family(tmp_path, capsys):
    db = _family_db(tmp_path / "h.duckdb", factor=1.5)
    now = ["--regression-check", "--last-days", "5", "--format", "json", "--db", db]
    code, out, err = run(capsys, query.main, *now, "--model", "bert-base-uncased")
    assert code == 0, err  # bert-large-uncased's regression is not this model's
    assert _models(out) == {"bert-base-uncased"}
    code, out, _ = run(capsys, query.main, *now, "--model", "bert-large-uncased")
    assert code == 1 and _models(out) == {"bert-large-uncased"}
    # `--model bert` used to check every bert-family model (and fail on bert-large); as in the other
    # reports it names a model, and there is none called bert: DB004 naming the models there are
    code, out, err = run(capsys, query.main, *now, "--model", "bert")
    assert code == 2 and "error DB004" in err
    assert out == "" and "bert-base-uncased" in err and "Traceback" not in err
    code, _, err = run(capsys, query.main, "--db", db, "--report", "performance", "--model", "bert", "--format", "json")
    assert "error DB004" in err  # the performance report reads --model bert the same way
    # a family is still reachable with a pattern, as in the reports
    code, out, _ = run(capsys, query.main, *now, "--model", "bert-*")
    assert code == 1 and _models(out) == {"bert-base-uncased", "bert-large-uncased"}


def test_regression_check_python_api_still_takes_a_family(tmp_path):
    import duckdb

    from benchmark_db.regression import regression_check

    conn = duckdb.connect(_family_db(tmp_path / "h.duckdb", factor=1.5), read_only=True)
    try:
        report = regression_check(conn, last_days=5, model="bert")
    finally:
        conn.close()
    assert report.compared == 2 and [r.key["model"] for r in report.regressions] == ["bert-large-uncased"]


# ---------------------------------------------------------------------- 3. what a new user saw
def test_trend_chart_of_one_run_shows_its_hours_not_five_years(tmp_path):
    """A fresh `make demo` database has one run: the trend chart's time axis read 2025 ... 2029 (matplotlib pads
    a single date by two years each side), with the run a dot in the middle."""
    import matplotlib.dates as mdates

    from benchmark_db import charts, reports
    from benchmark_db.connection import connect

    db = _family_db(tmp_path / "one.duckdb", factor=1.0, days=(0,))
    with connect(db, read_only=True) as conn:
        trend = reports.trend_table(conn, reports.ReportFilters.make(model="bert-base-uncased"))
    fig = charts.trend_figure(trend, None, "throughput")
    try:
        low, high = (mdates.num2date(x) for x in fig.axes[0].get_xlim())
        assert dt.timedelta(minutes=30) <= high - low <= dt.timedelta(days=1)
    finally:
        charts._plt().close(fig)


def test_tall_compatibility_matrix_names_its_columns_at_the_top(tmp_path):
    """The demo's 14 models made a matrix taller than a screen whose hardware names sat only at the bottom."""
    import pandas as pd

    from benchmark_db import charts

    def top_labels(models: int) -> list[str]:
        table = pd.DataFrame([{"model": f"model-{i}", "hardware": hw, "is_compatible": True, "performance_results": 2}
                              for i in range(models) for hw in ("cpu", "openvino")])
        fig = charts.compatibility_figure(table)
        try:
            return [t.label2.get_text() for t in fig.axes[0].xaxis.get_major_ticks() if t.label2.get_visible()]
        finally:
            charts._plt().close(fig)

    assert top_labels(14) == ["cpu", "openvino"]
    assert top_labels(3) == []  # a short matrix keeps one set of labels


@pytest.mark.parametrize("action", [("--compare-models", "--hardware", "cpu"), ("--compatibility-matrix",)])
def test_comparison_html_is_the_styled_report_page(sample_db_path, capsys, action):
    """--compare-models/--compatibility-matrix --format html wrote a bare unstyled table (names wrapped mid-word,
    `False` and six-digit figures, no sorting) unlike every --report page the README promises."""
    code, out, err = run(capsys, query.main, "--db", sample_db_path, *action, "--format", "html")
    assert code == 0, err
    assert "<style" in out and "class='sortable'" in out and "Click a column header to sort" in out
    assert "filters:" in out and ">False<" not in out
