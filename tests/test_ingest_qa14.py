"""QA of the converter against real-world mess (session 14): files in the Windows code page, and figures
written as text with their unit. Each test failed before its fix."""
from __future__ import annotations

import hashlib
import json

import duckdb
import pytest

import benchmark_db_migration
from benchmark_db.convert import convert_document
from benchmark_db.source_store import original_text
from tests.test_ingest_qa10 import rows as _rows
from tests.test_updater import perf_doc


def _migrate(tmp_path, files: dict[str, bytes], capsys, *flags: str) -> tuple[int, str]:
    folder, db_path = tmp_path / "in", str(tmp_path / "db.duckdb")
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    code = benchmark_db_migration.main(["--input-dirs", str(folder), "--db", db_path, "--quiet", "--format", "json",
                                         *flags])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, db_path


def _convert(doc: dict):
    return convert_document(json.dumps(doc, ensure_ascii=False).encode(), "/x/a.json", "0" * 64)


def _performance_row(conversion):
    rows = [r for r in conversion.records if type(r).__name__ == "PerformanceResults"]
    assert len(rows) == 1, conversion.reason
    return rows[0]


# ---------------------------------------------------------------------------------------------- encodings
@pytest.mark.slow  # over 0.35 s here: outside make test-fast
def test_a_windows_1252_file_is_read_and_the_reading_is_noted(tmp_path, capsys):
    """A file written by an old Windows tool ('25°C', 'µs' in its notes, a model name with 'é') failed as
    'not UTF-8 text'. Now it is read as Windows-1252, the ingest log says so, and the original bytes are
    kept unchanged."""
    doc = perf_doc(model="café-bert")
    doc["notes"] = "room at 25°C, timer resolution 1 µs – “quoted”"  # en dash and curly quotes: cp1252 only
    data = json.dumps(doc, ensure_ascii=False).encode("cp1252")
    first_bad = next(i for i, byte in enumerate(data) if byte >= 0x80)
    code, db_path = _migrate(tmp_path, {"legacy.json": data}, capsys)
    assert code == 0
    [(status, reason, conversions, sha256)] = _rows(db_path, "SELECT status, reason, conversions, sha256 "
                                                             "FROM ingested_files")
    assert (status, reason) == ("ingested", None)
    assert f"read as Windows-1252: not valid UTF-8 (first bad byte 0x{data[first_bad]:02x} at offset " \
           f"{first_bad})" in json.loads(conversions)
    assert _rows(db_path, "SELECT model_name, average_latency_ms FROM performance_results") == [("café-bert", 21.8)]
    [(metadata,)] = _rows(db_path, "SELECT metadata FROM test_runs")
    assert json.loads(metadata)["notes"] == doc["notes"]
    conn = duckdb.connect(db_path, read_only=True)
    try:
        assert original_text(conn, sha256) == data and sha256 == hashlib.sha256(data).hexdigest()
    finally:
        conn.close()


def test_bytes_windows_1252_leaves_undefined_are_read_as_latin1():
    """0x81, 0x8d, 0x8f, 0x90 and 0x9d have no Windows-1252 character: they are read as Latin-1, so reading
    such a file never fails on its encoding."""
    doc = perf_doc()
    doc["notes"] = "\x81\x8d\x8f\x90\x9d é"
    data = json.dumps(doc, ensure_ascii=False).encode("latin-1")
    conversion = convert_document(data, "/x/a.json", "0" * 64)
    assert conversion.status == "ingested", conversion.reason
    assert conversion.conversions[0] == \
        f"read as Windows-1252: not valid UTF-8 (first bad byte 0x81 at offset {data.index(0x81)})"
    [run] = [r for r in conversion.records if type(r).__name__ == "TestRuns"]
    assert run.metadata["notes"] == doc["notes"]


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",           # an image named .json
    b'{"model": "bert\x00\x01\xff", "latency_ms": 5}',                 # a control character inside a string
    b"\x1f\x8b\x08\x00\xe9\x9a\x00\x00\x03\xff\xab\x56",                # gzip bytes
])
def test_binary_garbage_still_fails_with_line_and_column(data):
    """Bytes that are no JSON in any encoding fail: the reason names the first byte that is not UTF-8, as
    before, and now also where the text read as Windows-1252 stops being JSON (line and column)."""
    conversion = convert_document(data, "/x/a.json", "0" * 64)
    assert (conversion.kind, conversion.status, conversion.records) == ("invalid", "failed", [])
    assert conversion.reason.startswith("not UTF-8 text: byte ")
    assert "; read as Windows-1252, it is no JSON either: invalid JSON: " in conversion.reason
    assert " line 1 column " in conversion.reason


