"""The interface every hardware backend implements, and the torch-based implementation cpu/cuda/rocm/mps share.

A backend answers five questions: is the platform here (`detect` -> `Detection`: available, reason, device
info); can it run this precision (`precision_support`); get a model ready for one input configuration
(`prepare` -> `Prepared`, whose `call()` is the one measured call); wait for queued work (`synchronize`); and
how much device memory the measured phase used (`reset_peak_memory` / `peak_memory_mb`). `measure` runs the
shared timing loop of `runners.measure` with those pieces. A platform that is absent says why in
`Detection.reason`; nothing here fakes a number. torch is imported inside methods only.
"""
from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

from runners.measure import Measurement, measure_calls

PRECISIONS = ("fp32", "fp16", "bf16", "int8")


@dataclass
class Detection:
    available: bool
    reason: str | None = None
    device_name: str | None = None
    platform: str | None = None
    platform_version: str | None = None
    driver_version: str | None = None
    memory_gb: float | None = None
    compute_units: int | None = None
    is_emulated: bool = False
    metadata: dict = field(default_factory=dict)


@dataclass
class Prepared:
    """A model ready to run one input configuration on one backend."""

    call: Callable[[], object]
    precision_used: str
    items: int  # items per call (the batch size), for throughput
    info: dict = field(default_factory=dict)
    model: object = None
    inputs: dict | None = None


class UnsupportedConfiguration(Exception):
    """This backend cannot run this model/precision; the message says why (becomes a compatibility row)."""


class Backend:
    name = "base"
    platform_name = "unknown"

    def __init__(self):
        self._detection: Detection | None = None
        # --threads: the CPU threads the backend's runtime may use (None: the runtime's default). Each backend
        # applies it in its own runtime and reports the count it ran with in Prepared.info["threads_used"].
        self.threads: int | None = None

    # -- what subclasses provide -------------------------------------------------------------------------
    def _detect(self) -> Detection:
        raise NotImplementedError

    def precision_support(self, precision: str) -> str | None:
        """None when `precision` runs here, else the reason it does not."""
        return None if precision == "fp32" else f"{self.name} runs fp32 only"

    def prepare(self, spec, model, inputs: dict, precision: str) -> Prepared:
        raise NotImplementedError

    def synchronize(self) -> None:
        return None

    def reset_peak_memory(self) -> None:
        return None

    def peak_memory_mb(self) -> float | None:
        return None

    def memory_available_gb(self) -> float | None:
        """Memory a model must fit in on this device, or None when the host's memory is what counts."""
        return None

    def release(self, prepared: Prepared | None) -> None:
        return None

    def generation_metrics(self, spec, prepared: Prepared, new_tokens: int, repeats: int) -> dict:
        """Time to first token and tokens/s; a backend that cannot generate says so in the row (it was
        silently left out: --generate-tokens on openvino or webgpu gave rows that read as plain ok)."""
        if not spec.generative or new_tokens < 1:
            return {}
        return {"generation_error": f"not run: generation is not supported on {self.name} (only the forward "
                                    "pass is measured); measure it on cpu or another torch backend"}

    def measurement_context(self):
        return contextlib.nullcontext()

    # -- shared ------------------------------------------------------------------------------------------
    def detect(self) -> Detection:
        if self._detection is None:
            try:
                self._detection = self._detect()
            except Exception as exc:  # a broken driver or package is a reason, not a crash
                self._detection = Detection(False, f"{self.name} detection failed: {type(exc).__name__}: {exc}")
        return self._detection

    def measure(self, prepared: Prepared, *, warmup: int, min_iterations: int, min_duration_s: float) -> Measurement:
        with self.measurement_context():
            # warm-up: at least `warmup` calls, then until the calls stop getting faster (runners.measure.warm_up)
            result = measure_calls(prepared.call, self.synchronize, warmup=warmup, min_iterations=min_iterations,
                                   min_duration_s=min_duration_s, before_measured=self.reset_peak_memory,
                                   adaptive_warmup=True)
            result.device_peak_mb = self.peak_memory_mb()
        return result


_TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def generation_beyond_positions(config, feeds: dict, new_tokens: int) -> str | None:
    """Why `new_tokens` generated after the prompt in `feeds` would run past the model's positions, or None.

    A decoder-only model generates after its prompt (max_position_embeddings, GPT-2's n_positions); an
    encoder-decoder's decoder starts from one token (whisper's max_target_positions; T5's relative positions
    have no limit). Checked before generating: GPT-2 raised an IndexError only after the warm-up's cost, and
    llama's rotary positions ran 32 + 600 tokens past its 512 without a word."""
    if config is None:
        return None
    text = getattr(config, "text_config", None) or config  # llava: the language model's own limit
    if getattr(config, "is_encoder_decoder", False):
        limit, prompt, kind = getattr(config, "max_target_positions", None), 1, "decoder start token"
    else:
        limit = getattr(text, "max_position_embeddings", None) or getattr(text, "n_positions", None)
        ids = feeds.get("input_ids")
        prompt, kind = (int(ids.shape[-1]) if ids is not None and hasattr(ids, "shape") else 0), "prompt tokens"
    if not isinstance(limit, int) or prompt + new_tokens <= limit:
        return None
    return (f"not run: {prompt} {kind} + {new_tokens} new tokens pass the model's {limit} positions; "
            f"pass --generate-tokens {max(limit - prompt, 0)} or less")


