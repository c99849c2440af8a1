"""benchmark_db_visualizer.py and benchmark_db.charts: the guide's modes write real PNG/SVG/PDF files with
titles, units, log scales where values span orders of magnitude, percentile whiskers, change points and
marked simulated series; no data is DB004 with no file written; the HTML report is self-contained and
works in headless Chromium."""
from __future__ import annotations

import os
import shutil

import pandas as pd
import pytest

import benchmark_db_visualizer as viz
from benchmark_db import charts, reports
from benchmark_db.connection import connect
from benchmark_db.reports import ReportFilters
from tests.report_fixtures import build_history

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<?xml", "pdf": b"%PDF"}


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory, _sample_db_template) -> str:
    """This module's copy of the sample database (made once per session in conftest): its tests only read it."""
    path = tmp_path_factory.mktemp("viz") / "sample.duckdb"
    shutil.copyfile(_sample_db_template, path)
    return str(path)


@pytest.fixture(scope="module")
def history_db(tmp_path_factory) -> str:
    return build_history(str(tmp_path_factory.mktemp("vizhistory") / "history.duckdb"))


def run(capsys, *argv):
    code = viz.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, name", [
    (["--model", "bert-base-uncased", "--compare-hardware"], "comparison.png"),
    (["--hardware", "cuda", "--compare-models"], "models_cuda.svg"),
    (["--model", "bert-base-uncased", "--hardware", "cuda", "--plot-trend"], "trend.pdf"),
    (["--report", "compatibility"], "compatibility.png"),
    (["--report", "hardware"], "hardware.png"),
])
@pytest.mark.slow  # over 1.5 s: outside make test-fast
def test_guide_modes_write_images(sample_db, tmp_path, capsys, argv, name):
    target = tmp_path / name
    code, out, err = run(capsys, "--db", sample_db, *argv, "--output", str(target))
    assert code == 0, err
    assert out.strip() == str(target)
    assert target.read_bytes().startswith(MAGIC[name.rsplit(".", 1)[1]])
    assert target.stat().st_size > 10_000


def test_no_data_is_db004_and_writes_nothing(sample_db, tmp_path, capsys):
    target = tmp_path / "trend.png"
    code, _, err = run(capsys, "--db", sample_db, "--model", "bert-base-uncased", "--hardware", "rocm",
                       "--plot-trend", "--output", str(target))
    assert code == 2 and not target.exists()
    assert err.startswith("error DB004") and "--model bert-base-uncased --hardware rocm" in err
    assert "hardware matching the other filters: cpu, cuda, mps, openvino" in err
    code, _, err = run(capsys, "--db", sample_db, "--model", "gpt-17", "--compare-hardware", "--output",
                       str(tmp_path / "c.png"))
    assert code == 2 and "models matching the other filters: bert-base-uncased" in err
    assert not (tmp_path / "c.png").exists()


def test_bad_output_names(sample_db, tmp_path, capsys):
    code, _, err = run(capsys, "--db", sample_db, "--compare-hardware", "--output", str(tmp_path / "x.gif"))
    assert code == 2 and ".png" in err
    code, _, err = run(capsys, "--db", sample_db, "--compare-hardware", "--output", str(tmp_path / "x.html"))
    assert code == 2 and "draws an image" in err


def _texts(fig) -> list[str]:
    out = [t.get_text() for t in fig.texts]
    if fig._suptitle is not None:
        out.append(fig._suptitle.get_text())
    if getattr(fig, "_supxlabel", None) is not None:
        out.append(fig._supxlabel.get_text())
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        legend = ax.get_legend()
        if legend:
            out += [t.get_text() for t in legend.get_texts()]
    for legend in fig.legends:
        out += [t.get_text() for t in legend.get_texts()]
    return out


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_comparison_figure_has_title_units_log_scale_whiskers_and_marks_simulated(sample_db):
    with connect(sample_db, read_only=True) as c:
        df = reports.compare_table(c, ReportFilters.make(model="bert-base-uncased", include_simulated=True),
                                   "throughput", by="hardware")
    fig = charts.comparison_figure(df, "throughput", "hardware", "Throughput by hardware: bert-base-uncased")
    try:
        texts = _texts(fig)
        ax = fig.axes[0]
        assert "Throughput by hardware: bert-base-uncased" in texts
        assert ax.get_ylabel().startswith("Throughput (items/s)")
        assert ax.get_xlabel() == "Batch size (items per call)"
        assert ax.get_yscale() == "log"  # cpu ~150 items/s, cuda ~5000 items/s: a factor > 20
        assert "rocm (simulated)" in texts
        assert any("whiskers p10-p90" in t for t in texts)
        # error bars: every data point has a whisker segment
        assert len(ax.containers) == 5
    finally:
        charts._plt().close(fig)


