"""QA sweep 8 of the query, report and chart tools: each test fails without the fix it names."""
from __future__ import annotations

import datetime as dt

import pytest

from benchmark_db.connection import connect
from benchmark_db.maintenance import archive
from tests.test_query import run


# ------------------------------------------------------------------- --sql is the local user's own SQL
def test_sql_option_reads_files_the_user_can_read(sample_db_path, tmp_path, capsys):
    """--sql is a local tool, like the DuckDB shell: it may read the user's own files (a Parquet export to
    compare with, a CSV); it never writes. Only the REST server's /query refuses file access."""
    export = tmp_path / "export.csv"
    export.write_text("model,throughput\nbert,12.5\n")
    code, out, _ = run(capsys, "--db", sample_db_path, "--format", "csv", "--sql", f"SELECT * FROM read_csv('{export}')")
    assert code == 0 and out.split() == ["model,throughput", "bert,12.5"]
    code, _, err = run(capsys, "--db", sample_db_path, "--sql", f"COPY models TO '{tmp_path / 'out.csv'}'")
    assert code == 2 and err.startswith("error DB004: ") and not (tmp_path / "out.csv").exists()


def test_sql_option_still_sees_archived_rows(sample_db_path, tmp_path, capsys):
    # the second layer (external access off) must leave the archive's own Parquet files readable
    import shutil

    path = str(tmp_path / "archived.duckdb")
    shutil.copy(sample_db_path, path)
    conn = connect(path)
    try:
        total = conn.execute("SELECT count(*) FROM performance_results").fetchone()[0]
        archive.archive_old_rows(conn, 0, tmp_path / "archived_data", now=dt.datetime(2025, 3, 2))
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] < total
    finally:
        conn.close()
    code, out, _ = run(capsys, "--db", path, "--format", "csv", "--sql", "SELECT count(*) AS n FROM performance_results")
    assert code == 0 and out.split() == ["n", str(total)]


def _db_with_names(path: str, names: list[str], *, simulated: bool = False) -> str:
    from benchmark_db_api import BenchmarkDBAPI

    with BenchmarkDBAPI(path) as api:
        for name in names:
            api.store_performance_result(model_name=name, hardware_type="cpu", batch_size=1, precision="fp32",
                                         throughput=10.0, latency_avg=100.0, is_simulated=simulated)
    return path


# ---------------------------------------------------------------------------------- output renderers
def test_markdown_of_an_empty_result_says_so(sample_db_path, capsys):
    # a bare header row used to be all a report section or --sql printed when nothing matched
    code, out, _ = run(capsys, "--db", sample_db_path, "--format", "markdown", "--sql", "SELECT * FROM models WHERE false")
    assert code == 0 and out.splitlines()[-1] == "_no rows_" and out.splitlines()[-2] == ""
    code, out, _ = run(capsys, "--db", sample_db_path, "--report", "summary", "--format", "markdown", "--batch-size", "999")
    fastest = out.split("## Fastest hardware per model and configuration", 1)[1]
    assert code == 0 and "_no rows_" in fastest


def test_markdown_escapes_html_in_names(tmp_path, capsys):
    # "<b>x</b>" rendered bold in a PR comment and "<script>...</script>" vanished (GitHub drops the tag)
    db = _db_with_names(str(tmp_path / "names.duckdb"), ["<b>bold</b>", "<script>alert(1)</script>"])
    code, out, _ = run(capsys, "--db", db, "--report", "performance", "--format", "markdown")
    assert code == 0
    assert "| \\<b>bold\\</b> |" in out and "| \\<script>alert(1)\\</script> |" in out
    assert "| <b>" not in out and "| <script>" not in out


def test_text_table_aligns_wide_characters(tmp_path, capsys):
    # len() counted "モデル" as 3 columns; a terminal shows 6, so every column after it was shifted
    db = _db_with_names(str(tmp_path / "wide.duckdb"), ["モデル", "model"])
    code, out, _ = run(capsys, "--db", db, "--format", "table",
                       "--sql", "SELECT model, hardware FROM benchmark_performance ORDER BY model")
    import unicodedata

    def columns_before(line: str, text: str) -> int:
        head = line[:line.index(text)]
        return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in head)

    lines = [line for line in out.splitlines() if line.endswith("cpu")]
    assert code == 0 and len(lines) == 2
    assert columns_before(lines[0], "cpu") == columns_before(lines[1], "cpu")


# ------------------------------------------------------------------------------------------ visualizer
def test_trend_with_too_many_series_reads_as_one_message(sample_db_path, tmp_path, capsys):
    import benchmark_db_visualizer as visualizer

    code = visualizer.main(["--db", sample_db_path, "--plot-trend", "--output", str(tmp_path / "t.png")])
    err = capsys.readouterr().err.strip()
    # was "120 configurations match simulated results excluded; a trend chart ...": the filters' own "; "
    # split the message in the middle
    assert code == 2 and err.startswith("error DB000: ") and err.count("; ") == 1
    assert "match (simulated results excluded)" in err
    assert not (tmp_path / "t.png").exists()


