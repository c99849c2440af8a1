"""--fix-inconsistencies and --validate on latency figures in mixed units (QA round 16).

`--fix-inconsistencies` scaled every latency column when the average alone was in seconds, turning correct
percentiles and samples into figures 1000 times too large, and `--validate` then found nothing wrong. Each
test failed before its fix.
"""
from __future__ import annotations

import json

import pytest

import benchmark_db_migration
from tests.test_migration import query

pytestmark = pytest.mark.slow  # each test runs the tool two or three times: 0.3 to 1.3 s here

LATENCY = "average_latency_ms, latency_p50_ms, latency_p99_ms, latency_stddev_ms, latency_samples_ms"


def planted(db_path: str, **rows: dict) -> dict[str, int]:
    """Performance rows of bert-base-uncased on cpu, batch 8 unless told; {name: result_id}."""
    from benchmark_db_models import BenchmarkDB, PerformanceResults, TestRuns

    with BenchmarkDB(db_path) as db:
        run = db.insert_test_runs(TestRuns(test_name="qa16"))
        model, cpu = db.get_or_add_model("bert-base-uncased"), db.get_or_add_hardware("cpu")
        ids = {}
        for sequence_length, (name, figures) in enumerate(rows.items(), start=1):
            row = PerformanceResults(model_id=model, hardware_id=cpu, run_id=run, sequence_length=sequence_length,
                                     **{"batch_size": 8, **figures})
            db.insert_many([row])
            ids[name] = query_id(db, sequence_length)
    return ids


def query_id(db, sequence_length: int) -> int:
    return db.conn.execute("SELECT result_id FROM performance_results WHERE sequence_length = ?",
                           [sequence_length]).fetchone()[0]


def latency(db_path: str, row_id: int) -> tuple:
    """The row's latency figures, rounded (x * 1000.0 * 0.001 is not always x)."""
    row = query(db_path, f"SELECT {LATENCY} FROM performance_results WHERE result_id = ?", [row_id])[0]
    return tuple([round(x, 6) for x in v] if isinstance(v, list) else v if v is None else round(v, 6) for v in row)