def test_linear_scale_when_values_are_close(sample_db):
    with connect(sample_db, read_only=True) as c:
        df = reports.compare_table(c, ReportFilters.make(model="t5-small", hardware="cpu,openvino", batch_size=1),
                                   "latency", by="hardware")
    fig = charts.comparison_figure(df, "latency", "hardware")
    try:
        assert fig.axes[0].get_yscale() == "linear"
        assert fig.axes[0].get_ylabel() == "Latency (ms)"
    finally:
        charts._plt().close(fig)


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_trend_marks_the_change_point(history_db, tmp_path):
    with connect(history_db, read_only=True) as c:
        target = viz.trend_chart(c, tmp_path / "trend.png", ReportFilters.make(model="bert-base-uncased",
                                                                               hardware="cuda"))
        trend = reports.trend_table(c, ReportFilters.make(model="bert-base-uncased", hardware="cuda"))
    assert target.read_bytes().startswith(MAGIC["png"])
    cps, note = reports.trend_change_points(trend)
    fig = charts.trend_figure(trend, cps, "throughput", "trend", note)
    try:
        ax = fig.axes[0]
        marks = [t.get_text() for t in ax.texts]
        assert len(marks) == 1 and -22 < float(marks[0].split("%")[0]) < -18  # throughput fell 20 %
        assert "change point" in [t.get_text() for t in ax.get_legend().get_texts()]
        assert ax.get_xlabel() == "Run time (UTC)" and ax.get_ylabel() == "Throughput (items/s)"
    finally:
        charts._plt().close(fig)


def test_trend_says_when_series_are_too_short(sample_db):
    with connect(sample_db, read_only=True) as c:
        trend = reports.trend_table(c, ReportFilters.make(model="t5-small", hardware="cpu", batch_size=1))
    cps, note = reports.trend_change_points(trend)
    fig = charts.trend_figure(trend, cps, "throughput", None, note)
    try:
        assert any("too few runs (3)" in t for t in _texts(fig))
    finally:
        charts._plt().close(fig)


@pytest.mark.slow  # renders every chart of a report
def test_write_html_report_is_self_contained(sample_db, tmp_path):
    with connect(sample_db, read_only=True) as c:
        path = reports.write_html_report(c, tmp_path / "r" / "report.html")
    page = path.read_text()
    assert page.count("data:image/png;base64,") >= 3  # performance (2), hardware, compatibility
    assert "<script src" not in page and "<link rel=\"stylesheet\"" not in page
    assert "http://" not in page and "https://" not in page
    for section in ("summary", "performance", "hardware", "compatibility_matrix", "integration"):
        assert f'id="{section}"' in page
    assert "1 simulated result left out" in page


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.browser
@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install -y chromium)")
def test_html_report_in_headless_chromium(sample_db, tmp_path, capsys):
    from playwright.sync_api import sync_playwright

    target = tmp_path / "report.html"
    code, _, err = run(capsys, "--db", sample_db, "--report", "performance", "--format", "html", "--output",
                       str(target))
    assert code == 0, err
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)  # a phone
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(target.as_uri())
            page.wait_for_load_state("load")
            assert page.title() == "Performance report"
            images = page.locator("img")
            assert images.count() == 2
            assert all(page.evaluate("(img) => img.naturalWidth > 0", images.nth(i).element_handle())
                       for i in range(images.count()))
            # the page itself does not scroll sideways on a phone: wide tables scroll inside their box
            assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
            table = page.locator("#performance table")
            header = table.locator("th", has_text="throughput_items_per_s_mean")
            column = page.evaluate("(th) => Array.from(th.parentNode.children).indexOf(th)", header.element_handle())

            def column_values():
                return [float(v) for v in page.evaluate(
                    "([sel, i]) => Array.from(document.querySelectorAll(sel + ' tbody tr'))"
                    ".map(r => r.cells[i].getAttribute('data-sort'))", ["#performance table", column])]

            before = column_values()
            assert before != sorted(before)
            header.click()
            assert column_values() == sorted(before)
            assert header.get_attribute("aria-sort") == "ascending"
            header.click()
            assert column_values() == sorted(before, reverse=True)
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(tmp_path / "report_phone.png"), full_page=False)
            page.set_viewport_size({"width": 1280, "height": 900})
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(tmp_path / "report_desktop.png"), full_page=False)
        finally:
            browser.close()
    assert errors == []
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    assert (tmp_path / "report_phone.png").stat().st_size > 10_000


@pytest.mark.slow  # about 0.6 s: outside make test-fast
def test_chart_of_a_metric_the_results_lack_names_the_metrics_they_have(tmp_path, capsys):
    from tests.test_query import _latency_only_db

    db = _latency_only_db(str(tmp_path / "latency_only.duckdb"))
    for argv in (["--compare-hardware"], ["--plot-trend"], ["--compare-models", "--metric", "memory"]):
        target = tmp_path / "chart.png"
        code, _, err = run(capsys, "--db", db, "--model", "canine", *argv, "--output", str(target))
        assert code == 2 and not target.exists()
        assert "error DB004: no " in err and "values among the 2 performance results" in err
        assert "try --metric latency" in err


