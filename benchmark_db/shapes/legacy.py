"""The legacy system's result files (ipfs_accelerate_py `test/`): performance trees and flat records,
skill tests with per-platform statuses, functionality runs, compatibility matrices, hardware detection.

The legacy scripts wrote many shapes for the same facts, so this reader does not pick one shape by its
keys: it runs every extractor over the document (measurements anywhere, per-platform statuses, test
executions, detected hardware) and the document's kind follows from what was found. A document where none
of them finds anything is skipped with a reason naming what it holds.
"""
from __future__ import annotations

import functools
import os
import re

from benchmark_db.names import _HARDWARE_ALIASES as _ALIASES
from benchmark_db.names import HARDWARE_TYPES
from benchmark_db.normalize import (
    clean_model_name,
    known_hardware,
    names_simulation,
    positive,
    text_or_none,
    to_bool,
    to_float,
    to_int,
)
from benchmark_db.shapes.base import (
    _BLOCK_KEYSET,
    _CTX_KEYS,
    _HARDWARE_KEYSET,
    _MEASURE_KEYS,
    _MODEL_KEYSET,
    _SAMPLE_KEYSET,
    SKIP_SUBTREES,
    Builder,
    ShapeSkip,
    context_from_key,
    context_from_record,
    example_timing,
    has_measurement,
    measurement_view,
    pointer_join,
    read_measurement,
    record_failed,
    record_is_simulated,
    skill_of_test_file,
)

# hardware detection tables: what the machine has, not how a model fared on it (their prefixed keys such as
# 'openvino_gpu_plugin': false or 'qualcomm_ai': false are detection details, never compatibility verdicts)
_HARDWARE_DETECTION_KEYS = ("hardware_detected", "hardware_info", "available_hardware", "hardware_available",
                            "detected_hardware", "hardware_detection", "tested_on", "hardware",
                            "hardware_details")
_NOT_COMPAT_SUBTREES = {"stdout", "stderr", "traceback", "system_info", "environment", "config", "args",
                        "generation_config", "output", "input", "examples", "metadata", "cuda_devices",
                        "platform_support"} | set(_HARDWARE_DETECTION_KEYS)
# every spelling of a hardware type a key may use (case variants included): a cheap first filter
_HW_WORDS = frozenset(w for name in (*HARDWARE_TYPES, *_ALIASES, "apple", "mps", "web_gpu", "web_nn")
                      for w in (name, name.upper(), name.capitalize(), name.title()))
_SUCCESS_WORDS = ("success", "real", "mock", "simulated", "passed", "pass", "ok", "completed", "available",
                  "working", "true")
_FAIL_WORDS = ("error", "failed", "fail", "exception", "incomplete", "not implemented", "false", "crash",
               "timeout")
_SKILL_FILE_RE = re.compile(r"^(hf_[a-z0-9_]+?)_(?:test_results|performance|test)")


def status_of(text) -> str | None:
    """'passed' / 'failed' / 'unavailable' for a legacy status value ('Success (REAL)', 'Error: ...',
    'CUDA not available', True/False), or None when it is not a status at all."""
    if isinstance(text, bool):
        return "passed" if text else "failed"
    if not isinstance(text, str):
        return None
    return _status_of_text(text) if len(text) <= 300 else _status_of_text.__wrapped__(text)


@functools.lru_cache(maxsize=8192)
def _status_of_text(text: str) -> str | None:
    low = text.strip().lower()
    if not low or len(low) > 5000:
        return None
    if "not available" in low or "unavailable" in low or "not detected" in low or "not found" in low:
        return "unavailable"
    if low.startswith(_FAIL_WORDS):
        return "failed"
    if low.startswith(_SUCCESS_WORDS) or low in ("real", "mock"):
        return "passed"
    return None


def _file_skill_name(path: str, doc=None) -> str | None:
    """The legacy skill a file tests ('hf_bert'), from its test_file ('test_hf_bert.py') or its name."""
    skill = skill_of_test_file(doc.get("test_file")) if isinstance(doc, dict) else None
    if skill:
        return skill
    match = _SKILL_FILE_RE.match(os.path.basename(path).lower())
    return match.group(1) if match else None


# ------------------------------------------------------------------------------------------ compatibility
@functools.lru_cache(maxsize=4096)
def _prefixed_keys(keys: tuple) -> tuple:
    """The keys of a dict with this key set that start with a hardware name: (('cpu_init', 'cpu'), ...)."""
    out = []
    for key in keys:
        if isinstance(key, str):
            cut = key.find("_")
            if cut > 0 and key[:cut] in _HW_WORDS and known_hardware(key[:cut]):
                out.append((key, known_hardware(key[:cut])))
    return tuple(out)


def _platform_groups(node: dict, prefixed: tuple | None = None) -> dict[str, dict]:
    """{'cpu': {'cpu_init': 'Success', 'cpu_handler': ...}, 'cuda': {...}} from prefixed status keys."""
    groups: dict[str, dict] = {}
    for key, kind in _prefixed_keys(tuple(node)) if prefixed is None else prefixed:
        value = node[key]
        if isinstance(value, (str, bool)) and status_of(value) is not None:
            groups.setdefault(kind, {})[key] = value
    return groups


