"""Fixtures: small real databases in tmp_path, paths to the shared data. Nothing shared and mutable."""
from __future__ import annotations

import os
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


@pytest.fixture
def db_path(tmp_path) -> str:
    """Path of an empty database file created with the current schema."""
    from benchmark_db.connection import connect

    path = str(tmp_path / "bench.duckdb")
    connect(path).close()
    return path


@pytest.fixture
def fresh_db(db_path):
    """An ORM handle on an empty database file."""
    from benchmark_db_models import BenchmarkDB

    with BenchmarkDB(db_path) as db:
        yield db


@pytest.fixture
def sample_db_path(tmp_path) -> str:
    """Path of a database holding the sample data of create_benchmark_schema.py --sample-data."""
    from scripts.create_benchmark_schema import create_database

    path = str(tmp_path / "sample.duckdb")
    create_database(path, sample_data=True)
    return path
