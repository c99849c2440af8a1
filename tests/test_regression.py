"""benchmark_db.regression: the regression check over real DuckDB files, reference-db and last-days modes."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmark_db.connection import connect
from benchmark_db.errors import UsageError
from benchmark_db.regression import regression_check
from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

MODELS = [("bert-base-uncased", "bert", 110.0), ("t5-small", "t5", 60.0), ("google/vit-base-patch16-224", "vit", 86.0)]
HARDWARE = [("cpu", "Intel Xeon", 1.0), ("cuda", "NVIDIA A100", 12.0)]
BATCHES = (1, 8)


def build_db(path, *, seed, when, slow=None, factor=1.0, samples=True, runs=1, improve=None, simulated=None):
    """A database with one run (or several) of every model x hardware x batch; `slow` (model, hw, batch)
    gets its latency multiplied by `factor`, `improve` by 0.85, `simulated` is written flagged and 30% slower."""
    rng = np.random.default_rng(seed)
    with BenchmarkDB(str(path)) as db, db.transaction():
        records = []
        for r in range(runs):
            started = when + dt.timedelta(hours=r)
            run_id = db.insert_test_runs(TestRuns(test_name=f"bench-{seed}-{r}", test_type="performance",
                                                  started_at=started, success=True))
            for name, family, params in MODELS:
                mid = db.get_or_add_model(name, model_family=family, parameters_million=params)
                for kind, device, speed in HARDWARE:
                    hid = db.get_or_add_hardware(kind, device)
                    for batch in BATCHES:
                        base = (1 + params * 0.05 * batch ** 0.8) / speed
                        key = (name, kind, batch)
                        if key == slow:
                            base *= factor
                        if key == improve:
                            base *= 0.85
                        if key == simulated:
                            base *= 1.3
                        values = base * rng.lognormal(0, 0.04, 25)
                        records.append(PerformanceResults(
                            run_id=run_id, model_id=mid, hardware_id=hid, model_name=name, hardware_type=kind,
                            test_case="inference", batch_size=batch, sequence_length=128, precision="fp32",
                            average_latency_ms=float(values.mean()), latency_p50_ms=float(np.median(values)),
                            throughput_items_per_second=batch * 1000 / float(values.mean()),
                            memory_peak_mb=params * 4 + batch * 10, iterations=25,
                            latency_samples_ms=[float(v) for v in values] if samples else None,
                            is_simulated=key == simulated, created_at=started))
        db.insert_many(records)
    return str(path)


T0 = dt.datetime(2026, 1, 10, 12, 0)


@pytest.fixture(scope="session")
def _pair_template(tmp_path_factory) -> Path:
    """The reference and current databases, made once per session (per xdist worker)."""
    folder = tmp_path_factory.mktemp("regression_pair")
    build_db(folder / "ref.duckdb", seed=1, when=T0)
    build_db(folder / "cur.duckdb", seed=2, when=T0 + dt.timedelta(days=1), slow=("t5-small", "cuda", 8), factor=1.10)
    assert not list(folder.glob("*.wal"))  # every byte is in the files: a copy is the same database
    return folder


@pytest.fixture
def pair(tmp_path, _pair_template):
    """This test's own copies of the reference and the current database (one t5-small row 10% slower)."""
    for name in ("ref.duckdb", "cur.duckdb"):
        shutil.copyfile(_pair_template / name, tmp_path / name)
    return str(tmp_path / "ref.duckdb"), str(tmp_path / "cur.duckdb")


def check(cur, ref=None, **kwargs):
    with connect(cur, read_only=True) as conn:
        if ref is None:
            return regression_check(conn, **kwargs)
        with connect(ref, read_only=True) as rconn:
            return regression_check(conn, reference_conn=rconn, **kwargs)


