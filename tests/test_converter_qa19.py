"""Converter version 7 (session 16 QA): values that failed a file, vanished or were misread."""
from __future__ import annotations

import hashlib
import json

import duckdb
import pytest

import benchmark_db_migration
from benchmark_db import convert
from benchmark_db.convert import local_time_offset
from benchmark_db.normalize import parse_timestamp


def converted(doc: dict):
    content = json.dumps(doc).encode()
    return convert.convert_document(content, "x.json", hashlib.sha256(content).hexdigest())


def performance(doc: dict) -> list:
    return [r for r in converted(doc).records if type(r).__name__ == "PerformanceResults"]


@pytest.mark.parametrize("flag", ["is_simulated", "is_simulation", "simulated"])
@pytest.mark.parametrize("value, simulated", [(1, True), (1.0, True), (0, False), ("1", True), (True, True)])
def test_a_simulation_flag_written_as_a_number_flags_the_row(flag, value, simulated):
    [row] = performance({"model_name": "m", "hardware_type": "cpu", "throughput_items_per_second": 5, flag: value})
    assert row.is_simulated is simulated


@pytest.mark.parametrize("text, when", [
    ("13/02/2024", "2024-02-13 00:00:00"), ("02/13/2024", "2024-02-13 00:00:00"),
    ("2024/02/13", "2024-02-13 00:00:00"), ("13.02.2024", "2024-02-13 00:00:00"),
    ("13/02/2024 10:00:00", "2024-02-13 10:00:00"), ("01/02/2024", None), ("1.2.2024", None),
])
def test_dates_without_a_time_of_day_are_read_and_ambiguous_ones_are_not(text, when):
    parsed = parse_timestamp(text)
    assert (None if parsed is None else str(parsed)) == when


def test_one_pair_of_stamps_three_hours_and_minutes_apart_is_a_long_run_not_a_zone():
    # a UTC machine whose run took 3 h 2 min: the zone-less start and the epoch end are not the same moment
    doc = '{"metadata": {"timestamp": "2025-03-01T10:00:00"}, "finished": {"timestamp": 1740834120}}'
    assert local_time_offset(doc) is None
    # within a minute, one pair still shows the clock's zone (the corpus's single pairs: within 18 s)
    assert str(local_time_offset(doc.replace("1740834120", "1740852015"))) == "8:00:00"


def test_a_batch_or_sequence_beyond_the_schema_stays_in_metrics_and_the_file_is_kept():
    rows = performance({"results": [
        {"model_name": "bx", "hardware_type": "cpu", "throughput_items_per_second": 4, "batch_size": 2_000_000},
        {"model_name": "bw", "hardware_type": "cpu", "throughput_items_per_second": 4, "sequence_length": 50_000_000},
        {"model_name": "by", "hardware_type": "cpu", "throughput_items_per_second": 5, "batch_size": 2}]})
    assert [(r.model_name, r.batch_size, r.sequence_length, r.metrics) for r in rows] == [
        ("bx", None, None, {"batch_size": 2_000_000}), ("bw", None, None, {"sequence_length": 50_000_000}),
        ("by", 2, None, None)]


def test_a_negative_figure_is_no_measurement_but_stays_with_the_row():
    [row] = performance({"model_name": "m", "hardware_type": "cpu", "throughput_items_per_second": -5,
                         "average_latency_ms": 3, "memory_mb": -3})
    assert (row.throughput_items_per_second, row.average_latency_ms, row.memory_peak_mb) == (None, 3.0, None)
    assert row.metrics == {"throughput_items_per_second": -5, "memory_mb": -3}
    assert any("negative throughput kept in metrics" in note for note in converted(
        {"model_name": "m", "hardware_type": "cpu", "throughput_items_per_second": -5,
         "average_latency_ms": 3}).conversions)


@pytest.mark.parametrize("written, stored", [("tpu", "tpu"), ("XPU", "xpu"), ("hpu", "hpu"), ("Intel NPU", "npu")])
def test_accelerators_beyond_the_eight_are_stored_under_their_names(written, stored):
    [row] = performance({"model_name": "m", "hardware_type": written, "throughput_items_per_second": 3})
    assert row.hardware_type == stored


def test_an_unknown_hardware_type_is_named_in_the_reason():
    result = converted({"model_name": "m", "hardware_type": "vulkan", "throughput_items_per_second": 3})
    assert result.status == "skipped" and "unknown hardware 'vulkan'" in result.reason


@pytest.mark.slow  # about 1 s: a migration and its dry run
def test_a_nul_in_a_name_fails_its_file_alone_in_the_run_and_its_dry_run(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.json").write_text('{"model_name": "x\\u0000y", "hardware_type": "cpu", "throughput_items_per_second": 4}')
    (folder / "b.json").write_text('{"model_name": "ok", "hardware_type": "cpu", "device_name": "a\\u0000b", '
                                   '"throughput_items_per_second": 4}')
    (folder / "c.json").write_text('{"model_name": "fine", "hardware_type": "cpu", "throughput_items_per_second": 4}')
    db = str(tmp_path / "db.duckdb")
    for dry in (["--dry-run"], []):
        assert benchmark_db_migration.main(["--input-dirs", str(folder), "--db", db, "--quiet", "--format", "json",
                                            *dry]) == 0
        files = {f["path"].rsplit("/", 1)[1]: (f["status"], f["reason"])
                 for f in json.loads(capsys.readouterr().out)["summary"]["files"]}
        assert files == {
            "a.json": ("failed", "a row of models cannot be stored: its model_name contains a NUL character"),
            "b.json": ("failed", "a row of hardware_platforms cannot be stored: its device_name contains a NUL "
                                 "character"),
            "c.json": ("ingested", None)}
    conn = duckdb.connect(db, read_only=True)
    assert conn.execute("SELECT model_name FROM performance_results").fetchall() == [("fine",)]


@pytest.mark.slow  # about 0.6 s
def test_a_field_too_deep_to_write_is_said_as_such(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    depth = 990  # read (the reader takes up to about 1000 levels), but too deep for json.dumps to write back
    (folder / "deep.json").write_text('{"model_name": "m", "hardware_type": "cpu", "throughput_items_per_second": 3, '
                                      '"x": ' + "[" * depth + "]" * depth + "}")
    assert benchmark_db_migration.main(["--input-dirs", str(folder), "--db", str(tmp_path / "db.duckdb"), "--quiet",
                                        "--format", "json"]) == 0
    [file] = json.loads(capsys.readouterr().out)["summary"]["files"]
    assert (file["status"], file["reason"]) == ("failed", "a row of performance_results cannot be stored: a JSON "
                                                          "field (metrics, metadata) is nested too deeply to write")


def test_a_record_not_stored_beside_stored_ones_is_named_in_the_ingest_log():
    """Converter version 8: a file whose other records were stored logged nothing of the one left out (it was in
    the run's metadata only)."""
    result = converted({"results": [{"model_name": "m", "hardware_type": "cpu", "throughput_items_per_second": 3},
                                    {"model_name": "m", "hardware_type": "vulkan", "throughput_items_per_second": 4}]})
    assert result.status == "ingested" and len(performance(
        {"model_name": "m", "hardware_type": "cpu", "throughput_items_per_second": 3})) == 1
    assert result.conversions == ["1 record(s) not stored (test_runs.metadata.records_not_stored): unknown "
                                  "hardware 'vulkan' at /results/1"]
