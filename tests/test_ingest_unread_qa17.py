"""QA of the updater (session 17): every entry of a scanned folder that is not read is named, by --auto-store as
by --scan-dir. --auto-store passed a symbolic link to a folder over in silence ("no files waiting" while result
files sat behind the link), and both walks left out a named pipe called `*.json` without a word."""
from __future__ import annotations

import os

import duckdb
import pytest

import benchmark_db_updater
from tests.test_updater import write
from tests.test_updater_qa import perf_doc

pytestmark = pytest.mark.slow  # each runs the updater on a new database: over a third of a second


def _logged(db: str) -> list[str]:
    conn = duckdb.connect(db, read_only=True)
    try:
        return [path for (path,) in conn.execute("SELECT path FROM ingested_files ORDER BY path").fetchall()]
    finally:
        conn.close()


def test_auto_store_names_a_linked_folder_it_does_not_read(tmp_path, capsys):
    auto, db = tmp_path / "auto", str(tmp_path / "a.duckdb")
    write(tmp_path / "elsewhere" / "only.json", perf_doc())
    auto.mkdir()
    os.symlink(tmp_path / "elsewhere", auto / "linked")
    assert benchmark_db_updater.main(["--auto-store", "--auto-store-dir", str(auto), "--db", db]) == 0
    said = capsys.readouterr().err
    assert f"{auto / 'linked'} is a symbolic link to a folder" in said and str(tmp_path / "elsewhere") in said
    assert (tmp_path / "elsewhere" / "only.json").exists()  # nothing behind the link was moved


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
@pytest.mark.parametrize("mode", ["--scan-dir", "--auto-store"])
def test_a_pipe_named_like_a_result_file_is_named_not_read(tmp_path, capsys, mode):
    folder, db = tmp_path / "in", str(tmp_path / "p.duckdb")
    write(folder / "a.json", perf_doc())
    os.mkfifo(folder / "pipe.json")  # reading it would block the run
    args = ["--scan-dir", str(folder)] if mode == "--scan-dir" else ["--auto-store", "--auto-store-dir", str(folder)]
    assert benchmark_db_updater.main([*args, "--db", db]) == 0
    said = capsys.readouterr().err
    assert f"{folder / 'pipe.json'} is not read: it is a pipe, socket or device, not a file" in said
    assert [os.path.basename(p) for p in _logged(db)] == ["a.json"]
    assert (folder / "pipe.json").exists()  # left where it is, not moved to processed/