@pytest.mark.slow  # over 1.5 s: outside make test-fast
def test_ten_percent_slower_model_is_named_exactly(pair):
    ref, cur = pair
    report = check(cur, ref)
    assert report.has_regression and report.verdict == "regression"
    (reg,) = report.regressions
    assert (reg.key["model"], reg.key["hardware"], reg.key["batch_size"]) == ("t5-small", "cuda", 8)
    assert reg.evidence == "samples" and reg.result.p_value < 0.01
    assert reg.result.change_pct == pytest.approx(10, abs=4)
    assert report.improvements == [] and len(report.unchanged) == len(MODELS) * len(HARDWARE) * len(BATCHES) - 1
    data = json.loads(json.dumps(report.to_dict()))
    assert data["has_regression"] is True and data["regressions"][0]["model"] == "t5-small"
    md = report.to_markdown()
    assert "regression" in md.splitlines()[0]
    row = next(line for line in md.splitlines() if line.startswith("| t5-small"))
    assert "| cuda |" in row and "| 8 |" in row and "fp32" in row and "%" in row
    assert md.count("| t5-small") == 1 and "bert-base-uncased" not in md


@pytest.mark.slow  # about 0.8 s: outside make test-fast
def test_same_distributions_report_no_regression(tmp_path):
    ref = build_db(tmp_path / "ref.duckdb", seed=3, when=T0)
    cur = build_db(tmp_path / "cur.duckdb", seed=4, when=T0 + dt.timedelta(days=1))
    report = check(cur, ref)
    assert not report.has_regression and report.regressions == [] and report.improvements == []
    assert report.verdict == "no regression" and report.compared == 12
    assert "no regression" in report.to_markdown().splitlines()[0]


@pytest.mark.slow  # about 1.4 s
def test_improvements_are_reported_as_improvements(tmp_path):
    ref = build_db(tmp_path / "ref.duckdb", seed=5, when=T0)
    cur = build_db(tmp_path / "cur.duckdb", seed=6, when=T0 + dt.timedelta(days=1), improve=("bert-base-uncased", "cpu", 1))
    report = check(cur, ref)
    assert not report.has_regression
    (imp,) = report.improvements
    assert imp.key["model"] == "bert-base-uncased" and imp.result.change_pct < -5
    assert "Improvements" in report.to_markdown()
    # the same data seen as throughput: still an improvement, never a regression
    report = check(cur, ref, metric="throughput")
    assert not report.has_regression and [i.key["model"] for i in report.improvements] == ["bert-base-uncased"]


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_throughput_regression_direction(pair):
    ref, cur = pair
    report = check(cur, ref, metric="throughput")
    assert [(r.key["model"], r.key["batch_size"]) for r in report.regressions] == [("t5-small", 8)]
    assert report.regressions[0].result.change_pct < 0


@pytest.mark.slow  # about 0.8 s: outside make test-fast
def test_aggregates_only_say_the_evidence_is_weaker(tmp_path):
    ref = build_db(tmp_path / "ref.duckdb", seed=1, when=T0, samples=False)
    cur = build_db(tmp_path / "cur.duckdb", seed=2, when=T0 + dt.timedelta(days=1), samples=False,
                   slow=("t5-small", "cuda", 8), factor=1.25)
    report = check(cur, ref)
    assert [r.key["model"] for r in report.regressions] == ["t5-small"]
    assert report.regressions[0].evidence == "aggregates" and report.regressions[0].result.p_value is None
    assert "weaker" in report.to_markdown()


@pytest.mark.slow  # about 0.9 s: outside make test-fast
def test_filters_and_simulated_rows(tmp_path):
    ref = build_db(tmp_path / "ref.duckdb", seed=1, when=T0)
    cur = build_db(tmp_path / "cur.duckdb", seed=2, when=T0 + dt.timedelta(days=1),
                   simulated=("bert-base-uncased", "cuda", 1))
    report = check(cur, ref)
    assert not report.has_regression
    assert any("only in the reference" in s["reason"] for s in report.skipped)  # its real row is gone here
    # asked for, simulated rows are a configuration of their own: never compared with the measured ones
    report = check(cur, ref, include_simulated=True)
    assert not report.has_regression
    assert [(s["is_simulated"], s["reason"]) for s in report.skipped] == [
        (False, "only in the reference database"), (True, "no reference results (new configuration)")]
    only_vit = check(cur, ref, model="vit", hardware="cpu")
    assert only_vit.compared == 2 and {g.key["model"] for g in only_vit.unchanged} == {"google/vit-base-patch16-224"}


