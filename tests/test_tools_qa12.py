"""QA round 12 of the maintenance tool and the CI integrator."""
from __future__ import annotations

import json
import shutil

import pytest

from scripts import ci_benchmark_integrator as integrator


@pytest.mark.parametrize("meta", [{"commit": "abc", "branch": ["main"]}, {"commit": {"sha": "abc"}},
                                  {"git_branch": ["x"]}])
def test_ci_metadata_with_a_list_or_object_for_commit_or_branch_is_db000(sample_db_path, tmp_path, capsys, meta):
    """`--ci-metadata` holding {"branch": ["main"]} ended in "unexpected BinderException" (exit 2)."""
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    shutil.copyfile(sample_db_path, artifacts / "job.duckdb")
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    code = integrator.main(["--artifacts-dir", str(artifacts), "--db", str(tmp_path / "ci.duckdb"),
                            "--ci-metadata", str(tmp_path / "meta.json"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "error DB000: " in err and "must be a string" in err and "unexpected" not in err
    assert not (tmp_path / "ci.duckdb").exists()


def test_an_archive_dir_that_cannot_be_made_is_db000_before_merging(sample_db_path, tmp_path, capsys):
    """`--archive-artifacts --archive-dir FILE/sub` merged everything, then ended in
    "unexpected NotADirectoryError" with the artifacts left in place."""
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    shutil.copyfile(sample_db_path, artifacts / "job.duckdb")
    (tmp_path / "afile").write_text("x")
    code = integrator.main(["--artifacts-dir", str(artifacts), "--db", str(tmp_path / "ci.duckdb"),
                            "--archive-artifacts", "--archive-dir", str(tmp_path / "afile" / "sub"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert "error DB000: cannot make --archive-dir" in err and "unexpected" not in err
    assert not (tmp_path / "ci.duckdb").exists() and (artifacts / "job.duckdb").exists()


def test_check_integrity_as_json_is_one_document(sample_db_path, capsys):
    """`--check-integrity --format json` printed the problems and the step summary as two JSON arrays one after
    the other: json.loads of stdout failed exactly when there was something to report."""
    import duckdb

    import benchmark_db_maintenance

    with duckdb.connect(sample_db_path) as conn:  # a result whose run is gone: one orphan
        conn.execute("UPDATE performance_results SET run_id = 424242 WHERE result_id = "
                     "(SELECT min(result_id) FROM performance_results)")
    assert benchmark_db_maintenance.main(["--check-integrity", "--optimize-db", "--db", sample_db_path,
                                          "--format", "json", "--quiet"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert [p["check"] for p in document["problems"]] == ["orphan"]
    assert [s["step"] for s in document["steps"]] == ["check-integrity", "optimize-db"]


@pytest.mark.parametrize("value", ["abc", "nan", "-1"])
def test_a_bad_lake_lock_timeout_is_a_usage_error(monkeypatch, value):
    """$BENCHMARK_DB_LAKE_LOCK_TIMEOUT=abc ended an ingest or merge into a PostgreSQL lake in
    "unexpected ValueError"; nan or -1 gave up on the write lock at once."""
    from benchmark_db.errors import UsageError
    from benchmark_db.lake import WRITE_LOCK_TIMEOUT_S, lake_lock_timeout

    monkeypatch.setenv("BENCHMARK_DB_LAKE_LOCK_TIMEOUT", value)
    with pytest.raises(UsageError, match="BENCHMARK_DB_LAKE_LOCK_TIMEOUT must be a number of seconds"):
        lake_lock_timeout()
    monkeypatch.setenv("BENCHMARK_DB_LAKE_LOCK_TIMEOUT", "2.5")
    assert lake_lock_timeout() == 2.5
    monkeypatch.delenv("BENCHMARK_DB_LAKE_LOCK_TIMEOUT")
    assert lake_lock_timeout() == WRITE_LOCK_TIMEOUT_S