def _platform_details(node: dict, prefixed: tuple, groups: dict[str, dict]) -> dict[str, dict]:
    """{'cuda': {'cuda_metrics': {...}, 'cuda_output': '...'}}: a platform's prefixed fields that are not its
    statuses (figures, timings, outputs, examples). They stay with the platform's compatibility row: skill
    tests wrote their throughputs and timings there, often made up (a 'REAL' CUDA run whose model never
    loaded), so they are kept as written rather than stored as measured performance."""
    details: dict[str, dict] = {}
    for key, kind in prefixed:
        if kind in groups and key not in groups[kind]:
            details.setdefault(kind, {})[key] = node[key]
    return details


def _says_simulated(details: dict) -> bool:
    """Whether a platform's outputs or its example's implementation say the result was simulated or mocked
    ('... This is a simulation of a real CUDA implementation', '(MOCK) Qualcomm response')."""
    for value in details.values():
        if isinstance(value, str) and names_simulation(value):
            return True
        if isinstance(value, dict):
            for key in ("output", "implementation", "implementation_type"):
                if isinstance(value.get(key), str) and names_simulation(value[key]):
                    return True
    return False


def _compat_row(b: Builder, pointer: str, hardware: str, model, statuses: dict, extra: dict | None = None,
                created_at=None, simulated: bool = False) -> int:
    verdicts = {k: status_of(v) for k, v in statuses.items()}
    texts = [v for v in statuses.values() if isinstance(v, str)]
    failed = [statuses[k] for k, v in verdicts.items() if v == "failed"]
    unavailable = [k for k, v in verdicts.items() if v == "unavailable"]
    passed = [k for k, v in verdicts.items() if v == "passed"]
    if unavailable and not passed:
        is_compatible, detection = None, False
    elif failed:
        is_compatible, detection = False, True
    elif passed:
        is_compatible, detection = True, True
    else:
        return 0
    init_keys = [k for k in statuses if k.endswith("_init") or k == "init"]
    init = None
    if init_keys:
        init_verdicts = {verdicts[k] for k in init_keys}
        init = False if "failed" in init_verdicts else (True if "passed" in init_verdicts else None)
    simulated = simulated or any(names_simulation(t) for t in texts if status_of(t) == "passed")
    error = next((t for t in failed if isinstance(t, str)), None)
    ok = b.add_compatibility(pointer, hardware=hardware, model=model, is_compatible=is_compatible,
                             detection_success=detection, initialization_success=init,
                             error_message=error[:2000] if error else None, is_simulated=simulated,
                             metadata={"statuses": statuses, **(extra or {})}, created_at=created_at)
    return 1 if ok else 0


_COMPAT_FLAG_ORDER = ("compatible", "is_compatible", "supported", "is_supported")
_COMPAT_FLAGS = frozenset(_COMPAT_FLAG_ORDER)


@functools.lru_cache(maxsize=4096)
def _compat_shape(keys: tuple) -> tuple[bool, tuple, tuple]:
    """What _compat_at looks for in a dict with these keys, in key order: (a compatibility flag is present,
    the keys that name a hardware type, the keys prefixed by one (see _prefixed_keys))."""
    hw_keys = tuple(k for k in keys if known_hardware(k)) if not _HW_WORDS.isdisjoint(keys) else ()
    return not _COMPAT_FLAGS.isdisjoint(keys), hw_keys, _prefixed_keys(keys)


