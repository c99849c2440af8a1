"""Converter QA sweep 7: defects found by comparing stored rows with real corpus files, and the CLI's
handling of a bad --parquet-dir. Each test fails without its fix.

Tests on corpus files read them from ../shared/data and are skipped where the corpus is absent; the
minimal documents copy the relevant part of the file named in the test, so they always run."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pytest

import benchmark_db_converter
from benchmark_db.convert import Conversion, convert_document

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "legacy_corpus"
FOREIGN = Path(__file__).resolve().parents[2] / "shared" / "data" / "foreign"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason="legacy corpus not present")


def convert(doc, path: str = "results/bench.json") -> Conversion:
    data = json.dumps(doc).encode()
    return convert_document(data, path, hashlib.sha256(data).hexdigest())


def convert_file(path: Path) -> Conversion:
    data = path.read_bytes()
    return convert_document(data, str(path), hashlib.sha256(data).hexdigest())


def rows(conv: Conversion, table: str) -> list:
    return [r for r in conv.records if r.TABLE == table]


def model_names(conv: Conversion) -> dict:
    return {r.model_id: r.model_name for r in rows(conv, "models")}


# ---------------------------------------------------------------------------------------------- read_measurement
def test_values_under_known_keys_that_cannot_be_read_stay_in_metrics():
    """A time that is no time, a number for a precision, a dict for a test case: the row keeps them in
    `metrics` (they used to vanish: the key was claimed by its role, then the value was not readable)."""
    conv = convert({"model_name": "bert-base-uncased", "hardware_type": "cuda", "latency_ms": 5,
                    "timestamp": "last tuesday", "precision": 16, "test_case": {"variant": "a"},
                    "device_name": ["GPU 0"]})
    (row,) = rows(conv, "performance_results")
    assert row.created_at is None and row.precision is None and row.test_case is None
    assert row.metrics == {"timestamp": "last tuesday", "precision": 16, "test_case": {"variant": "a"},
                           "device_name": ["GPU 0"]}


def test_impossible_counts_are_null_and_kept_as_written():
    """batch 0, a negative sequence length, a fractional or zero iteration count: NULL, never 0 or a
    negative number, and the written value stays in metrics. A warmup of 0 is a real value."""
    conv = convert({"model_name": "bert-base-uncased", "hardware_type": "cpu", "throughput": 100,
                    "batch_size": 0, "sequence_length": -5, "iterations": 10.5, "warmup_iterations": 0})
    (row,) = rows(conv, "performance_results")
    assert (row.batch_size, row.sequence_length, row.iterations, row.warmup_iterations) == (None, None, None, 0)
    assert row.metrics == {"batch_size": 0, "sequence_length": -5, "iterations": 10.5}
    conv = convert({"model_name": "bert-base-uncased", "hardware_type": "cpu", "throughput": 100,
                    "sequence_length": 0, "iterations": 0})
    (row,) = rows(conv, "performance_results")
    assert row.sequence_length is None and row.iterations is None


# ---------------------------------------------------------------------------------------------- compatibility
# critical_model_results/critical_model_tests_20250301_151022.json, one model of three
_CRITICAL = {
    "test_timestamp": "2025-03-01T15:10:03.726229",
    "summary": {"total": 1, "tested": 1, "passed": 1, "failed": 0},
    "model_results": {
        "canine": {"status": "passed", "return_code": 0, "elapsed_time": 6.393615,
                   "platform_status": {"cpu": "REAL", "cuda": "REAL", "openvino": "REAL"},
                   "structured_data": {"status": {"cpu": "REAL", "cuda": "REAL", "openvino": "REAL"},
                                       "model_name": "canine", "examples": []}}},
}


def test_model_results_key_names_the_model_of_its_platform_status():
    """{'model_results': {'canine': {'platform_status': {'cpu': 'REAL'}}}}: the compatibility rows belong to
    canine (they were stored with no model: 'canine' is not a family name the key reader knows)."""
    conv = convert(_CRITICAL, "critical_model_results/critical_model_tests_20250301_151022.json")
    compat = rows(conv, "hardware_compatibility")
    assert compat and all(r.model_id is not None for r in compat)
    assert {model_names(conv)[r.model_id] for r in compat} == {"canine"}


@needs_corpus
@pytest.mark.parametrize("name", ["critical_model_tests_20250301_151022.json",
                                  "critical_model_tests_20250301_151515.json"])
def test_corpus_critical_model_tests_have_no_compatibility_row_without_its_model(name):
    conv = convert_file(CORPUS / "critical_model_results" / name)
    compat = rows(conv, "hardware_compatibility")
    assert compat and all(r.model_id is not None for r in compat)


# hardware_test_results/run_20250305_194630/clip_cpu_test.json
_CLIP_CPU = {
    "results": {"cpu": {"init": "Success", "handler_created": "Success", "execution_time": 0.1441788673400879,
                        "output_type": "<class 'dict'>", "implementation_type": "REAL_CPU",
                        "logits_shape": "(1, 2)", "top_label": "a photo of a dog", "success": True}},
    "metadata": {"model_id": "openai/clip-vit-base-patch32", "timestamp": "2025-03-05T19:46:40.097811"},
}


def test_a_platform_entry_keeps_its_other_fields_with_its_compatibility_row():
    """The per-platform result's implementation type, execution time and output stay in the row's metadata
    (only the status fields were kept)."""
    conv = convert(_CLIP_CPU, "hardware_test_results/run_20250305_194630/clip_cpu_test.json")
    (row,) = rows(conv, "hardware_compatibility")
    assert row.is_compatible is True
    assert row.metadata["statuses"] == {"init": "Success", "handler_created": "Success", "success": True}
    for key in ("execution_time", "output_type", "implementation_type", "logits_shape", "top_label"):
        assert row.metadata[key] == _CLIP_CPU["results"]["cpu"][key]


def test_a_platform_entry_does_not_repeat_the_model_and_hardware_its_row_carries():
    entry = {"status": "completed", "model_name": "roberta-base", "hardware": "openvino",
             "model_class": "RobertaModel", "model_load_time": 0.45, "timestamp": "2025-07-27T03:41:12"}
    conv = convert({"model_results": {"roberta-base": {"openvino": entry}}})
    (row,) = rows(conv, "hardware_compatibility")
    assert model_names(conv)[row.model_id] == "roberta-base"
    assert "model_name" not in row.metadata and "hardware" not in row.metadata
    assert row.metadata["model_class"] == "RobertaModel" and row.metadata["model_load_time"] == 0.45
    assert row.metadata["timestamp"] == "2025-07-27T03:41:12"


@needs_corpus
def test_corpus_clip_cpu_test_compatibility_row_keeps_the_implementation_type():
    conv = convert_file(CORPUS / "hardware_test_results" / "run_20250305_194630" / "clip_cpu_test.json")
    (row,) = rows(conv, "hardware_compatibility")
    assert row.metadata["implementation_type"] == "REAL_CPU"


# ---------------------------------------------------------------------------------------------- --parquet-dir
def _one_json(tmp_path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    (src / "bert_cpu_test.json").write_text(json.dumps(
        [{"model_name": "bert-base-uncased", "hardware_type": "cpu", "batch_size": 8,
          "average_latency_ms": 19.1, "throughput_items_per_second": 52.4}]))
    return src


def _one_error_line(capsys, code: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"error {code}: "), err
    assert "Traceback" not in err and "unexpected" not in err
    return err


def test_parquet_dir_that_is_a_file_is_refused_before_the_ingest(tmp_path, capsys):
    src = _one_json(tmp_path)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    db = tmp_path / "c.duckdb"
    code = benchmark_db_converter.main(["--input-dir", str(src), "--output-db", str(db),
                                        "--parquet-dir", str(a_file), "--quiet"])
    assert code == 2
    assert "is a file, not a folder" in _one_error_line(capsys, "DB000")
    assert not db.exists()  # refused up front: nothing half done


def test_parquet_dir_that_cannot_be_created_is_one_clear_line(tmp_path, capsys):
    src = _one_json(tmp_path)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    code = benchmark_db_converter.main(["--input-dir", str(src), "--output-db", str(tmp_path / "c.duckdb"),
                                        "--parquet-dir", str(a_file / "pq"), "--quiet"])
    assert code == 2
    assert "cannot create --parquet-dir" in _one_error_line(capsys, "DB000")


def test_a_failed_parquet_export_says_the_rows_are_stored(tmp_path, capsys):
    """The export itself fails (a folder where a table's file goes): one DB005 line that says the rows
    are in the database, not an 'unexpected IsADirectoryError'."""
    src = _one_json(tmp_path)
    parquet = tmp_path / "pq"
    (parquet / "models.parquet").mkdir(parents=True)
    db = tmp_path / "c.duckdb"
    code = benchmark_db_converter.main(["--input-dir", str(src), "--output-db", str(db),
                                        "--parquet-dir", str(parquet), "--quiet"])
    assert code == 1
    assert "the rows are stored" in _one_error_line(capsys, "DB005")
    assert sorted(p.name for p in parquet.iterdir()) == ["models.parquet"]  # no half-written file left
    with duckdb.connect(str(db), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 1


def test_dry_run_with_a_bad_parquet_dir_writes_nothing_and_does_not_fail(tmp_path, capsys):
    """--dry-run never writes, so it neither creates nor checks the Parquet folder."""
    src = _one_json(tmp_path)
    parquet = tmp_path / "pq"
    code = benchmark_db_converter.main(["--input-dir", str(src), "--output-db", str(tmp_path / "c.duckdb"),
                                        "--parquet-dir", str(parquet), "--dry-run", "--quiet"])
    assert code == 0 and not parquet.exists()


# benchmark_results/20250303_050233/20250303_050235/benchmark_results.json (hardware_details, cut down)
_HARDWARE_DETAILS = {
    "timestamp": "20250303_050235",
    "hardware_info": {"cpu": True, "cuda": True, "mps": False, "rocm": False, "openvino": True},
    "hardware_details": {
        "cpu": True, "cuda": True, "cuda_devices": [{"name": "Quadro P4000", "total_memory": 7.92}],
        "mps": False, "mps_is_built": False, "mps_error": "MPS not available in current PyTorch installation",
        "rocm": False, "rocm_error": "CUDA available, but no ROCm/AMD GPU detected",
        "openvino": True, "openvino_gpu_plugin": False, "webnn": False,
        "webnn_error": "Exception detecting WebNN: cannot access local variable 'os'",
        "webgpu": False, "qualcomm_ai": False},
    "benchmarks": {"embedding": {"bert-base-uncased": {"cpu": {"status": "completed", "benchmark_results": {
        "batch_1_seq_32": {"status": "completed", "avg_latency": 0.05, "throughput": 20.0, "iterations": 5}}}}}},
}


def test_hardware_details_is_detection_not_compatibility():
    """'openvino_gpu_plugin': false in a hardware detection table said 'openvino is not compatible' (a
    model-less compatibility row with is_compatible false) although openvino was detected; webnn, webgpu,
    qualcomm and mps rows came from detection errors the same way."""
    conv = convert(_HARDWARE_DETAILS, "benchmark_results/20250303_050233/20250303_050235/benchmark_results.json")
    compat = rows(conv, "hardware_compatibility")
    assert all(r.model_id is not None for r in compat)
    assert not [r for r in compat if r.is_compatible is False]
    kinds = {r.hardware_type for r in rows(conv, "hardware_platforms")}
    assert {"cpu", "cuda", "openvino"} <= kinds and not kinds & {"mps", "webnn", "webgpu", "qualcomm", "rocm"}
    (run,) = rows(conv, "test_runs")
    assert run.metadata["hardware_detected"]["openvino"] is True


@needs_corpus
@pytest.mark.parametrize("rel", [
    "benchmark_results/20250303_050233/20250303_050235/benchmark_results.json",
    "benchmark_results/20250302_202226/benchmark_results.json",
    "benchmark_results/benchmarks_20250305_195033/20250305_195037/performance/embedding/20250305_195052/"
    "20250305_195054/benchmark_results.json"])
def test_corpus_hardware_details_make_no_model_less_compatibility_rows(rel):
    conv = convert_file(CORPUS / rel)
    assert conv.status == "ingested"
    assert all(r.model_id is not None for r in rows(conv, "hardware_compatibility"))


# ------------------------------------------------------------------------- a Parquet export merged as artifact

@pytest.mark.slow  # over 0.8 s
def test_a_parquet_export_merged_elsewhere_keeps_every_original(tmp_path):
    """The --parquet-dir export is a CI artifact: merged into another database it brings the original
    documents along, so the merged database passes --validate and --check-integrity as the source does,
    and each original reads back byte for byte."""
    import benchmark_db_migration
    from benchmark_db.maintenance.integrity import check_integrity
    from benchmark_db.source_store import original_text
    from benchmark_db.validation import find_problems

    src = tmp_path / "in"
    src.mkdir()
    docs = {f"r{i}.json": json.dumps({"model": f"bert-{i}", "hardware": "cpu", "batch_size": 1,
                                       "throughput": 10.0 + i, "latency_ms": 100.0}).encode() for i in range(3)}
    for name, data in docs.items():
        (src / name).write_bytes(data)
    artifacts = tmp_path / "artifacts"
    assert benchmark_db_converter.main(["--input-dir", str(src), "--output-db", str(tmp_path / "job.duckdb"),
                                        "--parquet-dir", str(artifacts / "pq"), "--quiet"]) == 0
    target = tmp_path / "merged.duckdb"
    assert benchmark_db_migration.main(["--migrate-ci", "--artifacts-dir", str(artifacts), "--db", str(target),
                                        "--quiet"]) == 0
    with duckdb.connect(str(target)) as conn:
        assert conn.execute("SELECT count(*) FROM performance_results").fetchone()[0] == 3
        assert find_problems(conn) == []
        assert check_integrity(conn) == []
        for data in docs.values():
            assert original_text(conn, hashlib.sha256(data).hexdigest()) == data
