"""The project's own runner output: versioned documents (`format_version`, `"producer": "benchmark-db-runner"`).

The runner engineer owns the format and its reader (`benchmark_db.runner_format.records_from_document`);
this module only recognises the documents and delegates, importing the reader lazily so the converter works
(and says why it cannot read them) before that module exists.
"""
from __future__ import annotations

RUNNER_PRODUCER = "benchmark-db-runner"


def is_runner_document(doc) -> bool:
    return isinstance(doc, dict) and "format_version" in doc and doc.get("producer") == RUNNER_PRODUCER


def runner_reader():
    """`records_from_document` of benchmark_db.runner_format, or None while that module does not exist."""
    import importlib

    try:
        runner_format = importlib.import_module("benchmark_db.runner_format")
    except ModuleNotFoundError as exc:
        if exc.name not in ("benchmark_db.runner_format", "benchmark_db"):
            raise  # the reader exists but one of its own imports is missing: say so, do not hide it
        return None
    return getattr(runner_format, "records_from_document", None)