# ------------------------------------------------------------------------------------------- analytics
def test_analytics_of_simulated_results_only_names_them(tmp_path, capsys):
    import benchmark_db_analytics as analytics

    db = _db_with_names(str(tmp_path / "sim.duckdb"), ["bert-base-uncased"], simulated=True)
    code = analytics.main(["--db", db, "--analysis", "hardware-comparison", "--output-dir", str(tmp_path / "out")])
    out = capsys.readouterr().out
    # was "Could not run: no performance results." as for an empty database
    assert code == 0 and "1 simulated result left out; pass --include-simulated" in out


def test_visualizer_html_report_takes_title_escaped(sample_db_path, tmp_path, capsys):
    import benchmark_db_visualizer as visualizer

    out = tmp_path / "r.html"
    code = visualizer.main(["--db", sample_db_path, "--report", "summary", "--title", "<img src=x onerror=alert(9)> Nightly",
                            "--output", str(out)])
    capsys.readouterr()
    page = out.read_text()
    # --title used to be dropped for an HTML report without a word
    assert code == 0 and "<h1>&lt;img src=x onerror=alert(9)&gt; Nightly</h1>" in page
    assert "<img src=x" not in page


def test_equal_since_and_until_hint_is_not_swap(sample_db_path, capsys):
    code, _, err = run(capsys, "--db", sample_db_path, "--report", "summary", "--since", "2025-03-02T09:00",
                       "--until", "2025-03-02T09:00")
    # "swap the two dates" cannot help when they are equal: --until is exclusive
    assert code == 2 and "swap" not in err and "--until is exclusive" in err


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
@pytest.mark.parametrize("report", ["performance", "summary", "hardware"])
def test_model_filter_underscore_is_not_a_wildcard(tmp_path, capsys, report):
    # "_" went into LIKE as its any-one-character: --model vit_base matched google/vit-base, and hf_* hfXbert
    db = _db_with_names(str(tmp_path / "u.duckdb"), ["google/vit-base", "hfXbert", "hf_bert"])
    code, _, err = run(capsys, "--db", db, "--report", report, "--format", "csv", "--model", "vit_base")
    assert code == 2 and err.startswith("error DB004: ")
    code, out, _ = run(capsys, "--db", db, "--report", "performance", "--format", "csv", "--model", "HF_*")
    assert code == 0 and "hf_bert" in out and "hfXbert" not in out
    code, out, _ = run(capsys, "--db", db, "--report", "performance", "--format", "csv", "--model", "vit-base,hf_bert")
    assert code == 0 and "google/vit-base" in out and "hf_bert" in out and "hfXbert" not in out


# ------------------------------------------------------------------------------------------------ stats
def test_compare_samples_with_a_zero_reference_median_does_not_raise():
    from benchmark_db import stats

    # a significant move away from a median of 0 raised TypeError formatting the missing percentage
    result = stats.compare_samples([0.0] * 5, [1.0] * 5, 5, 0.01)
    assert result.verdict == "unchanged" and result.change_pct is None
    assert "reference median is 0" in result.note and result.to_dict()["change_pct"] is None


@pytest.mark.slow  # over 0.8 s
def test_analytics_markdown_escapes_html_in_names(tmp_path, capsys):
    import benchmark_db_analytics as analytics
    from benchmark_db_api import BenchmarkDBAPI

    db = str(tmp_path / "h.duckdb")
    with BenchmarkDBAPI(db) as api:
        for name in ("<b>bold</b>", "plain"):
            for hardware, throughput in (("cpu", 10.0), ("cuda", 40.0)):
                api.store_performance_result(model_name=name, hardware_type=hardware, batch_size=1,
                                             throughput=throughput, latency_avg=1000.0 / throughput)
    out_dir = tmp_path / "out"
    code = analytics.main(["--db", db, "--analysis", "hardware-comparison", "--output-dir", str(out_dir)])
    capsys.readouterr()
    text = (out_dir / "hardware-comparison.md").read_text()
    # the name went into the table as raw HTML
    assert code == 0 and "| \\<b>bold\\</b> |" in text and "| <b>" not in text


@pytest.mark.parametrize("model, matches", [("vit_base", False), ("vit-base", True), ("VIT-BASE", True),
                                            ("*vit_*", False), ("*vit-*", True), ("google/*", True)])
def test_regression_model_filter_underscore_is_not_a_wildcard(tmp_path, model, matches):
    """The regression check's --model matches names as the reports' does: "_" is a plain character."""
    from benchmark_db import regression

    path = _db_with_names(str(tmp_path / "r.duckdb"), ["google/vit-base"])
    conn = connect(path, read_only=True)
    try:
        rows = regression._fetch(conn, include_simulated=False, model=model, hardware=None)
    finally:
        conn.close()
    assert bool(rows) is matches