class TorchBackend(Backend):
    """cpu, cuda, rocm and mps: the model runs in eager PyTorch on `torch_device`."""

    torch_device = "cpu"

    def measurement_context(self):
        import torch

        return torch.inference_mode()

    def _cast(self, model, precision: str):
        import torch

        if precision == "int8":
            if self.torch_device != "cpu":
                raise UnsupportedConfiguration(f"int8 on {self.name} needs a quantisation backend; "
                                               "eager dynamic int8 quantisation runs on cpu only")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated but still works
                return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear},
                                                              dtype=torch.qint8)
        dtype = getattr(torch, _TORCH_DTYPES[precision])
        if dtype == torch.float32 and self.torch_device == "cpu":
            return model  # share the built model: no copy for the common case
        moved = copy.deepcopy(model) if self.torch_device == "cpu" else model
        return moved.to(device=self.torch_device, dtype=dtype)

    def _move_inputs(self, inputs: dict, precision: str) -> dict:
        import torch

        dtype = getattr(torch, _TORCH_DTYPES.get(precision, "float32"))
        moved = {}
        for key, value in inputs.items():
            if isinstance(value, torch.Tensor):
                value = value.to(self.torch_device)
                if value.is_floating_point() and precision in _TORCH_DTYPES:
                    value = value.to(dtype)
            moved[key] = value
        return moved

    def prepare(self, spec, model, inputs: dict, precision: str) -> Prepared:
        reason = self.precision_support(precision)
        if reason:
            raise UnsupportedConfiguration(reason)
        runnable = self._cast(model, precision)
        feeds = self._move_inputs(inputs, precision)
        kwargs = dict(feeds)
        if getattr(runnable.config, "use_cache", None) is not None and spec.generative:
            kwargs["use_cache"] = False  # one forward pass over the whole input, no cache building

        def call():
            return runnable(**kwargs)

        items = int(next(iter(inputs.values())).shape[0])
        import torch

        if self.threads and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)  # --threads (the engine sets it for the run too)
        info = {"framework": "torch", "device": self.torch_device, "threads_used": torch.get_num_threads()}
        if precision == "int8":
            info["quantization"] = "torch.ao dynamic int8 (Linear layers)"
        return Prepared(call=call, precision_used=precision, items=items, info=info, model=runnable, inputs=feeds)

    def release(self, prepared: Prepared | None) -> None:
        if prepared is not None:
            prepared.model = None
            prepared.inputs = None
            prepared.call = None

    def generation_metrics(self, spec, prepared: Prepared, new_tokens: int, repeats: int) -> dict:
        """Time to first token and tokens/s of greedy generation (generative families only)."""
        import statistics
        import time

        import torch

        if not spec.generative or new_tokens < 1:
            return {}
        feeds = {k: v for k, v in prepared.inputs.items() if k != "decoder_input_ids"}
        model = prepared.model
        too_long = generation_beyond_positions(getattr(model, "config", None), feeds, new_tokens)
        if too_long:  # learned positions raise past the table; rotary ones run on, past what the model is built for
            return {"generation_error": too_long}

        def generate(n: int) -> float:
            self.synchronize()
            t0 = time.perf_counter_ns()
            model.generate(**feeds, max_new_tokens=n, min_new_tokens=n, do_sample=False, num_beams=1)
            self.synchronize()
            return (time.perf_counter_ns() - t0) / 1e6

        try:
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                generate(new_tokens)  # warm-up
                first = sorted(generate(1) for _ in range(repeats))
                full = sorted(generate(new_tokens) for _ in range(repeats))
        except Exception as exc:  # generation is an extra: report why it failed, keep the forward numbers
            return {"generation_error": f"{type(exc).__name__}: {exc}"[:500]}
        # the median: with the small set's two repeats, first[len // 2] was the slower of the two
        ttft = statistics.median(first)
        total = statistics.median(full)
        items = prepared.items
        out = {"time_to_first_token_ms": ttft, "generation_time_ms": total, "generated_tokens": new_tokens,
               "tokens_per_second": items * new_tokens / (total / 1000.0), "generation_repeats": repeats}
        if new_tokens > 1 and total > ttft:
            out["decode_tokens_per_second"] = items * (new_tokens - 1) / ((total - ttft) / 1000.0)
        return out