def _compat_at(b: Builder, node: dict, pointer: str, ctx: dict) -> int:
    """Per-platform outcomes a dict states itself -> hardware_compatibility rows."""
    has_flag, hw_keys, prefixed = _compat_shape(tuple(node))
    if not (has_flag or hw_keys or prefixed):
        return 0  # most dicts: nothing here says anything about a platform
    added = 0
    model = ctx.get("model")
    family = {"model_family": ctx["family"]} if ctx.get("family") else {}
    # a record that says whether it is compatible (matrix entries, per-model benchmark files)
    if has_flag and ctx.get("hardware"):
        for flag in _COMPAT_FLAG_ORDER:
            if isinstance(node.get(flag), bool):
                if ctx.get("hardware_source"):
                    b.note(f"hardware {ctx['hardware']} from {ctx['hardware_source']} ({pointer or '/'})")
                extra = {**family, **{k: v for k, v in node.items()
                                      if k != flag and not isinstance(v, (dict, list))}}
                for key in ("performance_rating", "benchmark_results"):
                    if key in node:
                        extra[key] = node[key]
                if b.add_compatibility(pointer, hardware=ctx["hardware"], model=model, is_compatible=node[flag],
                                       detection_success=True, is_simulated=record_is_simulated(node) or
                                       bool(ctx.get("is_simulated")), metadata=extra or None,
                                       created_at=ctx.get("created_at")):
                    added += 1
                break
    # {'cpu': 'REAL', 'cuda': 'MOCK'} or {'cuda': False}: outcome per platform
    if hw_keys and len(hw_keys) * 2 >= len(node):
        for key in hw_keys:
            value = node[key]
            if isinstance(value, (str, bool)) and status_of(value) is not None:
                added += _compat_row(b, pointer_join(pointer, key), known_hardware(key), model, {key: value}, family,
                                     ctx.get("created_at"))
            elif isinstance(value, dict) and (isinstance(value.get("status"), str) and status_of(value["status"])
                                              or isinstance(value.get("success"), bool)):
                statuses = {k: v for k, v in value.items() if k in ("status", "success", "init", "handler_created",
                                                                     "error") and status_of(v)}
                # the entry's other plain fields (implementation type, execution time, output) stay with it,
                # except a model or hardware name the row itself carries
                entry_ctx = context_from_record(b, value, ctx)  # the entry's own model and time
                entry_model = entry_ctx.get("model")
                said = {entry_model, key}
                details = {k: v for k, v in value.items() if k not in statuses and type(v) in _SCALAR_TYPES
                           and not ((k in _MODEL_KEYSET or k in _HARDWARE_KEYSET) and v in said)}
                added += _compat_row(b, pointer_join(pointer, key), known_hardware(key), entry_model, statuses,
                                     {**family, **details}, entry_ctx.get("created_at"))
    # {'cpu_init': 'Success (REAL)', 'cuda_tests': 'CUDA not available', ...}
    groups = _platform_groups(node, prefixed) if prefixed else None
    if groups and sum(len(g) for g in groups.values()) >= 2:
        details = _platform_details(node, prefixed, groups)
        for kind, statuses in groups.items():
            own = details.get(kind, {})
            added += _compat_row(b, pointer_join(pointer, min(statuses)), kind, model, statuses, {**family, **own},
                                 ctx.get("created_at"), simulated=_says_simulated(own))
    return added


# ------------------------------------------------------------------------------------------ integration
def _status_word(value) -> str | None:
    verdict = status_of(value)
    if verdict == "unavailable":
        return "skipped"
    if isinstance(value, str) and value.strip().lower().startswith("not implemented"):
        return "not_implemented"
    return verdict


def _execution_with_code(b: Builder, node: dict, pointer: str, ctx: dict) -> int:
    """A test execution (a return code plus a model or test file) -> an integration_test_results row."""
    if "return_code" not in node and "exit_code" not in node:
        return 0
    code = node.get("return_code", node.get("exit_code"))
    if to_int(code) is None or not ("test_file" in node or ctx.get("model") or "model" in node):
        return 0
    success = to_bool(node.get("success"))
    status = node.get("status") if isinstance(node.get("status"), str) else None
    if success is None and status is None:
        success = to_int(code) == 0
    word = (_status_word(status) if status else None) or ("passed" if success else "failed")
    hardware = ctx.get("hardware")
    name = text_or_none(node.get("test_file")) or " on ".join(
        x for x in (str(ctx.get("model") or node.get("model") or ""), hardware or "") if x) or "test"
    stderr = node.get("stderr") if isinstance(node.get("stderr"), str) else None
    error = text_or_none(node.get("error"), 4000) or (stderr[-2000:] if word == "failed" and stderr else None)
    elapsed = to_float(node.get("elapsed_time", node.get("execution_time")))
    return int(b.add_integration(
        pointer, test_name=name, status=word, model=ctx.get("model"), hardware=hardware,
        test_module=text_or_none(node.get("test_file")),
        execution_time_seconds=elapsed if elapsed and elapsed > 0 else None, error_message=error,
        metadata={"return_code": to_int(code), **{k: v for k, v in node.items() if k in (
            "status_extracted_from_text", "json_parse_error", "structured_results_found")}},
        created_at=ctx.get("created_at")))


def _execution_by_success(b: Builder, node: dict, pointer: str, ctx: dict) -> int:
    """A check with a success flag for a model and no measurement -> an integration_test_results row."""
    if not isinstance(node.get("success"), bool) or not (ctx.get("model") or "test_file" in node):
        return 0
    hardware = ctx.get("hardware")
    model = str(ctx.get("model") or "")
    label = pointer.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~") if pointer else ""
    if label.isdigit() and ctx.get("batch_size") == int(label):
        label = f"batch {label}"
    elif label == "benchmark_data":  # the benchmark's own verdict, apart from that of the command that ran it
        label = "benchmark"
    elif label in (model, hardware, "results", "result") or known_hardware(label):
        label = ""
    name = " ".join(x for x in (model, f"on {hardware}" if hardware else "", f"({label})" if label else "") if x)
    elapsed = positive(node.get("execution_time", node.get("elapsed_time", node.get("total_execution_time"))))
    return int(b.add_integration(pointer, test_name=name or "test", status="passed" if node["success"] else "failed",
                                 model=ctx.get("model"), hardware=hardware, execution_time_seconds=elapsed,
                                 error_message=text_or_none(node.get("error"), 4000),
                                 error_traceback=text_or_none(node.get("traceback"), 20000),
                                 created_at=ctx.get("created_at")))


