"""Fixtures: small real databases in tmp_path, paths to the shared data. Nothing shared and mutable."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.pop("BENCHMARK_DB_PATH", None)  # tests always say which database they mean


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not here (the project's shared/ folder sits beside the repository)")
    return SHARED


@pytest.fixture
def corpus_dir(shared_dir) -> Path:
    return shared_dir / "data" / "legacy_corpus"


def _made_once(tmp_path_factory, name: str, make) -> Path:
    """A database file made by `make(path)` once per test session (per xdist worker), checkpointed whole."""
    path = tmp_path_factory.mktemp(name) / f"{name}.duckdb"
    make(str(path))
    assert not Path(str(path) + ".wal").exists()  # every byte is in the file: a copy is the same database
    return path


@pytest.fixture(scope="session")
def _empty_db_template(tmp_path_factory) -> Path:
    from benchmark_db.connection import connect

    return _made_once(tmp_path_factory, "empty", lambda path: connect(path).close())


@pytest.fixture(scope="session")
def _sample_db_template(tmp_path_factory) -> Path:
    from scripts.create_benchmark_schema import create_database

    return _made_once(tmp_path_factory, "sample", lambda path: create_database(path, sample_data=True))


@pytest.fixture
def db_path(tmp_path, _empty_db_template) -> str:
    """Path of an empty database file created with the current schema (a copy of one made per session:
    creating and migrating a file costs 0.1 s, copying it a millisecond)."""
    path = tmp_path / "bench.duckdb"
    shutil.copyfile(_empty_db_template, path)
    return str(path)


@pytest.fixture
def fresh_db(db_path):
    """An ORM handle on an empty database file."""
    from benchmark_db_models import BenchmarkDB

    with BenchmarkDB(db_path) as db:
        yield db


@pytest.fixture
def sample_db_path(tmp_path, _sample_db_template) -> str:
    """Path of a database holding the sample data of create_benchmark_schema.py --sample-data (a copy of one
    made per session: making it takes 0.3 s)."""
    path = tmp_path / "sample.duckdb"
    shutil.copyfile(_sample_db_template, path)
    return str(path)


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL on 127.0.0.1 for team-mode tests; skipped with the reason when it cannot run."""
    from tests.postgres_server import PostgresServer

    server = PostgresServer()
    reason = server.available()
    if reason:
        pytest.skip(reason)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def lake_target(postgres_server, tmp_path):
    """A fresh DuckLake (catalog in its own PostgreSQL database, data under tmp_path) with the schema."""
    import uuid

    from benchmark_db.connection import connect, set_default_data_path

    dsn = postgres_server.create_database(f"lake_{uuid.uuid4().hex[:10]}")
    target = f"ducklake:postgres:{dsn}"
    data = tmp_path / "lake_data"
    os.environ["BENCHMARK_DB_DATA_PATH"] = str(data)
    set_default_data_path(None)
    connect(target).close()
    yield target
    os.environ.pop("BENCHMARK_DB_DATA_PATH", None)
