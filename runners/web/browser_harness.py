"""Run ONNX models inside headless Chromium with onnxruntime-web, for the WebGPU and WebNN backends.

This module owns the browser side of the runners: a page (harness.html) and the onnxruntime-web files from
runners/web/node_modules, served by a private http.server thread on 127.0.0.1; the Debian Chromium
(/usr/bin/chromium) driven through Playwright; and the JSON that comes back. Latency is timed inside the
page with performance.now() around each awaited session.run (outputs are read back to the CPU, so a WebGPU
run includes the device work). The page can only reach its own origin: every other request is aborted.

    python runners/web/browser_harness.py probe webgpu
    python runners/web/browser_harness.py run model.onnx --provider webgpu [--feeds inputs.npz]

It never downloads a browser and never raises for a missing browser, missing node_modules or a browser that
refuses: `probe` and `run_onnx` return `available`/`error` with a reason that says what to install. It
knows nothing about the database; runners/backends/webgpu.py and webnn.py turn its results into rows.

The module functions `probe` and `run_onnx` start a browser per call. The runner backends keep one
`BrowserSession` per backend per run instead: one Chromium and one server, started on first use, a fresh page
per model, replaced by a freshly started browser after a crash, a lost browser process or a page call that
timed out, and closed at the end of the run (Ctrl-C included; a browser still busy in a call is killed).
`add_launch_hook` is called with each harness whose browser started (tests count launches with it).
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import functools
import http.server
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from runners import measure  # noqa: E402  (the warm-up rule the Python backends follow)

WEB_DIR = Path(__file__).resolve().parent
PAGE_PATH = WEB_DIR / "harness.html"
ORT_DIST_DIR = WEB_DIR / "node_modules" / "onnxruntime-web" / "dist"
ORT_BUNDLE = "ort.webgpu.min.mjs"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ENV = "BENCHMARK_DB_CHROMIUM"
PROVIDERS = ("webgpu", "webnn", "wasm")  # wasm: onnxruntime-web on the CPU, a baseline for the other two
WEBNN_DEVICE_TYPES = ("cpu", "gpu", "npu")

BASE_ARGS = (
    "--no-sandbox",
    "--headless=new",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
)
# --enable-unsafe-webgpu is what makes requestAdapter() answer on Linux; without a GPU, Chromium then hands
# out its SwiftShader (Vulkan on the CPU) fallback adapter.
PROVIDER_ARGS = {
    "webgpu": ("--enable-unsafe-webgpu",),
    "webnn": ("--enable-features=WebMachineLearningNeuralNetwork",),
}
_MAX_BROWSER_TMPDIR = 50  # + "/org.chromium.Chromium.XXXXXX/SingletonSocket" stays under 107 bytes
PROBE_TIMEOUT_S = 60.0  # requestAdapter/requestDevice/createContext: seconds, never minutes
_JOB_GRACE_S = 30.0  # beyond a run's own limit, before Python gives up on a page that cannot stop itself
_JOB_DONE = "__benchmark_db_harness_job_done__"
SOFTWARE_ADAPTER_MARKERS = ("swiftshader", "llvmpipe", "lavapipe", "software", "warp", "basic render")

INSTALL_BROWSER_HINT = "install it with `apt-get install chromium` (Debian package; no browser is downloaded)"
INSTALL_ORT_HINT = "run `make web-deps` (npm ci in runners/web)"

# numpy dtype name -> onnxruntime-web tensor type (the page maps these to typed arrays)
FEED_DTYPES = {
    "float32": "float32", "float64": "float64", "float16": "float16", "int64": "int64", "int32": "int32",
    "int16": "int16", "int8": "int8", "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "bool": "bool",
}
OUTPUT_DTYPES = {"float32": "float32", "float64": "float64", "float16": "float16", "int64": "int64",
                 "int32": "int32", "int16": "int16", "int8": "int8", "uint8": "uint8", "uint16": "uint16",
                 "uint32": "uint32", "bool": "bool"}


def chromium_path() -> str:
    """The browser executable: $BENCHMARK_DB_CHROMIUM, else the Debian /usr/bin/chromium."""
    return os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM


def missing_prerequisites() -> str | None:
    """Why the harness cannot start here (what to install), or None when everything is in place."""
    browser = chromium_path()
    if not (os.path.isfile(browser) and os.access(browser, os.X_OK)) and not shutil.which(browser):
        return f"Chromium not found at {browser}; {INSTALL_BROWSER_HINT}"
    if not (ORT_DIST_DIR / ORT_BUNDLE).is_file():
        return f"onnxruntime-web is not installed ({ORT_DIST_DIR / ORT_BUNDLE} is missing); {INSTALL_ORT_HINT}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is missing; install it with `pip install playwright` (no browser download)"
    return None


def browser_environment() -> dict[str, str]:
    """The environment Chromium starts with: ours, with a short TMPDIR.

    Chromium puts its singleton socket at $TMPDIR/org.chromium.Chromium.XXXXXX/SingletonSocket and dies
    ('Socket path too long') when that passes the 107 bytes of a Unix socket path, which a CI job's or
    pytest's deep temporary folder easily does."""
    env = dict(os.environ)
    if len(tempfile.gettempdir()) > _MAX_BROWSER_TMPDIR and os.path.isdir("/tmp"):
        env["TMPDIR"] = "/tmp"
    return env


