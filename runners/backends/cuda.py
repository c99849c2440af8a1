"""NVIDIA GPUs through PyTorch's CUDA build.

Each measured call is bracketed by `torch.cuda.synchronize()` (the host clock then sees the kernel time), and
device memory is `max_memory_allocated` after `reset_peak_memory_stats` at the start of the measured phase.
A CPU-only torch or a machine without a GPU is reported by `detect` with the reason.
"""
from __future__ import annotations

import subprocess

from runners.backends.base import Detection, TorchBackend


def nvidia_driver_version() -> str | None:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


class CUDABackend(TorchBackend):
    name = "cuda"
    platform_name = "cuda"
    torch_device = "cuda"

    def _detect(self) -> Detection:
        import torch

        if getattr(torch.version, "hip", None):
            return Detection(False, f"torch {torch.__version__} is a ROCm (HIP) build; use --hardware rocm")
        if torch.version.cuda is None:
            return Detection(False, f"torch {torch.__version__} was built without CUDA support "
                                    "(torch.version.cuda is None); install a CUDA build of torch on a machine "
                                    "with an NVIDIA GPU")
        if not torch.cuda.is_available():
            return Detection(False, f"no CUDA device found: torch.cuda.is_available() is False "
                                    f"(torch {torch.__version__}, CUDA {torch.version.cuda})")
        props = torch.cuda.get_device_properties(0)
        return Detection(True, device_name=torch.cuda.get_device_name(0), platform="cuda",
                         platform_version=torch.version.cuda, driver_version=nvidia_driver_version(),
                         memory_gb=round(props.total_memory / 1024 ** 3, 2), compute_units=props.multi_processor_count,
                         metadata={"capability": f"{props.major}.{props.minor}",
                                   "device_count": torch.cuda.device_count()})

    def precision_support(self, precision: str) -> str | None:
        if precision in ("fp32", "fp16"):
            return None
        if precision == "bf16":
            import torch

            return None if torch.cuda.is_bf16_supported() else "this GPU has no bf16 support"
        return f"{precision} on {self.name} needs a quantisation library (bitsandbytes/TensorRT), not used here"

    def synchronize(self) -> None:
        import torch

        torch.cuda.synchronize()

    def reset_peak_memory(self) -> None:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def peak_memory_mb(self) -> float | None:
        import torch

        return torch.cuda.max_memory_allocated() / (1024 * 1024)

    def memory_available_gb(self) -> float | None:
        import torch

        free, _total = torch.cuda.mem_get_info()
        return free / 1024 ** 3

    def release(self, prepared) -> None:
        super().release(prepared)
        import gc

        import torch

        gc.collect()
        torch.cuda.empty_cache()

    def _cast(self, model, precision: str):
        import copy

        # the host model is shared by every backend of the run: move a copy, never the original
        return super()._cast(copy.deepcopy(model), precision)
