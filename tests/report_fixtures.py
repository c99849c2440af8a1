"""Small real databases for the report, query and visualizer tests (written through the ORM)."""
from __future__ import annotations

import datetime as dt
import random

START = dt.datetime(2025, 6, 1, 8, 0, 0)


def build_history(path: str, *, runs: int = 24, step_at: int | None = 14, step: float = 0.8, seed: int = 3,
                  simulated_run: bool = True) -> str:
    """A database with one result per run for bert-base-uncased on cpu (batch 1 and 8) and cuda (batch 1).

    From run `step_at` on, cuda batch 1 latency is multiplied by 1/`step` (throughput falls to `step` of the
    level before): a change point the trend chart must mark. Every result keeps 30 raw latency samples.
    """
    from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

    rng = random.Random(seed)
    with BenchmarkDB(path) as db, db.transaction():
        bert = db.get_or_add_model("bert-base-uncased", model_family="bert", parameters_million=110.0)
        t5 = db.get_or_add_model("t5-small", model_family="t5", parameters_million=60.5)
        cpu = db.get_or_add_hardware("cpu", "Test CPU", memory_gb=16.0)
        cuda = db.get_or_add_hardware("cuda", "Test GPU", memory_gb=24.0)
        records = []
        for r in range(runs):
            started = START + dt.timedelta(days=r)
            run_id = db.insert_test_runs(TestRuns(test_name="history", test_type="performance", started_at=started,
                                                  git_commit=f"c{r:03d}", success=True))
            for model_id, name, hw_id, hw, batch, base_ms in (
                    (bert, "bert-base-uncased", cpu, "cpu", 1, 20.0), (bert, "bert-base-uncased", cpu, "cpu", 8, 120.0),
                    (bert, "bert-base-uncased", cuda, "cuda", 1, 2.0), (t5, "t5-small", cpu, "cpu", 1, 9.0)):
                level = base_ms / step if (step_at is not None and hw == "cuda" and r >= step_at) else base_ms
                samples = [round(level * rng.lognormvariate(0, 0.03), 5) for _ in range(30)]
                mean = sum(samples) / len(samples)
                records.append(PerformanceResults(
                    run_id=run_id, model_id=model_id, hardware_id=hw_id, model_name=name, hardware_type=hw,
                    test_case="inference", batch_size=batch, sequence_length=128, precision="fp32",
                    average_latency_ms=mean, throughput_items_per_second=batch * 1000.0 / mean,
                    memory_peak_mb=400.0 + 10 * batch + r, latency_samples_ms=samples, iterations=30,
                    created_at=started))
        if simulated_run:
            records.append(PerformanceResults(
                run_id=None, model_id=bert, hardware_id=db.get_or_add_hardware("rocm"), model_name="bert-base-uncased",
                hardware_type="rocm", test_case="inference", batch_size=1, precision="fp16", average_latency_ms=1.0,
                throughput_items_per_second=1000.0, is_simulated=True, created_at=START))
        db.insert_many(records)
    return path