def launch_args(provider: str) -> list[str]:
    return [*BASE_ARGS, *PROVIDER_ARGS.get(provider, ())]


def adapter_description(info: dict | None) -> str | None:
    """'google swiftshader' style text from GPUAdapter.info (vendor, architecture, device, description)."""
    if not info:
        return None
    parts = [str(info.get(k) or "").strip() for k in ("vendor", "architecture", "device", "description")]
    text = " ".join(p for p in dict.fromkeys(parts) if p)
    return text or ("fallback adapter" if info.get("is_fallback_adapter") else "unknown adapter")


def adapter_is_emulated(info: dict | None) -> bool:
    """A software adapter: the browser's fallback adapter, or a name that says it runs on the CPU."""
    if not info:
        return False
    if info.get("is_fallback_adapter"):
        return True
    text = " ".join(str(info.get(k) or "") for k in ("vendor", "architecture", "device", "description")).lower()
    return any(marker in text for marker in SOFTWARE_ADAPTER_MARKERS)


_LAUNCH_HOOKS: list[Callable[[BrowserHarness], None]] = []


def add_launch_hook(hook: Callable[[BrowserHarness], None]) -> Callable[[], None]:
    """Call hook(harness) each time a harness has started its browser; returns a function that removes it."""
    _LAUNCH_HOOKS.append(hook)

    def remove() -> None:
        if hook in _LAUNCH_HOOKS:
            _LAUNCH_HOOKS.remove(hook)

    return remove


def _chromium_main_pids() -> set[int]:
    """The browser processes (not their renderers and helpers) started from this process, alive or zombie."""
    try:
        import psutil
    except ImportError:
        return set()
    pids = set()
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return set()
    for child in children:
        try:
            cmdline = child.cmdline()
        except psutil.Error:
            continue
        if "--remote-debugging-pipe" in cmdline and not any(arg.startswith("--type=") for arg in cmdline):
            pids.add(child.pid)
    return pids


def _pid_alive(pid: int) -> bool:
    try:
        import psutil
    except ImportError:
        return True  # unknown: the Playwright connection is the other check
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def warmup_rule(adaptive: bool) -> dict:
    """runners.measure.warm_up's rule for the page (harness.html warmUp applies it between awaited calls)."""
    return {"adaptive": bool(adaptive), "min_s": measure.WARMUP_MIN_S, "max_s": measure.WARMUP_MAX_S,
            "max_calls": measure.WARMUP_MAX_CALLS, "window": measure.WARMUP_WINDOW,
            "tolerance": measure.WARMUP_TOLERANCE}


def _checked_provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {PROVIDERS}, not {provider!r}")
    return provider


class PageTimeout(RuntimeError):
    """The harness page did not answer in time; it has been closed."""


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves /harness.html, /ort/<dist file> and /job/<model file>; nothing else."""

    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".html": "text/html",
        ".onnx": "application/octet-stream",
        ".data": "application/octet-stream",
    }

    def __init__(self, *args, job_files: dict[str, Path], **kwargs):
        self._job_files = job_files
        super().__init__(*args, directory=str(WEB_DIR), **kwargs)

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0].split("#", 1)[0]
        if path in ("/", "/harness.html"):
            return str(PAGE_PATH)
        if path.startswith("/ort/"):
            name = path[len("/ort/"):]
            if "/" not in name and ".." not in name:
                return str(ORT_DIST_DIR / name)
        if path.startswith("/job/"):
            target = self._job_files.get(path[len("/job/"):])
            if target is not None:
                return str(target)
        return str(WEB_DIR / "__not_served__")

    def list_directory(self, path):  # never list folders
        self.send_error(404, "not found")
        return None

    def end_headers(self) -> None:
        # cross-origin isolation: SharedArrayBuffer for the threaded wasm and 5 us performance.now()
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args):  # quiet: the caller reads results, not access logs
        pass


class _LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1 and a free port, in a daemon thread."""

    def __init__(self):
        self.job_files: dict[str, Path] = {}
        handler = functools.partial(_Handler, job_files=self.job_files)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="browser-harness-http", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _external_data_files(onnx_path: Path) -> list[str]:
    """Files next to the model that hold its external tensors (torch.onnx.export writes them for big models)."""
    try:
        import onnx
    except ImportError:
        return []
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception:  # the browser will say what is wrong with the file
        return []
    names: list[str] = []
    try:
        tensors = list(onnx.external_data_helper._get_all_tensors(model))  # initializers, subgraphs, attributes
    except AttributeError:  # an onnx release without the helper: the top-level initializers cover torch exports
        tensors = list(model.graph.initializer)
    for tensor in tensors:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            for entry in tensor.external_data:
                if entry.key == "location" and entry.value not in names:
                    names.append(entry.value)
    return names


