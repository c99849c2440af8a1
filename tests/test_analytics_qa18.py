"""Performance prediction says why results were left out (session 15): results stored without a batch size
(now NULL, not a made-up 1) made "only 0 distinct configuration(s) with throughput" where there were four."""
from __future__ import annotations

import json

import pytest

import benchmark_db_analytics
from benchmark_db_api import BenchmarkDBAPI


@pytest.mark.slow  # about 2 s: imports scikit-learn
def test_prediction_names_the_feature_the_results_lack(db_path, tmp_path, capsys):
    api = BenchmarkDBAPI(db_path)
    for model, hardware in (("bert-base-uncased", "cuda"), ("bert-base-uncased", "cpu"), ("t5-small", "cuda"),
                            ("t5-small", "cpu")):  # the guide's example: no batch_size
        api.store_performance_result(model_name=model, hardware_type=hardware, throughput=123.4, latency_avg=10.5)
    api.db.close()
    code = benchmark_db_analytics.main(["--db", db_path, "--analysis", "performance-prediction",
                                        "--prediction-features", "model_family,hardware_type,batch_size,precision",
                                        "--output-dir", str(tmp_path / "out")])
    index = json.loads((tmp_path / "out" / "analytics_index.json").read_text())
    [analysis] = index["analyses"]
    assert analysis["status"] == "unavailable" and code == 0
    assert "only 0 distinct configuration(s) with throughput; 4 more left out: no batch_size" in analysis["reason"]