# ------------------------------------------------------------------------------------------ one walk
_MEASURE_OR_SAMPLE_KEYS = _MEASURE_KEYS | _SAMPLE_KEYSET  # has_measurement looks at these keys only
_SCALAR_TYPES = frozenset((str, float, int, bool, type(None)))
_PERF, _COMPAT, _EXEC = 1, 2, 4
_ALL = _PERF | _COMPAT | _EXEC
# per subtree key, the extractors that do not look inside it
_SKIP: dict[str, int] = {}
for _key in SKIP_SUBTREES:
    _SKIP[_key] = _SKIP.get(_key, 0) | _PERF
for _key in _NOT_COMPAT_SUBTREES:
    _SKIP[_key] = _SKIP.get(_key, 0) | _COMPAT
for _key in ("stdout", "stderr", "output", "input"):
    _SKIP[_key] = _SKIP.get(_key, 0) | _EXEC


class _Counts:
    __slots__ = ("perf", "compat", "integration")

    def __init__(self):
        self.perf = self.compat = self.integration = 0


# an entry's verdict fields describe the entry (its compatibility row keeps them), not each measurement below;
# its logs (stdout, stderr, traceback) stay in the stored original rather than in every row's metrics
_VERDICT_KEYS = frozenset(("status", "success", "error", "error_message")) | SKIP_SUBTREES


def _with_entry_details(node: dict, ctx: dict) -> dict:
    """ctx for the measurements below a model/hardware entry ({'model_name': .., 'hardware': 'cpu',
    'model_class': 'BertModel', 'model_load_time': 2.8, 'benchmark_results': {...}}): the entry's own plain
    fields that no column takes (model_class, family, model_load_time) go to each row's metrics."""
    kept = {k: v for k, v in node.items() if type(v) in _SCALAR_TYPES and v is not None and k not in _CTX_KEYS
            and k not in _VERDICT_KEYS}
    if not kept:
        return ctx
    inherited = ctx.get("extra_metrics")
    return {**ctx, "extra_metrics": {**inherited, **kept} if inherited else kept}


def _walk(b: Builder, node, pointer: str, ctx: dict, node_key: str | None, depth: int, mask: int,
          counts: _Counts) -> bool:
    """Visit every dict once, running the extractors `mask` enables; True if a measurement lies below."""
    if depth > 40:
        return False
    if isinstance(node, list):
        if not node or not isinstance(node[0], (dict, list)):
            return False
        found = False
        for index, value in enumerate(node):
            if isinstance(value, (dict, list)):
                found |= _walk(b, value, pointer_join(pointer, index), ctx, node_key, depth + 1, mask, counts)
        return found
    if not isinstance(node, dict):
        return False
    # the cheap key tests inline decide which helpers have anything to look at in this dict
    if depth:  # a nested result's own `metadata` names its model (the top level's is read up front)
        meta = node.get("metadata")
        if type(meta) is dict and not _CTX_KEYS.isdisjoint(meta):
            ctx = context_from_record(b, meta, ctx)
    if not _CTX_KEYS.isdisjoint(node):
        ctx = context_from_record(b, node, ctx)
    child_mask = mask
    view = node if _BLOCK_KEYSET.isdisjoint(node) else measurement_view(b, node)
    measured = not _MEASURE_OR_SAMPLE_KEYS.isdisjoint(view) and has_measurement(view)
    if mask & _PERF:
        if node_key == "examples" and not measured and ("elapsed_time" in node or "execution_time" in node):
            measured = True
            counts.perf += example_timing(b, node, pointer, ctx)
            child_mask &= ~_PERF  # the example's own performance_metrics are in its row, not a second one
        elif measured:
            error = record_failed(view)
            if error:
                b.drop(pointer, f"failed: {error}")
            else:
                counts.perf += b.add_performance(pointer, **read_measurement(b, view, pointer, ctx))
            child_mask &= ~_PERF
        elif depth > 0 and ("success" in node or "status" in node):
            error = record_failed(node)
            if error:
                b.drop(pointer, f"failed: {error}")
    if mask & _COMPAT:
        counts.compat += _compat_at(b, node, pointer, ctx)
    executed = 0
    if mask & _EXEC and ("return_code" in node or "exit_code" in node):
        executed = _execution_with_code(b, node, pointer, ctx)
        counts.integration += executed
    below = False
    outer = ctx  # what the children inherit: ctx, plus this entry's own details once a child is walked
    described = depth and not measured and child_mask & _PERF  # an entry naming its model or hardware?
    for key, value in node.items():
        kind = type(value)
        if kind in _SCALAR_TYPES:
            continue
        if kind is list:
            if not value or not isinstance(value[0], (dict, list)):
                continue  # a list of numbers or text: nothing below it for any extractor
        elif kind is not dict and not isinstance(value, (dict, list)):
            continue
        sub_mask = child_mask & ~_SKIP.get(key.lower() if isinstance(key, str) else key, 0)
        if not sub_mask:
            continue
        if described:  # decided at the first child walked (most dicts have none)
            if not (_MODEL_KEYSET.isdisjoint(node) and _HARDWARE_KEYSET.isdisjoint(node)):
                outer = _with_entry_details(node, ctx)
            described = False
        child_ctx = context_from_key(key, node_key, outer)
        if node_key == "model_families":
            child_ctx = {**child_ctx, "family": key}
        elif node_key == "model_results" and child_ctx.get("model") is outer.get("model") \
                and isinstance(key, str) and not known_hardware(key) and clean_model_name(key):
            # {'model_results': {'canine': {...}}}: the key names the model of everything below it, as
            # _named_tests reads it (unless context_from_key already took a model from the key)
            child_ctx = {**child_ctx, "model": key}
        below |= _walk(b, value, pointer_join(pointer, key), child_ctx, key, depth + 1, sub_mask, counts)
    if mask & _EXEC and not executed and not measured and not below and "success" in node:
        counts.integration += _execution_by_success(b, node, pointer, ctx)
    return measured or below