def _compare_frame(models, hardware=("cpu", "cuda"), batches=(1, 4)):
    import pandas as pd

    rows = []
    for i, model in enumerate(models):
        for j, hw in enumerate(hardware):
            for b in batches:
                v = 10.0 * (i + 1) * (j + 1) * b
                rows.append({"model": model, "hardware": hw, "batch_size": b, "precision": "fp32", "results": 3,
                             "runs": 3, "samples": 0, "throughput_items_per_s_mean": v,
                             "throughput_items_per_s_p10": v * 0.9, "throughput_items_per_s_p50": v,
                             "throughput_items_per_s_p90": v * 1.1, "basis": "per-result values"})
    return pd.DataFrame(rows)


def _inside(fig, artist) -> bool:
    renderer = fig.canvas.get_renderer()
    box, whole = artist.get_window_extent(renderer), fig.bbox
    return box.x0 >= whole.x0 - 1 and box.x1 <= whole.x1 + 1 and box.y0 >= whole.y0 - 1 and box.y1 <= whole.y1 + 1


@pytest.mark.slow  # over 1.5 s: outside make test-fast
def test_chart_text_stays_inside_the_figure_and_apart(tmp_path):
    """A long footnote is wrapped, not cut off at both edges; long model names do not run into the
    neighbouring panel's title or off the heat map; the title does not run under the legend."""
    import matplotlib.pyplot as plt

    one = charts.comparison_figure(_compare_frame(["bert-base-uncased"]), "throughput", "hardware",
                                   "Throughput by hardware: bert-base-uncased and a rather long title")
    one.canvas.draw()
    footer = one._supxlabel
    assert _inside(one, footer)
    footer.set_text(footer.get_text() + "; " + "x " * 120)  # far longer than the figure is wide
    charts._footer(one, footer.get_text().replace("\n", " "), 9)
    one.canvas.draw()
    assert _inside(one, one._supxlabel)
    title, legend = one._suptitle.get_window_extent(), one.legends[0].get_window_extent()
    assert not title.overlaps(legend)
    plt.close(one)

    names = ["a" * 120, "café<script>alert(1)</script>", "модель-ünïcødé/β-bert"]
    many = charts.comparison_figure(_compare_frame(names), "throughput", "hardware", "Throughput")
    many.canvas.draw()
    titles = [ax.title for ax in many.axes if ax.get_visible() and ax.get_title()]
    assert len(titles) == 3 and "\u2026" in titles[0].get_text()
    boxes = [t.get_window_extent() for t in titles]
    assert not any(boxes[i].overlaps(boxes[j]) for i in range(3) for j in range(i + 1, 3))
    plt.close(many)

    compare = _compare_frame(names)
    compare["relative_to_cpu"] = [1.0 if hw == "cpu" else 2.0 for hw in compare["hardware"]]
    heat = charts.relative_speed_figure(compare)
    heat.canvas.draw()
    assert all(_inside(heat, label) for label in heat.axes[0].get_yticklabels())
    plt.close(heat)


def test_compatibility_map_counts_every_device_and_keeps_unknown_columns():
    import matplotlib.pyplot as plt
    import pandas as pd

    table = pd.DataFrame([
        {"model": "bert", "hardware": "cpu", "device": None, "is_compatible": True, "performance_results": 24},
        {"model": "bert", "hardware": "cpu", "device": "Intel", "is_compatible": True, "performance_results": 3},
        {"model": "bert", "hardware": "cuda", "device": "A100", "is_compatible": True, "performance_results": 5},
        {"model": "bert", "hardware": "cuda", "device": "P4000", "is_compatible": False, "performance_results": 0},
        {"model": "bert", "hardware": "mps", "device": None, "is_compatible": None, "performance_results": 0},
    ])
    fig = charts.compatibility_figure(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cpu", "cuda", "mps"]
    texts = sorted(t.get_text() for t in ax.texts)
    assert "yes\n27" in texts  # both cpu devices' results
    assert "no" in texts and not any(t.startswith("yes\n5") for t in texts)  # a red cell never reads "yes"
    plt.close(fig)


def test_relative_speed_map_keeps_simulated_results_apart():
    import matplotlib.pyplot as plt

    compare = _compare_frame(["bert-base-uncased"], hardware=("cpu", "webgpu"))
    compare["is_simulated"] = False
    simulated = compare[compare["hardware"] == "webgpu"].copy()
    simulated["is_simulated"] = True
    compare["relative_to_cpu"] = [1.0 if hw == "cpu" else 2.0 for hw in compare["hardware"]]
    simulated["relative_to_cpu"] = 50.0
    fig = charts.relative_speed_figure(pd.concat([compare, simulated], ignore_index=True))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cpu", "webgpu", "webgpu (simulated)"]
    assert sorted(t.get_text() for t in ax.texts) == ["1x", "2x", "50x"]  # measured 2x, not mixed with 50x
    plt.close(fig)