def encode_feeds(feeds: dict[str, Any]) -> dict[str, dict]:
    """name -> numpy array to the JSON the page turns into ort.Tensor objects (raw bytes, base64)."""
    import numpy as np

    encoded = {}
    for name, value in feeds.items():
        array = np.ascontiguousarray(np.asarray(value))
        dtype = FEED_DTYPES.get(array.dtype.name)
        if dtype is None:
            raise ValueError(f"feed {name!r} has dtype {array.dtype.name}; onnxruntime-web takes {sorted(FEED_DTYPES)}")
        if array.dtype.byteorder == ">":
            array = array.byteswap().view(array.dtype.newbyteorder("<"))
        encoded[name] = {"dtype": dtype, "dims": list(array.shape), "b64": base64.b64encode(array.tobytes()).decode()}
    return encoded


def decode_outputs(outputs: dict[str, dict] | None) -> dict[str, Any] | None:
    if outputs is None:
        return None
    import numpy as np

    decoded = {}
    for name, spec in outputs.items():
        dtype = OUTPUT_DTYPES.get(spec["dtype"])
        raw = base64.b64decode(spec["b64"])
        if dtype is None:
            decoded[name] = raw
            continue
        decoded[name] = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(spec["dims"]).copy()
    return decoded


class BrowserHarness:
    """One Chromium and one local server for a provider; reuse it for many models, then close it.

        with BrowserHarness("webgpu") as harness:
            info = harness.probe()
            result = harness.run_onnx("model.onnx", feeds)

    Construction never raises: when the browser cannot start, `startup_error` says why and every call
    answers with that reason. Playwright's sync API lives on one private thread per harness, so a harness
    works from a thread that runs an asyncio loop (FastAPI, Jupyter) and two harnesses can be open at once.
    """

    def __init__(self, provider: str, *, device_type: str = "cpu", timeout_s: float = 600.0):
        self.provider = _checked_provider(provider)
        self.device_type = device_type
        self.timeout_s = timeout_s
        self.browser_version: str | None = None
        self.browser_pid: int | None = None  # the Chromium main process, when it could be told apart
        # set when a page call failed or timed out, or the browser went away: a BrowserSession starts a new one
        self.needs_restart = False
        self.console: list[str] = []
        self.startup_error: str | None = missing_prerequisites()
        self._pw = self._browser = self._context = self._page = self._server = None
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None
        self._page_used = False
        self._pending: concurrent.futures.Future | None = None
        if self.startup_error is None:
            try:
                self._worker = concurrent.futures.ThreadPoolExecutor(max_workers=1,
                                                                     thread_name_prefix="browser-harness")
                self._call(self._start)
            except Exception as exc:  # Playwright raises plain Errors; the caller gets the message
                self.startup_error = _launch_failure(exc)
                self.close()
            except BaseException:  # Ctrl-C during the start: no browser left behind
                self.close()
                raise
            else:
                for hook in list(_LAUNCH_HOOKS):
                    hook(self)

    def _start(self) -> None:
        from playwright.sync_api import sync_playwright

        self._server = _LocalServer()
        self._pw = sync_playwright().start()
        before = _chromium_main_pids()
        self._browser = self._pw.chromium.launch(executable_path=chromium_path(), args=launch_args(self.provider),
                                                 headless=True, timeout=60_000, env=browser_environment())
        started = _chromium_main_pids() - before
        self.browser_pid = started.pop() if len(started) == 1 else None  # two launching at once: unknown
        self.browser_version = self._browser.version
        context = self._browser.new_context(service_workers="block")
        origin = self._server.origin

        def only_local(route):
            if route.request.url.startswith(origin + "/"):
                route.continue_()
            else:
                self.console.append(f"blocked request to {route.request.url}")
                route.abort("blockedbyclient")

        context.route("**/*", only_local)
        self._context = context
        self._open_page()

    def _open_page(self) -> None:
        self._page = self._context.new_page()
        self._page.set_default_timeout(60_000)  # navigation; a run is bounded by timeout_s inside the page
        self._page.on("console", self._on_console)
        self._page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))
        self._page.on("crash", lambda page: self.console.append("the page crashed (out of memory?)"))
        self._page.goto(self._server.origin + "/harness.html")
        self._page.wait_for_function("window.harnessReady === true", timeout=30_000)

    def _replace_page(self) -> None:
        """After a crash or a failed call, the next model gets a fresh page (and a fresh wasm heap)."""
        try:
            self._page.close()
        except Exception:  # a crashed page may refuse to close
            pass
        self._open_page()

    def _node_placement(self, args: dict) -> dict | None:
        """Nodes per execution provider, from a verbose session on a throwaway page (see harness.html)."""
        def on_throwaway_page():
            page = self._context.new_page()
            try:
                page.goto(self._server.origin + "/harness.html")
                page.wait_for_function("window.harnessReady === true", timeout=30_000)
                return self._run_job(page, "args => window.harnessPlacement(args)", {**args, "feeds": {}},
                                     args["timeout_s"] + _JOB_GRACE_S)
            finally:
                if not page.is_closed():
                    page.close()

        try:
            answer = self._call(on_throwaway_page)
        except Exception:  # placement is extra information; the measurement stands without it
            return None
        return answer.get("node_placement") or None

    def _call(self, func, *args):
        """Run func on the harness's Playwright thread and return its result (or raise its exception)."""
        self._pending = self._worker.submit(func, *args)
        return self._pending.result()

    def alive(self) -> bool:
        """Whether the browser can take the next call: started, not marked for a restart, its process still
        there (a killed browser is seen at once, before Playwright notices) and still connected."""
        if self.startup_error or self.needs_restart or self._worker is None or self._browser is None:
            return False
        if self.browser_pid is not None and not _pid_alive(self.browser_pid):
            return False
        try:
            return bool(self._call(self._browser.is_connected))
        except Exception:
            return False

    def _kill_browser(self) -> None:
        """SIGKILL the browser (and its process group: renderers, GPU process), for a close() that cannot wait
        for the Playwright thread (a call still running after Ctrl-C); the pending call then fails at once."""
        pid = self.browser_pid
        if pid is None:
            return
        try:
            if os.getpgid(pid) == pid:  # Playwright starts Chromium as the leader of its own process group
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _run_job(self, page, function: str, arg: Any, limit_s: float) -> Any:
        """Call a JavaScript function expression in `page` and wait at most limit_s for its result.

        page.evaluate has no time limit of its own: a promise that never settles (a model fetch that stalls,
        a WebGPU call that never returns) or a main thread blocked inside wasm would hold the runner forever.
        The function runs in a task of its own and says it is done on the console; Playwright's wait for
        that message is bounded on this side, whatever the page is doing. Runs on the Playwright thread.
        """
        starter = ("([arg, marker]) => { window.__harnessJob = undefined; setTimeout(() => {"
                   " Promise.resolve().then(() => (" + function + ")(arg)).then("
                   "  (value) => { window.__harnessJob = {value}; console.debug(marker); },"
                   "  (e) => { window.__harnessJob = {error: (e && e.message) || String(e)}; console.debug(marker); });"
                   " }, 0); }")
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            with page.expect_console_message(lambda message: message.text == _JOB_DONE, timeout=limit_s * 1000):
                page.evaluate(starter, [arg, _JOB_DONE])
        except PlaywrightTimeout:
            self.needs_restart = True  # for a BrowserSession: the next cell gets a freshly started browser
            try:  # the page may be stuck for good: the next call gets a fresh one
                page.close()
            except Exception:  # closing a hung page is best effort; the browser goes at close()
                pass
            raise PageTimeout(f"the page did not answer within {limit_s:g} s (a call that never resolved or a "
                              f"blocked main thread); the page was closed") from None
        job = page.evaluate("() => window.__harnessJob") or {}
        if "error" in job:
            raise RuntimeError(job["error"])
        return job.get("value")

    def evaluate(self, expression: str, arg: Any = None, *, timeout_s: float = 60.0) -> Any:
        """Evaluate a JavaScript function expression in the harness page (diagnostics and tests).

        Raises PageTimeout after timeout_s; the page is then replaced on the next call."""
        if self.startup_error:
            raise RuntimeError(self.startup_error)
        if self._call(self._page.is_closed):
            self._call(self._replace_page)
        return self._call(self._run_job, self._page, expression, arg, timeout_s)

    def _on_console(self, message) -> None:
        # onnxruntime-web logs its own warnings through console.error, with terminal colour codes
        if message.type in ("error", "warning"):
            self.console.append(f"{message.type}: {_ANSI.sub('', message.text)}")

    def __enter__(self) -> BrowserHarness:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        def stop_browser():
            for closer in (lambda: self._browser and self._browser.close(), lambda: self._pw and self._pw.stop()):
                try:
                    closer()
                except Exception:  # closing is best effort; the browser may already be gone
                    pass

        if self._worker is not None:
            if self._pending is not None and not self._pending.done():
                self._kill_browser()  # a call is still running (Ctrl-C, an error on the caller's side)
            try:
                self._call(stop_browser)
            finally:
                self._worker.shutdown(wait=True)
        if self._server is not None:
            self._server.close()
        self._pw = self._browser = self._context = self._page = self._server = self._worker = None

    def _base(self) -> dict:
        return {"provider": self.provider, "browser": "chromium", "browser_version": self.browser_version,
                "launch_args": launch_args(self.provider)}

    def probe(self) -> dict:
        """Whether the provider works in this browser, the adapter it got and whether that is emulated."""
        result = {**self._base(), "available": False, "reason": None, "adapter": None, "adapter_info": None,
                  "is_emulated": False}
        if self.startup_error:
            result["reason"] = self.startup_error
            return result
        if self.provider == "webnn":
            result["device_type"] = self.device_type
        start = len(self.console)
        try:
            if self._call(self._page.is_closed):
                self._call(self._replace_page)
            page_result = self.evaluate("args => window.harnessProbe(args)",
                                        {"provider": self.provider, "device_type": self.device_type},
                                        timeout_s=PROBE_TIMEOUT_S)
        except Exception as exc:
            self.needs_restart = True
            result["reason"] = f"the harness page failed: {_first_line(exc)}"
            result["console"] = self.console[start:]
            return result
        result["available"] = bool(page_result.pop("available", False))
        result["reason"] = page_result.pop("reason", None)
        info = page_result.pop("adapter_info", None)
        result["adapter_info"] = info
        result["adapter"] = adapter_description(info)
        result["is_emulated"] = adapter_is_emulated(info)
        result.update(page_result)
        result["console"] = self.console[start:]
        return result

    def run_onnx(self, onnx_path: str | os.PathLike, feeds: dict, warmup: int = 3, min_iterations: int = 10,
                 min_duration_s: float = 1.0, *, return_outputs: bool = False,
                 num_threads: int | None = None, timeout_s: float | None = None,
                 node_placement: bool = True, adaptive_warmup: bool = False) -> dict:
        """Load the model in the page, warm up, then time session.run until both minimums are met.

        Warm-up: `warmup` calls; with adaptive_warmup, at least that many and then on until the calls stop
        getting faster, as runners.measure.warm_up decides for the Python backends (the runners ask for it).
        The result has warmup_iterations (calls made), warmup_seconds, warmup_requested and warmup_stopped.

        node_placement: afterwards, load the model once more on a throwaway page with verbose logging to
        count the nodes each execution provider took ({"WebGpuExecutionProvider": 95,
        "CPUExecutionProvider": 60}); costs one more load, never touches the measured page.
        """
        result = {**self._base(), "samples_ms": [], "warmup_ms": [], "adapter": None, "adapter_info": None,
                  "is_emulated": False, "load_time_ms": None, "error": None, "outputs": None}
        if self.startup_error:
            result["error"] = self.startup_error
            result["browser_started"] = False
            return result
        path = Path(onnx_path)
        if not path.is_file():
            result["error"] = f"ONNX file not found: {path}"
            return result
        try:
            encoded = encode_feeds(feeds)
        except ValueError as exc:
            result["error"] = str(exc)
            return result
        external = _external_data_files(path)
        if self._page_used:
            # a fresh page per model: a clean wasm heap (it never shrinks) and no GPU buffers left behind
            try:
                self._call(self._replace_page)
            except Exception as exc:
                self.needs_restart = True
                result["error"] = f"could not open a fresh harness page: {_first_line(exc)}"
                return result
        self._page_used = True
        self._server.job_files.clear()
        self._server.job_files["model.onnx"] = path
        for name in external:
            self._server.job_files[name] = path.parent / name
        args = {"provider": self.provider, "device_type": self.device_type, "feeds": encoded,
                "warmup": int(warmup), "warmup_rule": warmup_rule(adaptive_warmup),
                "min_iterations": int(min_iterations),
                "min_duration_s": float(min_duration_s),
                "timeout_s": float(self.timeout_s if timeout_s is None else timeout_s),
                "return_outputs": bool(return_outputs), "external_data": external,
                "num_threads": num_threads, "node_placement": bool(node_placement)}
        start = len(self.console)
        try:
            # the page stops itself at timeout_s (harness.html); this side waits a little longer, for a page
            # whose main thread is blocked and cannot stop itself
            page_result = self.evaluate("args => window.harnessRun(args)", args,
                                        timeout_s=args["timeout_s"] + _JOB_GRACE_S)
        except Exception as exc:  # a crash, a lost browser, a call past its time limit: the browser is suspect
            self.needs_restart = True
            result["error"] = _with_console(f"the harness page failed: {_first_line(exc)}", self.console[start:])
            result["console"] = self.console[start:]
            return result
        else:
            if node_placement and not page_result.get("error") and not page_result.get("timed_out"):
                page_result["node_placement"] = self._node_placement(args)
        finally:
            self._server.job_files.clear()
        info = page_result.pop("adapter_info", None)
        outputs = page_result.pop("outputs", None)
        result.update(page_result)
        result["adapter_info"] = info
        result["adapter"] = adapter_description(info)
        result["is_emulated"] = adapter_is_emulated(info)
        result["outputs"] = decode_outputs(outputs) if return_outputs and not result["error"] else None
        if result["error"]:
            result["samples_ms"] = []
            result["error"] = _with_console(result["error"], self.console[start:])
        elif not result["samples_ms"]:
            result["error"] = "no measured iterations (the page returned no samples)"
        elif result.get("timed_out"):
            # real samples, fewer or shorter than asked: kept, and said so
            result["warning"] = (f"stopped at the {args['timeout_s']:g} s time limit after "
                                 f"{len(result['samples_ms'])} measured iterations (asked for at least "
                                 f"{min_iterations} and {min_duration_s:g} s)")
        result["console"] = self.console[start:]
        return result


