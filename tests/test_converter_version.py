"""The converter version (convert.CONVERTER_VERSION) moves with the converter's output, and a database holding
rows an earlier version made gets them converted again.

The guard: a digest of everything the converter makes of the legacy and foreign corpora (records, kind,
status, reason, unit conversions, categories) is stored beside the version it belongs to. A change to the
readers that changes any of it fails here until the version is bumped and the digest refreshed with

    .venv/bin/python tests/test_converter_version.py --write

so that every database converts those files again on its next run instead of keeping what the old code wrote.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script (--write)
    sys.path.insert(0, str(REPO))

from benchmark_db import convert  # noqa: E402
from benchmark_db.ingest import ingest_files  # noqa: E402
from benchmark_db_models import BenchmarkDB  # noqa: E402
from tests.test_ingest import snapshot  # noqa: E402
from tests.test_updater import perf_doc, write  # noqa: E402

DATA = REPO.parent / "shared" / "data"
GOLDEN = Path(__file__).resolve().parent / "converter_version.json"


def corpus_digest(data: Path = DATA) -> tuple[str, int]:
    """(sha256 of what the converter makes of every JSON file under `data`, number of files)."""
    digest = hashlib.sha256()
    files = sorted(p for p in data.rglob("*.json") if p.is_file())
    for path in files:
        content = path.read_bytes()
        rel = path.relative_to(data).as_posix()  # paths reach the records: keep them machine-independent
        result = convert.convert_document(content, rel, hashlib.sha256(content).hexdigest())
        entry = [rel, result.kind, result.status, result.reason, result.conversions, sorted(result.categories),
                 [[type(r).__name__, dataclasses.asdict(r)] for r in result.records]]
        digest.update(json.dumps(entry, sort_keys=True, default=repr).encode())
        digest.update(b"\n")
    return digest.hexdigest(), len(files)


@pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} is not here (the shared folder sits beside the repository)")
def test_the_version_moves_with_what_the_converter_makes_of_the_corpora():
    stored = json.loads(GOLDEN.read_text())
    digest, files = corpus_digest()
    assert files == stored["files"], "the corpora changed: refresh with tests/test_converter_version.py --write"
    assert (stored["converter_version"], stored["corpus_digest"]) == (convert.CONVERTER_VERSION, digest), (
        "the converter's output on the corpora changed (or the version moved without it): bump "
        "benchmark_db.convert.CONVERTER_VERSION if the records, kinds, statuses or reasons changed, so databases "
        "convert their files again, then run `.venv/bin/python tests/test_converter_version.py --write`")


def _log(db_path, sql="SELECT path, converter_version, reason FROM ingested_files ORDER BY path"):
    with BenchmarkDB(db_path) as db:
        return db.conn.execute(sql).fetchall()


@pytest.mark.slow  # about 0.7 s: outside make test-fast
def test_files_an_earlier_version_converted_are_converted_again(tmp_path):
    src = tmp_path / "results"
    write(src / "a.json", perf_doc())
    write(src / "b.json", perf_doc(model="google/t5-efficient-tiny", latency=10.0, throughput=100.0))
    (src / "broken.json").write_text('{"model": ')
    write(src / "c.json", perf_doc())  # a copy of a.json: skipped as its duplicate
    fresh, upgraded = str(tmp_path / "fresh.duckdb"), str(tmp_path / "upgraded.duckdb")
    with BenchmarkDB(fresh) as db:
        ingest_files(db, [src])
    with BenchmarkDB(upgraded) as db:
        ingest_files(db, [src])
        # as an earlier converter would have left it: different rows under an older version (and none at all)
        db.conn.execute("UPDATE performance_results SET throughput_items_per_second = -1")
        db.conn.execute("UPDATE ingested_files SET converter_version = CASE WHEN path LIKE '%a.json' "
                        f"THEN {convert.CONVERTER_VERSION - 1} END")
    assert _log(upgraded, "SELECT count(*) FROM ingested_files WHERE converter_version IS NULL")[0][0] == 3

    with BenchmarkDB(upgraded) as db:
        summary = ingest_files(db, [src])
    status = {Path(o.path).name: o.status for o in summary.outcomes}
    assert status == {"a.json": "ingested", "b.json": "ingested", "broken.json": "failed", "c.json": "skipped"}
    reasons = {Path(p).name: r for p, _, r in _log(upgraded)}
    assert reasons["a.json"] == (f"converted again: its rows were made by converter version "
                                 f"{convert.CONVERTER_VERSION - 1}, this is version {convert.CONVERTER_VERSION}")
    assert reasons["b.json"].startswith("converted again: its rows predate converter versions")
    assert reasons["c.json"].startswith("duplicate of ")
    # the same database a fresh ingest by this version gives, down to the log's versions
    ignore = {"created_at", "ingested_at", "applied_at", "updated_at", "reason"}
    assert snapshot(upgraded, ignore=ignore) == snapshot(fresh, ignore=ignore)
    assert {v for _, v, _ in _log(upgraded)} == {convert.CONVERTER_VERSION}

    # and once converted by this version, the next run leaves them alone
    with BenchmarkDB(upgraded) as db:
        again = ingest_files(db, [src])
    assert {o.status for o in again.outcomes} == {"unchanged", "failed"}


def _migrate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "benchmark_db_migration.py"), *args], capture_output=True,
                          text=True, cwd=REPO)


@pytest.mark.slow
def test_reconvert_converts_archived_and_removed_files_again_from_their_stored_originals(tmp_path):
    src = tmp_path / "results"
    write(src / "a.json", perf_doc())
    write(src / "sub" / "b.json", perf_doc(model="google/t5-efficient-tiny", latency=10.0, throughput=100.0))
    write(src / "c.json", perf_doc(model="t5-small", latency=12.0, throughput=80.0))
    (src / "broken.json").write_text('{"model": ')
    fresh, db = str(tmp_path / "fresh.duckdb"), str(tmp_path / "db.duckdb")
    assert _migrate("--input-dirs", str(src), "--db", fresh).returncode == 0
    archive = tmp_path / "archived"
    done = _migrate("--input-dirs", str(src), "--db", db, "--action", "archive", "--archive-dir", str(archive))
    assert done.returncode == 0 and not (src / "a.json").exists() and (archive / "results" / "sub" / "b.json").exists()
    with BenchmarkDB(db) as conn:  # as an earlier converter left it
        conn.conn.execute("UPDATE performance_results SET average_latency_ms = 0")
        conn.conn.execute("UPDATE ingested_files SET converter_version = NULL WHERE status <> 'failed'")
    archived_before = _log(db, "SELECT path, archived_to FROM ingested_files ORDER BY path")

    # any run that sees none of them says how to convert them again
    write(tmp_path / "new" / "d.json", perf_doc(model="gpt2", latency=30.0, throughput=33.0))
    hint = _migrate("--input-files", str(tmp_path / "new" / "d.json"), "--db", db)
    assert hint.returncode == 0 and "3 logged file(s) hold rows an earlier converter version made" in hint.stderr
    assert "--reconvert" in hint.stderr

    done = _migrate("--reconvert", "--db", db, "--format", "json")
    assert done.returncode == 0, done.stderr
    files = {Path(f["path"]).name: f["status"] for f in json.loads(done.stdout)["summary"]["files"]}
    assert files == {"a.json": "ingested", "b.json": "ingested", "c.json": "ingested"}
    assert "earlier converter version" not in done.stderr
    # the rows are a fresh ingest's; the files stay archived, and the log says where
    ignore = {"created_at", "ingested_at", "applied_at", "updated_at", "reason", "archived_to"}
    with BenchmarkDB(db) as conn:
        conn.conn.execute("DELETE FROM ingested_files WHERE path LIKE '%d.json'")
        conn.conn.execute("DELETE FROM performance_results WHERE model_name = 'gpt2'")
        conn.conn.execute("DELETE FROM test_runs WHERE source_path LIKE '%d.json'")
        conn.conn.execute("DELETE FROM source_documents WHERE sha256 NOT IN (SELECT sha256 FROM ingested_files)")
        conn.conn.execute("DELETE FROM models WHERE model_name = 'gpt2'")
    assert snapshot(db, ignore=ignore) == snapshot(fresh, ignore=ignore)
    assert _log(db, "SELECT path, archived_to FROM ingested_files ORDER BY path") == archived_before
    again = _migrate("--reconvert", "--db", db, "--format", "json")
    assert json.loads(again.stdout)["summary"]["totals"]["files"] == 0


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print(__doc__)
        return 2
    digest, files = corpus_digest()
    GOLDEN.write_text(json.dumps({"converter_version": convert.CONVERTER_VERSION, "files": files,
                                  "corpus_digest": digest}, indent=2) + "\n")
    print(f"{GOLDEN}: version {convert.CONVERTER_VERSION}, {files} files, digest {digest[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
