"""A dry run counts the ingest log rows and originals a real run adds (session 15): its `rows_added` left both
tables out, so it read as if the files would leave no trace of themselves."""
from __future__ import annotations

import json

import pytest

import benchmark_db_converter
from tests.test_updater import perf_doc, write


def added(capsys, folder, db, *extra: str) -> dict:
    assert benchmark_db_converter.main(["--input-dir", str(folder), "--db", db, "--format", "json", "--quiet",
                                        *extra]) == 0
    return json.loads(capsys.readouterr().out)["rows_added"]


@pytest.mark.slow  # about 1 s: four ingests
def test_dry_run_counts_log_rows_and_originals_as_the_real_run_adds_them(tmp_path, capsys):
    folder, db = tmp_path / "in", str(tmp_path / "db.duckdb")
    write(folder / "a.json", perf_doc())
    write(folder / "b.json", perf_doc(model="t5-small"))
    write(folder / "copy_of_a.json", perf_doc())  # the same content: logged, its original kept once
    (folder / "broken.json").write_text('{"model": ')  # failed: logged, its original kept
    dry = added(capsys, folder, db, "--dry-run")
    real = added(capsys, folder, db)
    assert dry["ingested_files"] == 4 and dry["source_documents"] == 3
    real.pop("compression_dictionaries", None)  # made by the real run only, from the files it stores
    assert dry == real
    # a changed file (its earlier original goes), a new file and one unchanged
    write(folder / "b.json", perf_doc(model="t5-small", latency=30.0, throughput=33.3))
    write(folder / "c.json", perf_doc(model="gpt2"))
    dry = added(capsys, folder, db, "--dry-run")
    real = added(capsys, folder, db)
    assert dry["ingested_files"] == 1 and "source_documents" in dry
    assert dry == real


@pytest.mark.slow  # about 1 s: two updater runs
def test_the_updaters_dry_run_counts_them_too(tmp_path, capsys):
    """The updater merges one summary per input: it left the log rows and originals out of its dry run."""
    import benchmark_db_updater

    folder, db = tmp_path / "in", str(tmp_path / "db.duckdb")
    write(folder / "a.json", perf_doc())
    write(folder / "b.json", perf_doc(model="t5-small"))

    def updater(*extra: str) -> dict:
        assert benchmark_db_updater.main(["--scan-dir", str(folder), "--db", db, "--format", "json", "--quiet",
                                          *extra]) == 0
        return json.loads(capsys.readouterr().out)["rows_added"]

    dry = updater("--dry-run")
    real = updater()
    real.pop("compression_dictionaries", None)
    assert dry["ingested_files"] == 2 and dry["source_documents"] == 2 and dry == real