class BrowserSession:
    """One browser reused for many probes and models (a runner backend keeps one per run), then closed.

        session = BrowserSession("webgpu")
        try:
            session.probe(); session.run_onnx(a, feeds_a); session.run_onnx(b, feeds_b)
        finally:
            session.close()

    The browser starts on first use. Each model gets a fresh page, so a fresh onnxruntime session and wasm
    heap (BrowserHarness.run_onnx). When a call fails with the browser (a crash, a page call past its time
    limit, a browser that could not start) or the browser process is gone, that call reports the failure as
    BrowserHarness does and the next call gets a freshly started browser.
    """

    def __init__(self, provider: str, *, device_type: str = "cpu", timeout_s: float = 600.0):
        self.provider = _checked_provider(provider)
        self.device_type = device_type  # what each harness this session starts is given
        self.timeout_s = timeout_s
        self._harness: BrowserHarness | None = None

    def harness(self) -> BrowserHarness:
        """The live harness, started (or restarted) now when there is none that can take a call."""
        if self._harness is not None and not self._harness.alive():
            self.close()
        if self._harness is None:
            self._harness = BrowserHarness(self.provider, device_type=self.device_type, timeout_s=self.timeout_s)
        return self._harness

    def _done_with(self, harness: BrowserHarness) -> None:
        if harness.startup_error or harness.needs_restart:
            self.close()  # the next call starts a fresh browser

    def probe(self) -> dict:
        harness = self.harness()
        try:
            return harness.probe()
        finally:
            self._done_with(harness)

    def run_onnx(self, onnx_path: str | os.PathLike, feeds: dict, warmup: int = 3, min_iterations: int = 10,
                 min_duration_s: float = 1.0, **kwargs) -> dict:
        """BrowserHarness.run_onnx in this session's browser."""
        harness = self.harness()
        try:
            return harness.run_onnx(onnx_path, feeds, warmup=warmup, min_iterations=min_iterations,
                                    min_duration_s=min_duration_s, **kwargs)
        finally:
            self._done_with(harness)

    def close(self) -> None:
        harness, self._harness = self._harness, None
        if harness is not None:
            harness.close()

    def __enter__(self) -> BrowserSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BROWSER_STDERR = re.compile(r"^\s*(?:- )?\[pid=\d+\]\[err\] (.*)$", re.MULTILINE)