def test_binary_garbage_fails_in_the_migration_without_a_traceback(tmp_path, capsys):
    """The migration names the failed file (exit 1 with --strict) and goes on with the others."""
    code, db_path = _migrate(tmp_path, {"garbage.json": b"\x00\xff\xfe\x01\x02\x9c\x00garbage\x07",
                                        "good.json": json.dumps(perf_doc()).encode()}, capsys, "--strict")
    assert code == 1
    rows = _rows(db_path, "SELECT regexp_extract(path, '[^/]+$'), status, reason FROM ingested_files ORDER BY 1")
    assert [r[:2] for r in rows] == [("garbage.json", "failed"), ("good.json", "ingested")]
    assert "line 1 column" in rows[0][2]


# ---------------------------------------------------------------------------------------------- figures as text
@pytest.mark.parametrize("key, text, column, expected, note", [
    ("latency_ms", "12.5 ms", "average_latency_ms", 12.5, "latency read from text (latency_ms)"),
    ("average_latency", "12.5ms", "average_latency_ms", 12.5, "latency read from text (average_latency)"),
    ("inference_time", "1.2 s", "average_latency_ms", 1200.0, "latency read from text, s -> ms (inference_time)"),
    ("latency", "850 us", "average_latency_ms", 0.85, "latency read from text, us -> ms (latency)"),
    ("latency", "850 µs", "average_latency_ms", 0.85, "latency read from text, us -> ms (latency)"),
    ("latency", "850 μs", "average_latency_ms", 0.85, "latency read from text, us -> ms (latency)"),
    ("throughput", "120 items/s", "throughput_items_per_second", 120.0,
     "throughput read from text (throughput)"),
    ("throughput", "120 it/s", "throughput_items_per_second", 120.0,
     "throughput read from text, it/s -> items/s (throughput)"),
    ("throughput", "120 samples/sec", "throughput_items_per_second", 120.0,
     "throughput read from text, samples/sec -> items/s (throughput)"),
])
def test_a_latency_or_throughput_written_with_its_unit_is_read(key, text, column, expected, note):
    """'12.5 ms', '1.2 s', '850 µs', '120 samples/sec' were NULL (kept in metrics); a record holding only such
    a figure was not even a measurement. Now they are read, converted to the column's unit, and noted."""
    doc = {"model": "bert-base-uncased", "hardware": "cuda", key: text}
    conversion = _convert(doc)
    assert conversion.status == "ingested", conversion.reason
    row = _performance_row(conversion)
    assert getattr(row, column) == pytest.approx(expected)
    assert key not in (row.metrics or {})
    assert note in conversion.conversions


@pytest.mark.parametrize("key, text, expected, note", [
    ("memory_usage", "512 MB", 512.0, "memory read from text (memory_usage)"),
    ("memory_usage", "1.5 GB", 1536.0, "memory read from text, gb -> MB (memory_usage)"),
    ("memory_peak_mb", "1.5 GiB", 1536.0, "memory read from text, gib -> MB (memory_peak_mb)"),
    ("peak_memory", "2048 KB", 2.0, "memory read from text, kb -> MB (peak_memory)"),
])
def test_a_memory_figure_written_with_its_unit_is_read(key, text, expected, note):
    doc = {"model": "bert-base-uncased", "hardware": "cuda", "latency_ms": 5.0, key: text}
    conversion = _convert(doc)
    row = _performance_row(conversion)
    assert row.memory_peak_mb == pytest.approx(expected)
    assert key not in (row.metrics or {})
    assert note in conversion.conversions


def test_percentiles_and_total_time_written_with_their_unit_are_read():
    doc = {"model": "bert-base-uncased", "hardware": "cuda", "latency": "850 us", "latency_p50": "0.8 ms",
           "p99_latency": "2 ms", "total_time": "2 min"}
    conversion = _convert(doc)
    row = _performance_row(conversion)
    assert (row.average_latency_ms, row.latency_p50_ms, row.latency_p99_ms, row.total_time_seconds) == \
        pytest.approx((0.85, 0.8, 2.0, 120.0))
    assert row.metrics is None
    assert "total time read from text, min -> s (total_time)" in conversion.conversions