@pytest.mark.slow  # about 0.7 s: outside make test-fast
def test_last_days_compares_recent_rows_with_older_ones(tmp_path):
    path = tmp_path / "history.duckdb"
    build_db(path, seed=7, when=T0, runs=3)
    build_db(path, seed=8, when=T0 + dt.timedelta(days=10), runs=2, slow=("bert-base-uncased", "cpu", 8), factor=1.12)
    report = check(str(path), last_days=3, now=T0 + dt.timedelta(days=11))
    assert report.mode == "last-days"
    assert [(r.key["model"], r.key["hardware"], r.key["batch_size"]) for r in report.regressions] == [
        ("bert-base-uncased", "cpu", 8)]
    assert report.regressions[0].rows_before == 3 and report.regressions[0].rows_after == 2
    nothing = check(str(path), last_days=3, now=T0 + dt.timedelta(days=100))
    assert nothing.verdict == "nothing to compare" and not nothing.has_regression
    assert "nothing to compare" in nothing.to_markdown()
    latest = check(str(path))  # no reference: the latest run against every earlier one
    assert [r.key["batch_size"] for r in latest.regressions] == [8]


def test_empty_database_has_nothing_to_compare(db_path, tmp_path):
    ref = build_db(tmp_path / "ref.duckdb", seed=1, when=T0)
    report = check(db_path, ref)
    assert report.verdict == "nothing to compare" and report.compared == 0 and not report.has_regression
    assert all("only in the reference" in s["reason"] for s in report.skipped)


def test_bad_arguments_are_usage_errors(pair):
    ref, cur = pair
    with pytest.raises(UsageError):
        check(cur, metric="speed")
    with pytest.raises(UsageError):
        check(cur, ref, last_days=3)
    with pytest.raises(UsageError):
        check(cur, alpha=2)


def test_model_and_hardware_filters_read_like_the_reports_and_a_miss_is_db004(pair):
    """--model takes the reports' spellings (comma list, the name without its organisation, *), --hardware a
    comma list; a filter that matches nothing is DB004 naming what exists, not a silent 'nothing to compare'
    that would let a misspelt model pass a CI gate."""
    from benchmark_db.errors import QueryError

    ref, cur = pair
    both = check(cur, ref, model="t5-small,vit-base-patch16-224", hardware="cuda")
    assert both.compared == 4 and [r.key["model"] for r in both.regressions] == ["t5-small"]
    assert {g.key["model"] for g in both.unchanged} == {"google/vit-base-patch16-224", "t5-small"}
    assert check(cur, ref, model="google/*", hardware="cpu,cuda").compared == 4
    assert check(cur, ref, model="T5-Small", hardware="CUDA").compared == 2
    with pytest.raises(QueryError) as err:
        check(cur, ref, model="t5-smal")
    assert err.value.code == "DB004" and "t5-small" in err.value.hint


@pytest.mark.slow  # about 0.9 s
def test_simulated_rows_asked_for_are_never_pooled_with_measured_ones(tmp_path):
    """Session 16: with include_simulated, simulated rows 30% slower that only the recent window holds were
    pooled with the measured rows of the same configuration, which read as a measured regression."""
    path = tmp_path / "history.duckdb"
    build_db(path, seed=7, when=T0, runs=3)
    build_db(path, seed=8, when=T0 + dt.timedelta(days=10), runs=2)
    build_db(path, seed=9, when=T0 + dt.timedelta(days=10, minutes=30), simulated=("t5-small", "cpu", 8))
    report = check(str(path), last_days=3, now=T0 + dt.timedelta(days=11), include_simulated=True)
    assert not report.has_regression
    measured = [g for g in report.unchanged if (g.key["model"], g.key["hardware"], g.key["batch_size"]) ==
                ("t5-small", "cpu", 8)]
    assert [(g.key["is_simulated"], g.rows_before, g.rows_after) for g in measured] == [(False, 3, 2)]
    assert {"model": "t5-small", "is_simulated": True}.items() <= next(
        s for s in report.skipped if s["is_simulated"]).items()