_EXIT_CODE = re.compile(r"<process did exit: exitCode=(\d+), signal=(\w+)>")
# Chromium's own start-up chatter on stderr that says nothing about why it failed
_STDERR_NOISE = ("dbus", "DevTools listening", "Fontconfig", "WARNING: ", "GetVSyncParametersIfAvailable")


def _launch_failure(exc: BaseException) -> str:
    """Why Chromium did not start, in one line: Playwright's first line says only 'browser has been closed';
    the browser's own stderr ('error while loading shared libraries ...') and exit code are further down."""
    text = str(exc)
    first = _first_line(exc)
    said: list[str] = []
    for line in _BROWSER_STDERR.findall(text):
        line = _ANSI.sub("", line).strip()
        if line and line not in said and not any(noise in line for noise in _STDERR_NOISE):
            said.append(line)
    fatal = [line for line in said if ":FATAL:" in line]  # Chromium's own reason; the rest is crashpad chatter
    said = fatal or said
    exit_match = _EXIT_CODE.search(text)
    how = []
    if exit_match and exit_match.group(1) != "0":
        how.append(f"it exited with code {exit_match.group(1)}")
    elif exit_match and exit_match.group(2) not in ("null", "None"):
        how.append(f"it was killed by {exit_match.group(2)}")
    if said:
        how.append("said: " + " | ".join(said[-3:])[:500])
    # Playwright's own first line ('Target page, context or browser has been closed') only adds noise then
    what = "it " + " and ".join(h.removeprefix("it ") for h in how) if how else first
    return (f"could not start Chromium ({chromium_path()}): {what}; check that "
            f"`{chromium_path()} --headless=new --version` works, or {INSTALL_BROWSER_HINT}")