def _api_tests(b: Builder, doc: dict, module: str) -> int:
    """A flat {test_name: 'Success' | 'Error: ...' | 'Not implemented'} report -> one row per test."""
    added = 0
    for key, value in doc.items():
        word = _status_word(value)
        if word is None:
            continue
        added += b.add_integration(pointer_join("", key), test_name=key, status=word, test_module=module,
                                   error_message=str(value)[:2000] if word != "passed" else None,
                                   metadata={"status_text": value})
    return added


def _is_flat_status_report(doc: dict) -> bool:
    values = list(doc.values())
    statuses = [v for v in values if isinstance(v, str) and _status_word(v)]
    return (len(values) >= 3 and len(statuses) * 2 >= len(values)
            and all(not isinstance(v, (dict, list)) for v in values) and not _platform_groups(doc))


def _named_tests(b: Builder, doc: dict) -> int:
    """{'model_results': {'canine': {'status': 'passed', 'elapsed_time': ...}}} or {'tests': {...}}."""
    added = 0
    for holder in ("model_results", "tests", "test_results"):
        tests = doc.get(holder)
        if not isinstance(tests, dict):
            continue
        for name, result in tests.items():
            if not isinstance(result, dict) or not isinstance(result.get("status"), str):
                continue
            if known_hardware(name):
                continue  # per-platform outcomes are compatibility rows
            word = result["status"].strip().lower()
            word = {"success": "passed", "pass": "passed", "fail": "failed", "error": "failed"}.get(word, word)
            model = clean_model_name(result.get("model_name") or result.get("model")) or name
            elapsed = positive(result.get("elapsed_time", result.get("execution_time")))
            added += b.add_integration(pointer_join(pointer_join("", holder), name), test_name=name, status=word,
                                       model=model, execution_time_seconds=elapsed,
                                       error_message=text_or_none(result.get("error"), 2000),
                                       metadata={k: v for k, v in result.items()
                                                 if k in ("return_code", "platform_status")})
    return added


def _prefixed_outcomes(b: Builder, doc: dict, ctx: dict) -> int:
    """{'results': {'pipeline': {'device': 'cuda', 'pipeline_error_type': 'missing_dependency',
    'pipeline_test': 'Missing dependencies: ...', 'pipeline_missing_deps': [...]}}}: one test per entry, its
    fields prefixed by the test's name -> an integration_test_results row. A test that could not run for a
    missing dependency is `skipped` (the environment lacked a package: no verdict on the model), one whose
    error type names another error `failed`, one that reports `<name>_success: true` `passed`."""
    results = doc.get("results")
    if not isinstance(results, dict):
        return 0
    added = 0
    for name, entry in results.items():
        if not isinstance(entry, dict) or not isinstance(name, str):
            continue
        # the prefix is the entry's name or its start ('pipeline_cuda' -> 'pipeline'): a few lookups, not a
        # scan of every key
        prefix, cut = name, len(name)
        while cut > 0 and f"{prefix}_error_type" not in entry:
            cut = name.rfind("_", 0, cut)
            prefix = name[:cut] if cut > 0 else ""
        if not prefix:
            continue
        error_type = entry.get(f"{prefix}_error_type")
        error_type = error_type.strip().lower() if isinstance(error_type, str) else None
        success = to_bool(entry.get(f"{prefix}_success"))
        text = next((entry[k] for k in (f"{prefix}_test", f"{prefix}_error") if isinstance(entry.get(k), str)), None)
        if success is True and error_type in (None, "", "none"):
            status = "passed"
        elif error_type in ("missing_dependency", "missing_dependencies"):
            status = "skipped"
        elif success is False or error_type not in (None, "", "none"):
            status = "failed"
        else:
            continue
        hardware = known_hardware(entry.get("device")) or ctx.get("hardware")
        model = entry.get("model") if clean_model_name(entry.get("model")) else ctx.get("model")
        said = {"device", "model", f"{prefix}_success"}
        if text and status != "passed":  # the text is the row's error message
            said |= {f"{prefix}_test", f"{prefix}_error"}
        details = {k: v for k, v in entry.items() if k not in said and v is not None}
        added += b.add_integration(
            pointer_join("/results", name), test_name=f"{name} on {hardware}" if hardware and hardware not in name
            else name, status=status, model=model, hardware=hardware, test_module=b.test_name,
            error_message=text[:2000] if text and status != "passed" else None, metadata=details or None)
    return added


