"""Analytics on the command line (session 15): an error left an empty --output-dir behind, and --predict with
another --analysis was dropped without a word."""
from __future__ import annotations

import pytest

import benchmark_db_analytics


@pytest.mark.slow  # about 1 s: opens the sample database
def test_an_error_leaves_no_empty_output_folder(sample_db_path, tmp_path, capsys):
    out = tmp_path / "ao"
    code = benchmark_db_analytics.main(["--db", sample_db_path, "--analysis", "hardware-comparison",
                                        "--model-family", "zzz", "--output-dir", str(out)])
    assert code == 2 and "error DB004" in capsys.readouterr().err
    assert not out.exists()


def test_predict_with_another_analysis_is_refused(sample_db_path, tmp_path, capsys):
    code = benchmark_db_analytics.main(["--db", sample_db_path, "--analysis", "hardware-comparison", "--predict",
                                        "model_family=bert,hardware_type=cuda,batch_size=1,precision=fp16",
                                        "--output-dir", str(tmp_path / "ao")])
    assert code == 2
    assert "error DB000: --predict applies to --analysis performance-prediction" in capsys.readouterr().err
    assert not (tmp_path / "ao").exists()
