"""QA round 16 of the HTML report: its charts are drawn without seaborn, without pyplot and with one layout
pass, and look exactly as before (same palette, same style, same placement)."""
from __future__ import annotations

import base64
import io
import subprocess
import sys

import pytest

from benchmark_db import charts, reports
from benchmark_db.connection import connect


def _pixels(png: bytes):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)))


def _uri_png(uri: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return base64.b64decode(uri[len(prefix):])


@pytest.mark.slow  # the first matplotlib import of a worker
def test_palette_colours_are_distinct_per_series():
    for n in range(1, 11):
        colours = charts._palette(n)
        assert len(colours) == n and len(set(colours)) == n
    hardware = charts._stable_colors("hardware", ["cpu", "cuda", "webgpu (emulated)", "webgpu"])
    assert len(set(hardware.values())) == 4


@pytest.mark.slow
def test_palette_and_style_are_seaborns():
    """The hard-coded palette and whitegrid style are the values seaborn gave (seaborn is still installed
    for heat maps and palettes of more than 10 colours)."""
    sns = pytest.importorskip("seaborn")
    for n in (1, 4, 9, 10, 11, 14):
        ours = [tuple(round(c, 9) for c in rgb) for rgb in charts._palette(n)]
        theirs = [tuple(round(c, 9) for c in rgb) for rgb in sns.color_palette("tab10" if n <= 10 else "husl", n)]
        assert ours == theirs, n
    style = dict(sns.axes_style("whitegrid"))
    style.pop("image.cmap")  # seaborn's own colormap; every heat map here names its colormap
    assert charts.WHITEGRID == style


@pytest.mark.slow
def test_chart_laid_out_once_is_the_chart_savefig_lays_out(sample_db_path):
    """figure_data_uri runs constrained layout itself and draws once; the PNG is the one savefig makes when
    it lays the figure out (a draw with rendering off, then the real draw)."""
    with connect(sample_db_path, read_only=True) as conn:
        df = reports.compare_table(conn, reports.ReportFilters(), "throughput", by="hardware")
    once = _pixels(_uri_png(charts.figure_data_uri(charts.comparison_figure(df, "throughput", "hardware"))))
    fig = charts.comparison_figure(df, "throughput", "hardware")
    assert fig.get_layout_engine() is not None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    assert once.shape == _pixels(buffer.getvalue()).shape
    assert (once == _pixels(buffer.getvalue())).all()


@pytest.mark.slow
def test_performance_html_report_imports_neither_seaborn_nor_pyplot(sample_db_path):
    code = (
        "import sys\n"
        "from benchmark_db import reports\n"
        "from benchmark_db.connection import connect\n"
        f"conn = connect({sample_db_path!r}, read_only=True)\n"
        "page = reports.render_html(reports.build_report(conn, 'performance'), conn)\n"
        "assert page.count('data:image/png;base64,') == 2, page.count('data:image/png;base64,')\n"
        "loaded = sorted(m for m in ('seaborn', 'scipy', 'matplotlib.pyplot') if m in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_close_leaves_pyplot_alone_for_figures_of_charts():
    fig = charts._figure((2, 2))
    fig.subplots().plot([1, 2], [1, 2])
    charts._close(fig)
    png = _uri_png(charts.figure_data_uri(fig))
    assert png.startswith(b"\x89PNG")
