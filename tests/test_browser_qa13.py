"""QA 13: the browser backend warms up as the Python backends do (runners.measure.warm_up), in the page.

At least --warmup calls, then until the calls stop getting faster and WARMUP_MIN_S has passed, within
WARMUP_MAX_S / WARMUP_MAX_CALLS; the calls actually made come back as warmup_iterations. The rule itself is
checked deterministically by driving the page's warmUp with calls of known duration; the tiny model checks the
same in a real onnxruntime-web run.
"""
from __future__ import annotations

import json

import pytest

from runners import measure
from runners.web import browser_harness
from tests.test_browser_harness import _tiny_model

MISSING = browser_harness.missing_prerequisites()
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(MISSING is not None, reason=f"browser harness unavailable: {MISSING}")]

# calls of known duration on a virtual clock: call i takes ms_at(i) ms, so the decision is deterministic
_DRIVE = """async ([minimum, rule, pattern]) => {
  let i = 0, clock = 0;
  const msAt = new Function('i', 'return ' + pattern);
  const call = async () => { clock += msAt(i++); };
  return await window.harnessWarmUp(call, minimum, rule, null, () => clock);
}"""


@pytest.fixture(scope="module")
def wasm_harness():
    with browser_harness.BrowserHarness("wasm", timeout_s=120) as harness:
        yield harness


def _drive(harness, minimum: int, pattern: str, adaptive: bool = True) -> dict:
    return harness.evaluate(_DRIVE, [minimum, browser_harness.warmup_rule(adaptive), pattern], timeout_s=30)


def test_the_page_gets_the_constants_of_runners_measure():
    rule = browser_harness.warmup_rule(True)
    assert rule == {"adaptive": True, "min_s": measure.WARMUP_MIN_S, "max_s": measure.WARMUP_MAX_S,
                    "max_calls": measure.WARMUP_MAX_CALLS, "window": measure.WARMUP_WINDOW,
                    "tolerance": measure.WARMUP_TOLERANCE}


def test_steady_calls_stop_early_once_the_minimum_time_has_passed(wasm_harness):
    # 5 ms calls are steady from the start: stable after 2 windows, so it stops once WARMUP_MIN_S has passed
    warm = _drive(wasm_harness, 0, "5")
    assert warm["warmup_stopped"] == "stable"
    least = max(2 * measure.WARMUP_WINDOW, int(measure.WARMUP_MIN_S * 1000 / 5))
    assert len(warm["warmup_ms"]) == least, warm["warmup_ms"]
    # a minimum above that is still honoured, and nothing more is run once it is met and steady
    warm = _drive(wasm_harness, 30, "5")
    assert len(warm["warmup_ms"]) == 30 and warm["warmup_stopped"] == "stable" and warm["warmup_requested"] == 30


def test_calls_that_keep_getting_faster_run_to_a_cap(wasm_harness):
    # 150 ms, then each call 5 % faster (a window 14 % faster than the one before): never stable, and the calls
    # pass WARMUP_MAX_S after 22 calls of 50 ms or more, so the time cap ends it
    warm = _drive(wasm_harness, 2, "150 * Math.pow(0.95, i)")
    assert warm["warmup_stopped"] == "time cap", warm["warmup_ms"]
    assert len(warm["warmup_ms"]) == 22 and warm["warmup_seconds"] >= measure.WARMUP_MAX_S
    # a warm-up that only slows down settles: slower is not "getting faster"
    assert _drive(wasm_harness, 0, "2 + i")["warmup_stopped"] == "stable"


def test_a_fixed_warmup_runs_exactly_the_count(wasm_harness):
    warm = _drive(wasm_harness, 4, "1", adaptive=False)
    assert len(warm["warmup_ms"]) == 4 and warm["warmup_stopped"] == "as requested"


@pytest.mark.parametrize("warmup", [0, 2, 250])
def test_a_tiny_model_records_the_warmup_calls_it_made(wasm_harness, tmp_path, warmup):
    model, feeds = _tiny_model(tmp_path / "tiny.onnx")
    result = wasm_harness.run_onnx(model, feeds, warmup=warmup, min_iterations=3, min_duration_s=0,
                                   node_placement=False, adaptive_warmup=True)
    assert result["error"] is None, (result["error"], result["console"])
    made = result["warmup_iterations"]
    assert made == len(result["warmup_ms"]) and result["warmup_requested"] == warmup
    assert made >= warmup and made >= 2 * measure.WARMUP_WINDOW or result["warmup_stopped"] == "time cap"
    assert made <= max(warmup, measure.WARMUP_MAX_CALLS)
    assert result["warmup_stopped"] in ("stable", "time cap", "call cap")
    assert result["warmup_seconds"] <= measure.WARMUP_MAX_S + 1.0 or made <= warmup


def test_without_asking_the_harness_keeps_a_fixed_warmup(wasm_harness, tmp_path):
    model, feeds = _tiny_model(tmp_path / "tiny.onnx")
    result = wasm_harness.run_onnx(model, feeds, warmup=2, min_iterations=2, min_duration_s=0,
                                   node_placement=False)
    assert result["warmup_iterations"] == 2 == len(result["warmup_ms"])
    assert result["warmup_stopped"] == "as requested"


def test_cli_warms_up_adaptively_unless_told_not_to(tmp_path, capsys):
    model, _ = _tiny_model(tmp_path / "tiny.onnx")
    base = ["run", str(model), "--provider", "wasm", "--warmup", "1", "--min-iterations", "2", "--min-duration", "0"]
    assert browser_harness.main(base) == 0
    adaptive = json.loads(capsys.readouterr().out)
    assert adaptive["warmup_iterations"] >= 2 * measure.WARMUP_WINDOW and adaptive["warmup_stopped"] != "as requested"
    assert browser_harness.main([*base, "--fixed-warmup"]) == 0
    fixed = json.loads(capsys.readouterr().out)
    assert fixed["warmup_iterations"] == 1 and fixed["warmup_stopped"] == "as requested"


@pytest.mark.parametrize(("js", "py", "minimum"), [
    ("5", lambda i: 5, 0),
    ("5", lambda i: 5, 30),
    ("150 * Math.pow(0.95, i)", lambda i: 150 * 0.95 ** i, 2),
    ("i < 8 ? 40 - 4 * i : 7", lambda i: 40 - 4 * i if i < 8 else 7, 1),
    ("0.01", lambda i: 0.01, 3),  # fast calls: the call cap ends it before WARMUP_MIN_S
    ("20 * Math.pow(0.98, i)", lambda i: 20 * 0.98 ** i, 0),  # 6 % faster a window: within the tolerance
])
def test_the_page_decides_as_runners_measure_warm_up_does(wasm_harness, monkeypatch, js, py, minimum):
    clock = {"ns": 0, "i": 0}

    def call():
        clock["ns"] += round(py(clock["i"]) * 1e6)
        clock["i"] += 1

    monkeypatch.setattr(measure.time, "perf_counter_ns", lambda: clock["ns"])
    expected = measure.warm_up(call, lambda: None, minimum)
    page = _drive(wasm_harness, minimum, js)
    assert (len(page["warmup_ms"]), page["warmup_stopped"]) == (expected["warmup_iterations"],
                                                                expected["warmup_stopped"])