# ------------------------------------------------------------------------------------------ hardware
def _presence(value) -> tuple[bool | None, dict]:
    """(present, details) of one detection entry: True/False, or {'available': true, 'name': ...}."""
    if isinstance(value, bool):
        return value, {}
    if isinstance(value, dict):
        for key in ("available", "detected", "present", "is_available", "supported"):
            if isinstance(value.get(key), bool):
                return value[key], value
    return None, {}


def _device_of(kind: str, details: dict, system: dict, table: dict) -> tuple[str | None, dict]:
    """(the device's name, the device list entry that named it, else {})."""
    for key in ("device_name", "name", "gpu_name", "model", "processor"):
        if isinstance(details.get(key), str) and details[key].strip():
            return details[key].strip(), {}
    devices = details.get("devices") or (system.get(f"{kind}_devices") or table.get(f"{kind}_devices"))
    if isinstance(devices, list) and devices:
        first = devices[0]
        name = first.get("name") if isinstance(first, dict) else first
        return (name, first if isinstance(first, dict) else {}) if isinstance(name, str) else (None, {})
    return None, {}


def _version_of(kind: str, *holders: dict) -> str | None:
    """The platform's software version ('cuda_version': '12.4', 'openvino_version': ...) from the first holder
    that states it: the runtime the results ran on, as the runners store it in platform_version."""
    for holder in holders:
        value = holder.get(f"{kind}_version")
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()[:100]
    return None


def _detected_hardware(b: Builder, doc: dict) -> int:
    """Hardware detection ({'cuda': true, 'mps': false} or {'cuda': {'available': true, ...}}) -> platforms."""
    found = 0
    system = doc.get("system_info") if isinstance(doc.get("system_info"), dict) else {}
    tables = [doc.get(key) for key in _HARDWARE_DETECTION_KEYS] + [doc]
    for table in tables:
        if isinstance(table, dict) and isinstance(table.get("capabilities"), dict):
            table = table["capabilities"]
        if not isinstance(table, dict):
            continue
        entries = {}
        for key, value in table.items():
            kind = known_hardware(key)
            if kind:
                present, details = _presence(value)
                if present is not None:
                    entries[kind] = (present, details)
        if not entries or (table is doc and len(entries) < 2):
            continue
        b.run_metadata.setdefault("hardware_detected", {}).update({k: v[0] for k, v in entries.items()})
        for kind, (present, details) in entries.items():
            if not present:
                continue
            device, entry = _device_of(kind, details, system, table)
            # the device list entry ({'name': 'Quadro P4000', 'total_memory_gb': 7.9, 'multi_processor_count':
            # 14}) describes the device named; a memory figure without its unit ('total_memory') is not read
            memory = to_float(details.get("memory_gb") or details.get("total_memory_gb")
                              or entry.get("total_memory_gb") or entry.get("memory_gb"))
            driver = details.get("driver_version") or details.get("version")
            units = to_int(details.get("device_count") or details.get("cores")
                           or entry.get("multi_processor_count") or entry.get("compute_units"))
            if b.hardware_id(kind, device,
                             platform=system.get("platform") if isinstance(system.get("platform"), str) else None,
                             platform_version=_version_of(kind, details, table, system),
                             driver_version=str(driver) if isinstance(driver, (str, int, float)) else None,
                             memory_gb=memory if memory and memory > 0 else None,
                             compute_units=units if units and units > 0 else None):
                found += 1
    return found


# ------------------------------------------------------------------------------------------ summaries
def _parallel_lists(b: Builder, doc: dict, ctx: dict) -> int:
    """benchmark_summary.json: model_families.<f>.models_tested[i] with hardware_results.<hw>.latency_ms[i]."""
    added = 0
    families = doc.get("model_families")
    if not isinstance(families, dict):
        return 0
    for family, entry in families.items():
        if not isinstance(entry, dict):
            continue
        models = entry.get("models_tested")
        results = entry.get("hardware_results")
        if not isinstance(models, list) or not isinstance(results, dict):
            continue
        for hw, figures in results.items():
            if not isinstance(figures, dict) or not known_hardware(hw):
                continue
            for index, model in enumerate(models):
                rec = {}
                for key, values in figures.items():
                    if isinstance(values, list) and len(values) == len(models):
                        rec[key] = values[index]
                if not rec:
                    b.drop(pointer_join(pointer_join("/model_families", family), "hardware_results"),
                           f"figure lists on {hw} do not match models_tested (empty or of another length)")
                    continue
                pointer = pointer_join(pointer_join(pointer_join(pointer_join("/model_families", family),
                                                                 "hardware_results"), hw), index)
                values = read_measurement(b, rec, pointer, {**ctx, "model": model, "hardware": known_hardware(hw)})
                values["model_family"] = family
                values["test_case"] = values.get("test_case") or "mean_over_configurations"
                values["metrics"] = {**(values.get("metrics") or {}),
                                     "aggregate": "summary figure of the run (mean over its batch and sequence "
                                                  "configurations), not one configuration"}
                added += b.add_performance(pointer, **values)
    return added


