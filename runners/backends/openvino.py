"""Intel OpenVINO on the CPU device: the torch model converted with `openvino.convert_model`.

`INFERENCE_NUM_THREADS` is set from `--threads` (OpenVINO otherwise uses every core, so a cpu-vs-openvino
comparison at `--threads 1` would not be like for like) and the count the compiled model reports is recorded.
`INFERENCE_PRECISION_HINT` is always set from `--precision` (on CPUs with AMX/AVX512-BF16 OpenVINO would
otherwise silently run bf16), and the precision the compiled model reports back is what gets recorded.
The converted model is cached per torch model, so batch sizes and sequence lengths reuse one conversion
(inputs keep dynamic shapes).
"""
from __future__ import annotations

import warnings

from runners.backends.base import Backend, Detection, Prepared, UnsupportedConfiguration

_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
_BACK = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


class OpenVINOBackend(Backend):
    name = "openvino"
    platform_name = "openvino"

    def __init__(self):
        super().__init__()
        self._converted: dict[int, object] = {}
        self._compiled: dict[tuple[int, str], object] = {}
        self._failed: dict[int, str] = {}

    def _detect(self) -> Detection:
        try:
            import openvino as ov
        except ImportError as exc:
            return Detection(False, f"the openvino package is not installed ({exc}); pip install openvino")
        core = ov.Core()
        if "CPU" not in core.available_devices:
            return Detection(False, f"OpenVINO found no CPU device (devices: {core.available_devices})")
        caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
        import psutil

        return Detection(True, device_name=core.get_property("CPU", "FULL_DEVICE_NAME"), platform="openvino",
                         platform_version=ov.get_version(), memory_gb=round(psutil.virtual_memory().total / 2 ** 30, 2),
                         compute_units=psutil.cpu_count(logical=True),
                         metadata={"device": "CPU", "optimization_capabilities": list(caps)})

    def precision_support(self, precision: str) -> str | None:
        if precision in ("fp32", "bf16", "fp16"):
            return None
        return "int8 on OpenVINO needs NNCF post-training quantisation, which is not installed"

    def _ov_model(self, spec, model, inputs: dict):
        key = id(model)
        if key in self._failed:  # a model that did not convert will not convert for the next batch size
            raise UnsupportedConfiguration(self._failed[key])
        if key not in self._converted:
            import openvino as ov
            import torch

            wrapper = _tensor_outputs(model, list(inputs))

            restore = None
            if getattr(model.config, "use_cache", None):
                restore, model.config.use_cache = model.config.use_cache, False
            try:
                with torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # tracer warnings about python control flow
                    self._converted[key] = ov.convert_model(wrapper, example_input=tuple(inputs.values()))
            except Exception as exc:
                self._failed[key] = (f"openvino.convert_model failed for {spec.name}: "
                                     f"{type(exc).__name__}: {str(exc)[:400]}")
                raise UnsupportedConfiguration(self._failed[key]) from exc
            finally:
                if restore is not None:
                    model.config.use_cache = restore
        return self._converted[key]

    def prepare(self, spec, model, inputs: dict, precision: str) -> Prepared:
        reason = self.precision_support(precision)
        if reason:
            raise UnsupportedConfiguration(reason)
        import openvino as ov

        ov_model = self._ov_model(spec, model, inputs)
        key = (id(model), precision)
        if key not in self._compiled:
            core = ov.Core()
            config = {"INFERENCE_PRECISION_HINT": _HINTS[precision]}
            if self.threads:  # --threads: without it OpenVINO takes every core, whatever torch was given
                config["INFERENCE_NUM_THREADS"] = int(self.threads)
            self._compiled[key] = core.compile_model(ov_model, "CPU", config)
        compiled = self._compiled[key]
        hint = compiled.get_property("INFERENCE_PRECISION_HINT")
        used = hint.get_type_name() if hasattr(hint, "get_type_name") else str(hint)
        used_name = _BACK.get(used.lower(), used.lower())
        if len(compiled.inputs) != len(inputs):
            raise UnsupportedConfiguration(f"the converted model has {len(compiled.inputs)} inputs, "
                                           f"the runner made {len(inputs)}")
        # positional feeds: the wrapper's argument order is the order of `inputs`
        feeds = [value.numpy() if hasattr(value, "numpy") else value for value in inputs.values()]
        request = compiled.create_infer_request()

        def call():
            return request.infer(feeds)

        items = int(next(iter(inputs.values())).shape[0])
        info = {"framework": "openvino", "device": "CPU", "inference_precision_hint_requested": _HINTS[precision],
                "inference_precision_hint_used": used,
                "num_streams": str(compiled.get_property("NUM_STREAMS")),
                "inference_num_threads": int(compiled.get_property("INFERENCE_NUM_THREADS"))}
        info["threads_used"] = info["inference_num_threads"]
        return Prepared(call=call, precision_used=used_name, items=items, info=info)

    def forget(self, model) -> None:
        """Drop the conversions of a model the engine has finished with."""
        key = id(model)
        self._converted.pop(key, None)
        self._failed.pop(key, None)
        for compiled_key in [k for k in self._compiled if k[0] == key]:
            self._compiled.pop(compiled_key)


def _flatten_tensors(value, out: list) -> list:
    import torch

    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _flatten_tensors(item, out)
    elif isinstance(value, (tuple, list)):
        for item in value:
            _flatten_tensors(item, out)
    elif hasattr(value, "to_tuple"):
        _flatten_tensors(value.to_tuple(), out)
    return out


def _tensor_outputs(model, names: list[str]):
    """A module taking the inputs positionally and returning a flat tuple of tensors, which tracing accepts
    (transformers' output classes hold None fields and nested outputs that the tracer refuses)."""
    import torch

    use_cache_flag = getattr(getattr(model, "config", None), "use_cache", None) is not None

    class TensorOutputs(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            kwargs = dict(zip(names, tensors))
            if use_cache_flag:
                kwargs["use_cache"] = False  # a cache object in the outputs cannot be traced
            out = self.model(**kwargs)
            return tuple(_flatten_tensors(out, []))

    return TensorOutputs().eval()
