"""A label character no installed font has is said once per chart, not once per glyph and drawing
(session 16: a CJK model name gave 6-18 `Glyph ... missing from font(s)` warnings a chart, --quiet or not)."""
from __future__ import annotations

import logging
import warnings

import pytest

from benchmark_db import charts

NO_FONT_HAS = "\ue000\ue001"  # private-use characters: no font draws them


@pytest.mark.slow  # about 0.5 s: matplotlib's first figure
@pytest.mark.parametrize("write", ["png", "svg", "data_uri"])
def test_missing_glyphs_are_one_log_line_and_no_warning(tmp_path, caplog, write):
    fig = charts._figure((4, 3))
    ax = fig.add_subplot()
    ax.plot([1, 2], [1, 2], label=f"model {NO_FONT_HAS}")
    ax.set_title(f"title {NO_FONT_HAS}")
    ax.legend()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning left over fails the test
        with caplog.at_level(logging.WARNING, logger="benchmark_db.charts"):
            if write == "data_uri":
                assert charts.figure_data_uri(fig).startswith("data:image/png;base64,")
            else:
                assert charts.save_figure(fig, tmp_path / f"c.{write}").stat().st_size > 0
    said = [r.getMessage() for r in caplog.records if "no glyph" in r.getMessage()]
    assert said == [f"the installed fonts have no glyph for {' '.join(NO_FONT_HAS)} in the chart's labels: drawn "
                    "as boxes (a font such as Noto Sans CJK, once installed, is used for them)"]


def test_other_warnings_still_reach_the_caller():
    with pytest.warns(UserWarning, match="something else"):
        with charts._missing_glyphs_said_once():
            warnings.warn("something else", UserWarning, stacklevel=1)