def _with_console(error: str, console: list[str]) -> str:
    """The error and what the page said on its console meanwhile: the page's exception is often generic
    ('failed to load external data file') while the console has the cause (an HTTP 404, a WebGPU validation
    error). Only error lines, each once, and not those the error already quotes."""
    said = []
    for line in console:
        kind, _, text = line.partition(": ")
        if text.startswith(("[W:", "[I:", "[V:")):  # onnxruntime's own warnings go through console.error
            continue
        if kind in ("error", "pageerror") and text and text not in error and text not in said:
            said.append(text)
    if not said:
        return error
    return f"{error} (page console: {' | '.join(said[-3:])[:600]})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _refused_run(provider: str, error: str) -> dict:
    return {"provider": provider, "samples_ms": [], "warmup_ms": [], "adapter": None, "adapter_info": None,
            "is_emulated": False, "browser": "chromium", "browser_version": None, "load_time_ms": None,
            "outputs": None, "error": error}


def probe(provider: str, *, device_type: str = "cpu") -> dict:
    """available, reason (the browser's own words when it refuses), adapter, is_emulated, browser_version."""
    if provider not in PROVIDERS:
        return {"provider": provider, "available": False, "reason": f"unknown provider {provider!r}; one of {PROVIDERS}",
                "adapter": None, "adapter_info": None, "is_emulated": False, "browser": "chromium",
                "browser_version": None}
    with BrowserHarness(provider, device_type=device_type) as harness:
        return harness.probe()