# ------------------------------------------------------------------------------------------ repeats
def _segments(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]] if pointer else []


def _names_model(key: str, model: str, registry: dict) -> bool:
    return key == model or registry.get(key) == model or context_from_key(key, None, {}).get("model") == model


def _restates(b: Builder, first: str, other: str, model: str) -> bool:
    """True if the statement at `other` repeats the one at `first` within one record of `model`: below the
    node the two pointers share, which lies inside that model's entry, they branch off through keys that carry
    nothing of their own (not a list item, not a hardware, batch or model key), as in
    {'canine': {'platform_status': {'cpu': 'REAL'}, 'structured_data': {'status': {'cpu': 'REAL'}}}}.
    Runs side by side ({'cpu': {...}, 'cuda': {...}} or a list of runs) are never repeats of each other."""
    a, c = _segments(first), _segments(other)
    common = 0
    while common < min(len(a), len(c)) and a[common] == c[common]:
        common += 1
    registry = b.run_metadata.get("model_registry") or {}
    plain = {"registry": registry}
    for seg in a[common:-1] + c[common:-1]:
        if seg.isdigit() or known_hardware(seg) or context_from_key(seg, None, plain) is not plain:
            return False
    node = b.doc
    for depth in range(common + 1):  # the shared path, from the document down to the shared node
        if isinstance(node, dict):
            for key in ("model_name", "model", "model_id"):
                value = node.get(key)
                if isinstance(value, str) and (value == model or registry.get(value) == model):
                    return True
        if depth == common:
            break
        seg = a[depth]
        if _names_model(seg, model, registry):
            return True
        node = node.get(seg) if isinstance(node, dict) else (
            node[int(seg)] if isinstance(node, list) and seg.isdigit() and int(seg) < len(node) else None)
    return False


def _collapse_repeated_verdicts(b: Builder) -> None:
    """One compatibility row per verdict a record states: a record that says the same verdict twice (a
    summary and its structured copy) gives one row, which names where the verdict was repeated (and what
    differed there) in `metadata.restated_at`."""
    pointers = b.compat_pointers
    if len(pointers) < 2:
        return
    names = {m.model_id: name for name, m in b.models.items()}
    groups: dict[tuple, list] = {}
    for row in b.facts:
        if row.TABLE == "hardware_compatibility" and row.model_id is not None:
            key = (row.model_id, row.hardware_id, row.is_compatible, row.detection_success,
                   row.initialization_success, row.error_message, row.is_simulated)
            groups.setdefault(key, []).append(row)
    dropped = set()
    for rows in groups.values():
        if len(rows) < 2:
            continue
        kept: list = []
        # the row kept is the one first in pointer order, not in the document's key order: the same ids
        # whatever order the document writes its keys in
        rows.sort(key=lambda r: _segments(pointers[r.compatibility_id]))
        for row in rows:
            pointer = pointers[row.compatibility_id]
            model = names.get(row.model_id)
            first = next((k for k in kept if _restates(b, pointers[k.compatibility_id], pointer, model)), None)
            if first is None:
                kept.append(row)
                continue
            note: dict = {"pointer": pointer}
            if row.metadata != first.metadata:
                note["metadata"] = row.metadata
            if row.created_at != first.created_at and row.created_at is not None:
                note["created_at"] = row.created_at.isoformat()
            meta = dict(first.metadata or {})
            meta["restated_at"] = [*meta.get("restated_at", []), note]
            first.metadata = meta
            dropped.add(id(row))
    if dropped:
        b.facts = [row for row in b.facts if id(row) not in dropped]


# ------------------------------------------------------------------------------------------ the reader
def _run_fields(b: Builder, doc) -> None:
    if not isinstance(doc, dict):
        return
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    b.started_at = b.time_of(doc.get("timestamp"), doc.get("test_timestamp"), doc.get("created_at"),
                             meta.get("timestamp"), meta.get("test_timestamp")) or b.path_time
    command = doc.get("command") if isinstance(doc.get("command"), str) else None
    b.command_line = command
    elapsed = to_float(doc.get("elapsed_time", doc.get("total_execution_time", meta.get("execution_time"))))
    b.execution_time_seconds = elapsed if elapsed and elapsed > 0 else None
    if isinstance(doc.get("success"), bool):
        b.success = doc["success"]
    env = {k: doc[k] for k in ("system_info", "python_version", "environment") if k in doc}
    if meta:
        env.update({k: v for k, v in meta.items() if _is_environment_key(k)})
        rest = {k: v for k, v in meta.items() if not _is_environment_key(k) and not _meta_key_mapped(b, k, v)}
        rest = {k: v for k, v in rest.items() if v not in ({}, [])}
        if rest:  # platform_status, the test's task and category, ...: kept with the run
            b.run_metadata["metadata"] = rest
    b.environment = env or None
    test_file = doc.get("test_file") if isinstance(doc.get("test_file"), str) else meta.get("test_file")
    script = _script_of(command)
    b.test_name = test_file if isinstance(test_file, str) else script  # else the kind, when the reader is done


