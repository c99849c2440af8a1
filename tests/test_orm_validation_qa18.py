"""QA round 18 of the ORM: it stored what the Python API and the REST server refuse (a batch of two million, a
NaN inside metrics, a NUL in a model name) and a typed insert took any record, although the README says
"the ORM refuses the same values, so every path stores a fact alike"."""
from __future__ import annotations

from functools import partial

import pytest

from benchmark_db import schema
from benchmark_db.errors import DataConversionError, UsageError
from benchmark_db_models import (
    RECORD_TYPES,
    HardwareCompatibility,
    HardwarePlatforms,
    IntegrationTestResults,
    Models,
    PerformanceResults,
    RecordColumns,
    TestRuns,
    WebPlatformResults,
)

FACT_TABLES = ("performance_results", "hardware_compatibility", "integration_test_results", "test_runs",
               "web_platform_results")


@pytest.fixture
def db(fresh_db):
    fresh_db.model_id = fresh_db.get_or_add_model("bert-base-uncased")
    fresh_db.hardware_id = fresh_db.get_or_add_hardware("cuda")
    return fresh_db


def _refused(call, *words: str, error=DataConversionError) -> str:
    with pytest.raises(error) as caught:
        call()
    text = str(caught.value)
    assert "\n" not in text and all(word in text for word in words), text
    return text


def _stored(db) -> dict[str, int]:
    return {table: db.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in (*FACT_TABLES, "models", "hardware_platforms")}


def test_int_limits_are_the_apis(db):
    before = _stored(db)
    result = db.insert_performance_results
    for name, limit in (("batch_size", schema.MAX_BATCH_SIZE), ("sequence_length", schema.MAX_SEQUENCE_LENGTH)):
        record = PerformanceResults(db.model_id, db.hardware_id, **{name: limit + 1})
        text = _refused(partial(result, record), "DB003", name, str(limit))
        assert text.startswith(f"error DB003: {name} must be a whole number between 1 and {limit}")
        batch = RecordColumns(PerformanceResults, {"model_id": [db.model_id] * 2, "hardware_id": [db.hardware_id] * 2,
                                                   name: [limit, limit + 1]})
        _refused(partial(db.insert_many, [batch]), "row 1", name)
    assert _stored(db) == before
    # the limits themselves are measurements
    assert result(PerformanceResults(db.model_id, db.hardware_id, batch_size=schema.MAX_BATCH_SIZE,
                                     sequence_length=schema.MAX_SEQUENCE_LENGTH))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_json_fields_refuse_non_finite_numbers_anywhere(db, bad):
    records = [PerformanceResults(db.model_id, db.hardware_id, metrics={"a": bad}),
               PerformanceResults(db.model_id, db.hardware_id, metrics={"runs": [{"ms": [1.0, bad]}]}),
               TestRuns(test_name="t", environment={"x": bad}),
               TestRuns(test_name="t", metadata={"x": {"y": bad}}),
               HardwareCompatibility(db.hardware_id, metadata={"score": bad}),
               IntegrationTestResults("t", "passed", metadata={"x": [bad]}),
               WebPlatformResults(metrics={"x": bad}),
               Models("m", metadata={"x": bad}),
               HardwarePlatforms("cpu", metadata={"x": bad})]
    before = _stored(db)
    for record in records:
        name = next(n for n in ("metrics", "environment", "metadata") if getattr(record, n, None) is not None)
        _refused(partial(db.insert, record), "DB003", name, "non-finite")
    batch = RecordColumns(HardwareCompatibility, {"hardware_id": [db.hardware_id] * 2,
                                                  "metadata": [{"ok": None}, {"bad": bad}]})
    _refused(lambda: db.insert_many([batch]), "row 1", "metadata", "non-finite")
    assert _stored(db) == before
    # null, text and numbers stay allowed, a literal backslash-u0000 too
    assert db.insert(PerformanceResults(db.model_id, db.hardware_id,
                                        metrics={"a": None, "b": "NaN", "c": 1.5, "d": "\\u0000"}))


