"""--auto-store takes away the folders its moves to processed/ left empty (session 16: a runner's `run1/sub/`
stayed behind, empty, and every later run walked it again); a folder still holding a file stays."""
from __future__ import annotations

import pytest

import benchmark_db_updater

GOOD = '{"model_name": "m", "hardware_type": "cpu", "throughput_items_per_second": %d}'


@pytest.mark.slow  # about 0.6 s: one ingest
def test_auto_store_removes_only_the_folders_it_emptied(tmp_path, capsys):
    root = tmp_path / "auto_store_results"
    (root / "run1" / "sub").mkdir(parents=True)
    (root / "run2").mkdir()
    (root / "empty_before").mkdir()  # not emptied by this run: left as the runner made it
    (root / "run1" / "sub" / "a.json").write_text(GOOD % 3)
    (root / "run1" / "b.json").write_text(GOOD % 4)
    (root / "run2" / "bad.json").write_text("not json")  # failed: stays where it is, and so does its folder
    assert benchmark_db_updater.main(["--auto-store", "--auto-store-dir", str(root),
                                      "--db", str(tmp_path / "db.duckdb"), "--quiet"]) == 0
    left = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    assert left == ["empty_before", "processed", "processed/run1", "processed/run1/b.json", "processed/run1/sub",
                    "processed/run1/sub/a.json", "run2", "run2/bad.json"]