# a run's `metadata` fields that describe the machine and its software: the run's environment
_ENVIRONMENT_KEYS = frozenset(("dependencies", "platform", "os", "hostname", "cpu_count", "device_count"))


def _is_environment_key(key) -> bool:
    """'torch_version', 'cuda_available', 'has_torch', 'cuda_device_count', 'dependencies': environment."""
    return isinstance(key, str) and (key.endswith(("_version", "_available", "_device_count")) or
                                     key.startswith("has_") or key in _ENVIRONMENT_KEYS)


def _meta_key_mapped(b: Builder, key, value) -> bool:
    """True if the run's metadata field went to a column already: its time, test file, elapsed time, or a
    model name the rows carry."""
    if key in ("timestamp", "test_timestamp"):
        return b.time_of(value) is not None
    if key == "test_file":
        return isinstance(value, str)
    if key == "execution_time":
        return positive(value) is not None
    return key in _MODEL_KEYSET and clean_model_name(value) is not None


_NAME_PARTS_RE = re.compile(r"[_\-.]+")


def _hardware_of_file_name(path: str) -> str | None:
    """The one hardware type a file name names ('clip_cpu_test.json' -> 'cpu'), else None."""
    stem = os.path.splitext(os.path.basename(path))[0].lower()
    kinds = {known_hardware(t) for t in _NAME_PARTS_RE.split(stem) if known_hardware(t)}
    return kinds.pop() if len(kinds) == 1 else None


def _script_of(command: str | None) -> str | None:
    """'python run_direct_benchmark.py --model x' -> 'run_direct_benchmark.py'."""
    if not command:
        return None
    for token in command.split()[:4]:
        if token.endswith(".py"):
            return os.path.basename(token)
    return None


def _initial_context(b: Builder, doc) -> dict:
    ctx: dict = {"created_at": b.started_at}
    hardware = _hardware_of_file_name(b.path)
    if hardware:  # the weakest evidence: any hardware the content states wins
        ctx["hardware"] = hardware
        ctx["hardware_source"] = "file name"
    if not isinstance(doc, dict):
        return ctx
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else None
    if meta:
        ctx = context_from_record(b, meta, ctx)
    ctx = context_from_record(b, doc, ctx)
    types = doc.get("hardware_types")
    if isinstance(types, list) and len(types) == 1 and known_hardware(types[0]) and (
            "hardware" not in ctx or ctx.get("hardware_source")):
        ctx["hardware"] = known_hardware(types[0])
        ctx["hardware_source"] = "the document's only hardware type"
    return ctx


def _model_registry(doc) -> dict[str, str]:
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, dict):
        return {}
    names = {}
    for key, value in models.items():
        if isinstance(value, dict) and clean_model_name(value.get("name")):
            names[key] = value["name"]
    return names


def read_legacy(b: Builder, doc) -> str:
    _run_fields(b, doc)
    ctx = _initial_context(b, doc)
    registry = _model_registry(doc)
    if registry:
        ctx["registry"] = registry
        b.run_metadata["model_registry"] = registry
        for name, model in registry.items():
            entry = doc["models"][name]
            b.model_id(model, modality=entry.get("modality") if isinstance(entry.get("modality"), str) else None)
    skill = _file_skill_name(b.path, doc)
    if "model" in ctx and registry:
        ctx["model"] = registry.get(ctx["model"], ctx["model"])
    if "model" not in ctx and skill:
        ctx["model"] = skill
    counts = _Counts()
    _walk(b, doc, "", ctx, None, 0, _ALL, counts)
    perf, compat, integration = counts.perf, counts.compat, counts.integration
    if isinstance(doc, dict):
        perf += _parallel_lists(b, doc, ctx)
        integration += _named_tests(b, doc)
        integration += _prefixed_outcomes(b, doc, ctx)
        if not perf and not compat and not integration and _is_flat_status_report(doc):
            integration += _api_tests(b, doc, os.path.splitext(os.path.basename(b.path))[0])
    if compat > 1:
        _collapse_repeated_verdicts(b)
    hardware = _detected_hardware(b, doc) if isinstance(doc, dict) else 0
    if isinstance(doc, dict):
        mapped = {"timestamp", "test_timestamp", "command", "elapsed_time", "success", "system_info",
                  "python_version", "test_file"}
        b.run_metadata.update({k: v for k, v in doc.items() if k not in mapped and not isinstance(v, (dict, list))})
    if perf:
        return "performance"
    if compat:
        return "compatibility"
    if integration:
        return "integration"
    if hardware:
        return "hardware"
    reasons = sorted({d["reason"] for d in b.dropped})[:3]
    if isinstance(doc, dict):
        empty = sorted(k for k, v in doc.items() if v in ({}, []))
        if empty:
            reasons.insert(0, f"empty: {', '.join(empty)}")
    detail = f" ({'; '.join(reasons)})" if reasons else ""
    raise ShapeSkip(f"no measurement, platform status or test outcome found{detail}")
