"""The README's "Importing result files" section checked as a contract (session 12). Each test failed before
its fix."""
from __future__ import annotations

import duckdb
import pytest

import benchmark_db_converter
from tests.test_updater import perf_doc, write


@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_converter_warns_of_files_an_earlier_converter_version_made_that_it_did_not_see(tmp_path, capsys):
    """README: "Files the run does not see (archived, removed or elsewhere) are counted in a warning" naming
    `--reconvert`. The migration and the updater warned; the converter said nothing."""
    db = str(tmp_path / "db.duckdb")
    write(tmp_path / "old" / "a.json", perf_doc())
    write(tmp_path / "new" / "b.json", perf_doc(model="t5-small"))
    assert benchmark_db_converter.main(["--input-dir", str(tmp_path / "old"), "--db", db, "-q"]) == 0
    with duckdb.connect(db) as conn:  # as if an earlier toolkit had made a.json's rows
        conn.execute("UPDATE ingested_files SET converter_version = 1")
    capsys.readouterr()
    assert benchmark_db_converter.main(["--input-dir", str(tmp_path / "new"), "--db", db, "-q"]) == 0
    err = capsys.readouterr().err
    assert "WARNING 1 logged file(s)" in err and "--reconvert" in err, err