def run_onnx(onnx_path: str, feeds: dict, provider: str, warmup: int = 3, min_iterations: int = 10,
             min_duration_s: float = 1.0, *, device_type: str = "cpu", return_outputs: bool = False,
             timeout_s: float = 600.0, node_placement: bool = True, num_threads: int | None = None,
             adaptive_warmup: bool = False) -> dict:
    """Time `onnx_path` on `provider` inside Chromium; samples_ms empty and error set when it cannot run.

    One browser per call; a caller with many models keeps a BrowserHarness open instead.
    """
    if provider not in PROVIDERS:
        return _refused_run(provider, f"unknown provider {provider!r}; one of {PROVIDERS}")
    if not Path(onnx_path).is_file():
        return _refused_run(provider, f"ONNX file not found: {onnx_path}")
    with BrowserHarness(provider, device_type=device_type, timeout_s=timeout_s) as harness:
        return harness.run_onnx(onnx_path, feeds, warmup=warmup, min_iterations=min_iterations,
                                min_duration_s=min_duration_s, return_outputs=return_outputs,
                                node_placement=node_placement, num_threads=num_threads,
                                adaptive_warmup=adaptive_warmup)


def default_feeds(onnx_path: str | os.PathLike) -> dict:
    """Zeros for every graph input, symbolic dimensions set to 1 (a smoke test, not a benchmark input)."""
    import numpy as np
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    initializers = {t.name for t in model.graph.initializer}
    feeds = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in tensor_type.shape.dim]
        feeds[value.name] = np.zeros(dims, dtype=onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type))
    return feeds


def summarize_run(result: dict) -> dict:
    """The run result without raw bytes: sample count, median and extremes next to the raw samples."""
    import statistics

    summary = {k: v for k, v in result.items() if k != "outputs"}
    samples = result.get("samples_ms") or []
    if samples:
        summary["n"] = len(samples)
        summary["median_ms"] = statistics.median(samples)
        summary["min_ms"] = min(samples)
        summary["max_ms"] = max(samples)
    return summary