def test_text_with_a_nul_is_refused_on_every_path(db):
    before = _stored(db)
    _refused(lambda: db.get_or_add_model("a\x00b"), "DB003", "model_name", "NUL")
    _refused(lambda: db.get_or_add_hardware("cuda", "A100\x00"), "DB003", "device_name", "NUL")
    _refused(lambda: db.get_or_add_hardware("cu\x00da"), "DB003", "hardware_type", "NUL")
    _refused(lambda: db.insert_test_runs(TestRuns(test_name="t", git_branch="main\x00")), "git_branch", "NUL")
    _refused(lambda: db.insert(PerformanceResults(db.model_id, db.hardware_id, test_case="x\x00")), "test_case")
    _refused(lambda: db.insert(HardwareCompatibility(db.hardware_id, error_message="\x00")), "error_message")
    _refused(lambda: db.insert(IntegrationTestResults("t\x00", "passed")), "test_name", "NUL")
    _refused(lambda: db.insert(WebPlatformResults(browser="fire\x00fox")), "browser", "NUL")
    _refused(lambda: db.insert(PerformanceResults(db.model_id, db.hardware_id, metrics={"k\x00": 1})), "metrics")
    _refused(lambda: db.insert(TestRuns("t", environment={"k": ["v\x00"]})), "environment", "NUL")
    _refused(lambda: db.insert(Models("bad-\ud800")), "model_name", "Unicode")
    batch = RecordColumns(Models, {"model_name": ["fine", "not\x00fine"]})
    _refused(lambda: db.insert_many([batch]), "row 1", "model_name", "NUL")
    assert _stored(db) == before
    assert db.get_or_add_model("modèle-ünicode")  # text that is not ASCII stays allowed


def test_other_numbers_are_finite_and_measured_amounts_not_negative(db):
    before = _stored(db)
    _refused(lambda: db.insert(HardwareCompatibility(db.hardware_id, compatibility_score=float("nan"))),
             "compatibility_score", "finite")
    _refused(lambda: db.insert(HardwareCompatibility(db.hardware_id, compatibility_score=-0.5)),
             "compatibility_score", "negative")
    _refused(lambda: db.insert(IntegrationTestResults("t", "passed", execution_time_seconds=-1.0)),
             "execution_time_seconds", "negative")
    _refused(lambda: db.insert(TestRuns("t", execution_time_seconds=float("inf"))), "execution_time_seconds")
    _refused(lambda: db.insert(WebPlatformResults(load_time_ms=-3.0)), "load_time_ms", "negative")
    _refused(lambda: db.insert(Models("m", parameters_million=float("nan"))), "parameters_million", "finite")
    batch = RecordColumns(IntegrationTestResults, {"test_name": ["a", "b"], "status": ["passed"] * 2,
                                                   "execution_time_seconds": [1.0, float("nan")]})
    _refused(lambda: db.insert_many([batch]), "row 1", "execution_time_seconds")
    assert _stored(db) == before
    assert db.insert(HardwareCompatibility(db.hardware_id, compatibility_score=0.0))


INSERTS = {Models: "insert_models", HardwarePlatforms: "insert_hardware_platforms", TestRuns: "insert_test_runs",
           PerformanceResults: "insert_performance_results", HardwareCompatibility: "insert_hardware_compatibility",
           IntegrationTestResults: "insert_integration_test_results",
           WebPlatformResults: "insert_web_platform_results"}


def test_typed_inserts_take_only_their_record_type(db):
    assert set(INSERTS) == set(RECORD_TYPES)
    before = _stored(db)
    others = {Models: TestRuns("x"), HardwarePlatforms: Models("x"), TestRuns: WebPlatformResults(),
              PerformanceResults: TestRuns("x"), HardwareCompatibility: IntegrationTestResults("t", "passed"),
              IntegrationTestResults: HardwareCompatibility(db.hardware_id), WebPlatformResults: HardwarePlatforms("x")}
    for cls, method in INSERTS.items():
        other = others[cls]
        _refused(partial(getattr(db, method), other), "DB000", method, cls.__name__, type(other).__name__,
                 error=UsageError)
    _refused(lambda: db.insert_performance_results(RecordColumns(PerformanceResults, {
        "model_id": [db.model_id], "hardware_id": [db.hardware_id]})), "RecordColumns", error=UsageError)
    assert _stored(db) == before
    assert db.insert_test_runs(TestRuns("x"))


def test_json_given_as_text_is_held_to_the_same_cap_and_strictness(db):
    """A JSON field given as text skipped the 64 KiB cap and the NaN check that a dict gets."""
    import json as json_module

    before = _stored(db)
    big = json_module.dumps({"x": "y" * 100_000})
    _refused(partial(db.insert, PerformanceResults(db.model_id, db.hardware_id, metrics=big)), "DB003",
             "metrics is 100,009 bytes as JSON")  # json.dumps adds a space
    _refused(partial(db.insert, PerformanceResults(db.model_id, db.hardware_id, metrics='{"a": NaN}')), "DB003",
             "not strict JSON")
    assert _stored(db) == before
    assert db.insert(PerformanceResults(db.model_id, db.hardware_id, metrics='{"a": "NaN", "b": 1.5}'))
