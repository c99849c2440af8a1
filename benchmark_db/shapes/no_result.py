"""Documents that hold no benchmark result: run configurations, model catalogues, progress logs, API
back-off and queue tests, API implementation reports, code-fix reports, test-generation summaries, error
reports. Each is recognised by what it contains and skipped with a reason that names what it is.

`no_result_reason(doc)` returns that reason, or None when the document may hold results. It is asked
only after the result shapes that could look alike (e.g. a config inside an optimum-benchmark file).
"""
from __future__ import annotations

from benchmark_db.shapes.base import deep_has_measurement as _deep_has_measurement

# keys of run configurations (what to run, not what was measured)
_CONFIG_KEYS = {
    "batch_sizes", "benchmark_iterations", "generate_plots", "hardware_types", "model_families", "parallel",
    "timeout", "use_resource_pool", "warmup_iterations", "include_web_platforms", "schedule",
    "sequence_lengths", "update_compatibility_matrix", "available_hardware", "measure_performance", "models",
    "models_set", "timestamp", "verify_functionality", "iterations", "output_dir", "precision", "precisions",
    "hardware", "model", "seed", "num_workers", "max_workers", "retries", "config", "debug", "verbose",
    "skip_hardware", "db_path", "results_dir", "warmup", "runs", "model_set", "platforms", "browsers",
}
_PROGRESS_KEYS = {"completed_benchmarks", "failed_benchmarks", "skipped_benchmarks", "pending_benchmarks",
                  "in_progress", "remaining_benchmarks"}
_API_TEST_KEYS = {"backoff_test", "queue_test", "successful_requests", "total_requests", "available_apis",
                  "keys_added", "api_backoff", "queue_backoff", "backoff", "rate_limit_test"}
# names of remote API backends and of their back-off/queue tests in the legacy system
_API_WORDS = ("api", "backoff", "queue", "multiplex", "ollama", "claude", "openai", "groq", "gemini", "hf_tgi",
              "hf_tei", "opea", "ovms", "llvm", "s3_kit")
_FIX_KEYS = {"files_fixed", "total_issues_fixed", "files_details", "files_analyzed", "files_with_issues",
             "issue_types", "total_issues"}
_GENERATION_KEYS = {"generation_results", "generation_stats", "total_skillset_modules", "missing_from_official_list",
                    "execution_results", "execution_stats"}


def _is_model_catalogue(doc: dict) -> bool:
    """{'bert': {'name': 'bert-base-uncased', 'family': ..., 'modality': ...}, ...}: the models a run uses."""
    if len(doc) < 2:
        return False
    for value in doc.values():
        if not isinstance(value, dict) or "name" not in value:
            return False
        if not set(value) <= {"name", "family", "size", "modality", "model_class", "task", "description",
                              "parameters", "params", "type", "path", "revision"}:
            return False
    return True


def _is_api_test(doc: dict) -> bool:
    keys = set(doc)
    if keys & _API_TEST_KEYS:
        return True
    tests = doc.get("tests")
    if isinstance(tests, dict) and tests and any(
            any(word in str(k).lower() for word in _API_WORDS) for k in tests):
        return not _deep_has_measurement(tests)
    return False


def _is_api_status_report(doc: dict) -> bool:
    apis = doc.get("apis")
    return (isinstance(apis, dict) and bool(apis) and set(doc) <= {"apis", "timestamp", "summary"}
            and all(isinstance(v, dict) and bool(set(v) & {"status", "implementation_type", "error"})
                    for v in apis.values()))


def _is_remote_api_performance(doc: dict) -> bool:
    models = doc.get("models")
    return (isinstance(models, list) and bool(models) and all(isinstance(m, dict) for m in models)
            and any("response_time" in m or "queue_time" in m for m in models))


def _is_error_report(doc: dict) -> bool:
    keys = set(doc)
    return bool(keys & {"error", "test_error"}) and keys <= {"error", "status", "timestamp", "traceback",
                                                              "test_error", "message"}


def _is_model_access_check(doc) -> bool:
    return (isinstance(doc, list) and bool(doc) and all(isinstance(x, dict) for x in doc)
            and all("exists" in x and "name" in x for x in doc))


def no_result_reason(doc) -> str | None:
    """The named reason a document holds no benchmark result, or None."""
    if isinstance(doc, list):
        if not doc:
            return "empty list, no results"
        if _is_model_access_check(doc):
            return "model access check (hub lookups), no results"
        return None
    if not isinstance(doc, dict):
        return None
    if not doc:
        return "empty document, no results"
    keys = set(doc)
    if keys & _PROGRESS_KEYS and not _deep_has_measurement(doc):
        return "benchmark progress log, no results"
    if _is_api_status_report(doc):
        return "API implementation status report, no results"
    if _is_api_test(doc):
        return "API back-off/queue test, no benchmark results"
    if _is_remote_api_performance(doc):
        return "remote API response-time check (no local hardware), no benchmark results"
    if keys & _FIX_KEYS and len(keys & _FIX_KEYS) >= 2:
        return "code fix report, no results"
    if len(keys & _GENERATION_KEYS) >= 2:
        return "test generation summary, no results"
    if _is_error_report(doc):
        return "error report, no results"
    filled = [k for k, v in doc.items() if v not in ({}, [], None, "") and k not in ("timestamp", "test_timestamp")]
    if not filled:
        empty = ", ".join(sorted(k for k in keys if k not in ("timestamp", "test_timestamp")))
        return f"empty results ({empty or 'no fields'}), no results"
    if _is_model_catalogue(doc):
        return "model catalogue (run configuration), no results"
    if (len(keys & _CONFIG_KEYS) >= 2 and len(keys & _CONFIG_KEYS) >= 0.6 * len(keys)
            and not _deep_has_measurement(doc) and not _has_outcomes(doc)):
        return "run configuration, no results"
    return None


def _has_outcomes(doc: dict) -> bool:
    """A config-looking document that also records outcomes (compatibility, statuses) is not a config."""
    return any(k in doc for k in ("results", "compatible", "model_results", "benchmark_results", "status",
                                  "success", "tests", "hardware_compatibility", "system_info",
                                  "performance_comparison")) or _has_compatibility(doc)


def _has_compatibility(node, depth: int = 0) -> bool:
    if depth > 6:
        return False
    if isinstance(node, dict):
        if "hardware_compatibility" in node or "compatible" in node:
            return True
        return any(_has_compatibility(v, depth + 1) for v in node.values() if isinstance(v, dict))
    return False