def migration(capsys, *argv: str) -> tuple[int, dict]:
    code = benchmark_db_migration.main([*argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


# 418.8 items/s at batch 8 is 19.1 ms a batch
QA_ROW = {"average_latency_ms": 0.0191, "latency_p50_ms": 19.0, "latency_p99_ms": 21.5,
          "latency_samples_ms": [18.9, 19.0, 19.2, 21.5], "throughput_items_per_second": 418.8}
MIRROR_ROW = {"average_latency_ms": 19.1, "latency_p50_ms": 0.019, "latency_p99_ms": 0.0215,
              "latency_stddev_ms": 0.0009, "latency_samples_ms": [0.0189, 0.019, 0.0192, 0.0215],
              "throughput_items_per_second": 418.8}
# a heavy tail (p99 60 times the average) is still within what the average allows: 1% of samples at 60x
HEAVY_TAIL_ROW = {"average_latency_ms": 19.1, "latency_p50_ms": 12.0, "latency_p99_ms": 1150.0,
                  "throughput_items_per_second": 418.8}


def test_only_the_average_in_seconds_is_scaled_and_a_second_run_changes_nothing(db_path, capsys):
    ids = planted(db_path, qa=QA_ROW, heavy_tail=HEAVY_TAIL_ROW)
    code, first = migration(capsys, "--fix-inconsistencies", "--db", db_path)
    assert code == 0 and first["problems"] == []
    # before: "latency columns were in seconds", and p50 19000, p99 21500, samples [18900, ...]
    assert [(f["fix"], f["id"]) for f in first["fixes"]] == [("unit", ids["qa"])]
    assert first["fixes"][0]["detail"].startswith("average_latency_ms was in seconds: converted to ms")
    assert latency(db_path, ids["qa"]) == (19.1, 19.0, 21.5, None, [18.9, 19.0, 19.2, 21.5])
    assert latency(db_path, ids["heavy_tail"]) == (19.1, 12.0, 1150.0, None, None)
    assert migration(capsys, "--fix-inconsistencies", "--db", db_path) == (0, {
        "summary": None, "artifacts": [], "fixes": [], "problems": []})


def test_percentiles_and_samples_in_seconds_are_scaled_and_the_average_kept(db_path, capsys):
    ids = planted(db_path, mirror=MIRROR_ROW)
    code, result = migration(capsys, "--validate", "--db", db_path)
    assert code == 1 and [(p["check"], p["fixable"]) for p in result["problems"]] == [("unit", True)]
    # before: nothing found (the average agrees with the throughput)
    assert result["problems"][0]["detail"].startswith("latency_p50_ms 0.019, latency_p99_ms 0.0215, "
                                                      "latency_samples_ms (median 0.0191), latency_stddev_ms 0.0009 are in seconds")
    code, result = migration(capsys, "--fix-inconsistencies", "--db", db_path)
    assert code == 0 and [f["id"] for f in result["fixes"]] == [ids["mirror"]] and result["problems"] == []
    assert latency(db_path, ids["mirror"]) == (19.1, 19.0, 21.5, 0.9, [18.9, 19.0, 19.2, 21.5])
    assert migration(capsys, "--fix-inconsistencies", "--db", db_path)[1]["fixes"] == []


def test_disagreement_that_nothing_decides_is_listed_for_a_person_not_fixed(db_path, capsys):
    # no throughput, no samples, no total time: the average or p50 may be the wrong one
    ids = planted(db_path, unsure={"average_latency_ms": 19.1, "latency_p50_ms": 0.019})
    code, result = migration(capsys, "--fix-inconsistencies", "--db", db_path)
    assert code == 1 and result["fixes"] == []
    [problem] = result["problems"]
    assert (problem["check"], problem["id"], problem["fixable"]) == ("unit", ids["unsure"], False)
    assert "average_latency_ms 19.1; latency_p50_ms 0.019" in problem["detail"]
    assert problem["detail"].endswith("needs a person")
    assert latency(db_path, ids["unsure"]) == (19.1, 0.019, None, None, None)


@pytest.mark.parametrize("throughput", [418.8, None])
def test_validate_flags_latency_columns_1000_times_apart(db_path, capsys, throughput):
    """What the old fix left behind: the average right, everything else 1000 times too large."""
    damaged = {"average_latency_ms": 19.1, "latency_p50_ms": 19000.0, "latency_p99_ms": 21500.0,
               "latency_samples_ms": [18900.0, 19000.0, 19200.0, 21500.0], "throughput_items_per_second": throughput}
    ids = planted(db_path, damaged=damaged)
    code, result = migration(capsys, "--validate", "--db", db_path)
    # before: exit 0, "validation: 0 problems"
    assert code == 1 and [(p["check"], p["id"]) for p in result["problems"]] == [("unit", ids["damaged"])]
    detail = result["problems"][0]["detail"]
    assert "latency_p50_ms 19000" in detail and result["problems"][0]["fixable"] == (throughput is not None)
    if throughput is not None:  # the throughput proves the average: the rest was in microseconds
        assert "are in microseconds, judging by the row's throughput and batch size" in detail
        assert migration(capsys, "--fix-inconsistencies", "--db", db_path)[0] == 0
        assert latency(db_path, ids["damaged"]) == (19.1, 19.0, 21.5, None, [18.9, 19.0, 19.2, 21.5])


def test_summary_lines_say_1_problem_and_1_fix(db_path, capsys):
    ids = planted(db_path, qa=QA_ROW, unsure={"average_latency_ms": 19.1, "latency_p50_ms": 0.019})
    assert benchmark_db_migration.main(["--fix-inconsistencies", "--db", db_path, "--format", "table"]) == 1
    captured = capsys.readouterr()
    # before: "1 fixes made", "validation: 1 problems", "validation found 1 problems"
    assert captured.out.startswith("1 fix made\n") and "\nvalidation: 1 problem:\n" in captured.out
    assert str(ids["unsure"]) in captured.out.split("validation: 1 problem:")[1]
    assert captured.err.strip().splitlines()[-1] == "validation found 1 problem"


def test_the_ingest_summary_says_1_file(tmp_path, capsys):
    """It read '1 files, 1 ingested' (a new user's walkthrough of the README)."""
    from tests.test_updater import perf_doc, write

    write(tmp_path / "in" / "a.json", perf_doc())
    assert benchmark_db_migration.main(["--db", str(tmp_path / "db.duckdb"), "--input-dirs", str(tmp_path / "in"),
                                        "--format", "table", "--quiet"]) == 0
    assert "1 file, 1 ingested" in capsys.readouterr().out