def build_parser() -> argparse.ArgumentParser:
    from benchmark_db.cli import add_common_options

    parser = argparse.ArgumentParser(
        prog="browser_harness.py",
        description="Probe WebGPU/WebNN in headless Chromium, or time an ONNX model there with onnxruntime-web.")
    sub = parser.add_subparsers(dest="command", required=True)
    probe_parser = sub.add_parser("probe", help="is the provider available; which adapter; emulated or not")
    probe_parser.add_argument("provider", choices=PROVIDERS)
    probe_parser.add_argument("--device-type", choices=WEBNN_DEVICE_TYPES, default="cpu",
                              help="WebNN device type (default: %(default)s)")
    run_parser = sub.add_parser("run", help="time one ONNX model inside the page")
    run_parser.add_argument("onnx", help="the .onnx file (external data next to it is served too)")
    run_parser.add_argument("--provider", choices=PROVIDERS, default="webgpu", help="default: %(default)s")
    run_parser.add_argument("--device-type", choices=WEBNN_DEVICE_TYPES, default="cpu",
                            help="WebNN device type (default: %(default)s)")
    run_parser.add_argument("--feeds", metavar="NPZ", default=None,
                            help="inputs as a .npz (name -> array); default zeros with symbolic dims set to 1")
    run_parser.add_argument("--warmup", type=int, default=3, metavar="N",
                            help="at least N untimed session.run calls before the measured ones, then more "
                                 "until the calls stop getting faster, as the runners do (default: %(default)s)")
    run_parser.add_argument("--fixed-warmup", action="store_true",
                            help="exactly --warmup calls, no adaptive warm-up")
    run_parser.add_argument("--min-iterations", type=int, default=10, metavar="N",
                            help="at least N measured calls (default: %(default)s)")
    run_parser.add_argument("--min-duration", type=float, default=1.0, metavar="SECONDS",
                            help="and at least this long measuring (default: %(default)s)")
    run_parser.add_argument("--threads", type=int, default=None, metavar="N",
                            help="onnxruntime-web wasm threads (default: onnxruntime-web's own)")
    for sub_parser in (probe_parser, run_parser):
        add_common_options(sub_parser, database=False)  # no --lock-timeout: the harness opens no database
    return parser


def run(args: argparse.Namespace) -> int:
    import json

    from benchmark_db.cli import write_text
    from benchmark_db.errors import UsageError

    if args.command == "probe":
        result = probe(args.provider, device_type=args.device_type)
        write_text(json.dumps(result, indent=2), None)
        return 0 if result["available"] else 1
    if not Path(args.onnx).is_file():
        raise UsageError(f"ONNX file not found: {args.onnx}", "give the path of an existing .onnx file")
    if args.warmup < 0:
        raise UsageError(f"--warmup must not be negative, not {args.warmup}", "pass --warmup 0 or more")
    if args.min_iterations < 1:
        raise UsageError(f"--min-iterations must be at least 1, not {args.min_iterations}",
                         "pass --min-iterations 1 or more")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, not {args.threads}", "pass --threads 1 or more")
    if not 0 <= args.min_duration < float("inf"):
        raise UsageError(f"--min-duration {args.min_duration} is not a number of seconds 0 or more",
                         "pass seconds, e.g. --min-duration 0.5")
    if args.feeds:
        import numpy as np

        try:
            data = np.load(args.feeds)
            if not hasattr(data, "files"):  # a bare .npy: one array without an input name
                raise ValueError("a single array (.npy), not named inputs (.npz)")
            with data:
                feeds = {name: data[name] for name in data.files}
        except (OSError, ValueError) as exc:  # missing, not numpy's format, pickled objects, a bare .npy
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).split(". ")[0]
            raise UsageError(f"cannot read --feeds {args.feeds}: {detail}",
                             "give a .npz written by numpy.savez (input name -> array)") from None
    else:
        from google.protobuf.message import DecodeError

        try:
            feeds = default_feeds(args.onnx)
        except DecodeError:  # text, an archive, a truncated download
            raise UsageError(f"{args.onnx} is not an ONNX model", "give the path of an .onnx file") from None
    result = run_onnx(args.onnx, feeds, args.provider, warmup=args.warmup, min_iterations=args.min_iterations,
                      min_duration_s=args.min_duration, device_type=args.device_type, num_threads=args.threads,
                      adaptive_warmup=not args.fixed_warmup)
    if result.get("browser_started") is False:  # nothing was measured: one error line, not a JSON of nothing
        message, _, hint = result["error"].partition("; ")
        raise UsageError(message, hint or None)
    write_text(json.dumps(summarize_run(result), indent=2), None)
    return 0 if result["error"] is None else 1


def main(argv: list[str] | None = None) -> int:
    from benchmark_db.cli import run_cli

    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