@pytest.mark.parametrize("key, text", [
    ("latency_ms", "fast"), ("latency_ms", "N/A"), ("latency_ms", "12.5 furlongs"), ("latency_ms", "512 MB"),
    ("average_latency", "12.5 items/s"), ("memory_usage", "12 ms"), ("memory_peak_mb", "lots"),
    ("throughput", "120 MB/s"), ("throughput", "120 tokens/s"), ("latency_p50", "about 3 ms"),
    ("total_time", "12 GB"), ("latency_ms", "12.5 ms ± 0.3 ms"), ("latency_ms", "nan ms"),
])
def test_text_that_is_no_figure_of_the_key_stays_null_and_in_metrics(key, text):
    """Never invent a value: words, unknown units and units of another dimension are not read."""
    doc = {"model": "bert-base-uncased", "hardware": "cuda", "throughput_items_per_second": 40.0,
           "average_latency_ms": 25.0, key: text}
    conversion = _convert(doc)
    row = _performance_row(conversion)
    assert row.metrics == {key: text}
    assert not any("read from text" in note for note in conversion.conversions)
    if key == "memory_usage" or key == "memory_peak_mb":
        assert row.memory_peak_mb is None
    if key == "total_time":
        assert row.total_time_seconds is None


def test_a_record_whose_only_figure_is_unreadable_text_is_still_no_measurement():
    conversion = _convert({"model": "bert-base-uncased", "hardware": "cuda", "latency_ms": "fast"})
    assert conversion.status == "skipped"


def test_plain_numbers_keep_their_reading():
    """Numeric strings were read as numbers in the key's unit and still are; a bare number under a memory key
    that names no unit ('memory_usage': 512) is kept in metrics, not guessed to be MB."""
    doc = {"model": "bert-base-uncased", "hardware": "cuda", "latency_ms": "12.5", "memory_gb": "2",
           "throughput": "40", "memory_usage": 512}
    conversion = _convert(doc)
    row = _performance_row(conversion)
    assert (row.average_latency_ms, row.memory_peak_mb, row.throughput_items_per_second) == (12.5, 2048.0, 40.0)
    assert row.metrics == {"memory_usage": 512}
    assert not any("read from text" in note for note in conversion.conversions)


def test_figures_written_as_text_reach_the_database_with_their_note(tmp_path, capsys):
    doc = {"model": "bert-base-uncased", "hardware": "cuda", "timestamp": "2025-03-06T17:48:24",
           "results": [{"batch_size": 4, "latency": "850 µs", "throughput": "120 samples/sec",
                        "memory_usage": "1.5 GB"},
                       {"batch_size": 8, "latency": "slow", "throughput": 96.0}]}
    code, db_path = _migrate(tmp_path, {"a.json": json.dumps(doc, ensure_ascii=False).encode()}, capsys)
    assert code == 0
    rows = _rows(db_path, "SELECT batch_size, average_latency_ms, throughput_items_per_second, memory_peak_mb, "
                          "metrics FROM performance_results ORDER BY batch_size")
    assert [r[:4] for r in rows] == [(4, pytest.approx(0.85), 120.0, 1536.0), (8, None, 96.0, None)]
    assert rows[0][4] is None and json.loads(rows[1][4]) == {"latency": "slow"}
    [(conversions,)] = _rows(db_path, "SELECT conversions FROM ingested_files")
    assert {"latency read from text, us -> ms (latency)", "memory read from text, gb -> MB (memory_usage)",
            "throughput read from text, samples/sec -> items/s (throughput)"} <= set(json.loads(conversions))


@pytest.mark.parametrize("unit", ["\u00b5s", "\u03bcs", "microseconds", "microsecond", "usecs"])
def test_a_stat_block_in_microseconds_is_read_whichever_mu_it_writes(unit):
    """The micro sign (U+00B5) and the Greek mu (U+03BC) look alike; editors and locales write either."""
    doc = {"model": "bert-base-uncased", "hardware": "cpu", "batch_size": 1,
           "latency": {"mean": 850, "p50": 800, "unit": unit}}
    row = _performance_row(_convert(doc))
    assert row.average_latency_ms == pytest.approx(0.85) and row.latency_p50_ms == pytest.approx(0.8)


def test_a_memory_block_whose_unit_field_says_byte_is_read():
    """Unit fields and text figures share one table of memory units; `byte` (singular) was text-only."""
    doc = {"model": "bert-base-uncased", "hardware": "cpu", "batch_size": 1, "latency_ms": 5.0,
           "memory": {"peak": 536870912, "unit": "byte"}}
    assert _performance_row(_convert(doc)).memory_peak_mb == pytest.approx(512.0)
