"""Apple GPUs through PyTorch's Metal (MPS) backend; `torch.mps.synchronize()` around each measured call."""
from __future__ import annotations

import platform

from runners.backends.base import Detection, TorchBackend


class MPSBackend(TorchBackend):
    name = "mps"
    platform_name = "mps"
    torch_device = "mps"

    def _detect(self) -> Detection:
        import torch

        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_built():
            return Detection(False, f"torch {torch.__version__} was built without MPS support "
                                    f"(MPS needs macOS on Apple silicon; this is {platform.system()})")
        if not mps.is_available():
            return Detection(False, f"MPS is not available on this machine ({platform.system()} "
                                    f"{platform.machine()}); it needs macOS 12.3+ on Apple silicon")
        from runners.measure import cpu_model

        return Detection(True, device_name=f"Apple GPU ({cpu_model()})", platform="mps",
                         platform_version=platform.mac_ver()[0] or None,
                         metadata={"recommended_max_memory_mb": torch.mps.recommended_max_memory() / 2 ** 20})

    def precision_support(self, precision: str) -> str | None:
        if precision in ("fp32", "fp16", "bf16"):
            return None
        return f"{precision} is not supported by eager PyTorch on MPS"

    def synchronize(self) -> None:
        import torch

        torch.mps.synchronize()

    def reset_peak_memory(self) -> None:
        import torch

        torch.mps.synchronize()
        self._baseline = torch.mps.driver_allocated_memory()

    def peak_memory_mb(self) -> float | None:
        import torch

        # MPS has no peak counter: the driver's allocation at the end of the measured phase
        return torch.mps.driver_allocated_memory() / (1024 * 1024)

    def measure(self, prepared, **kwargs):
        result = super().measure(prepared, **kwargs)
        # the engine's default label ("peak allocated by the framework") would claim a peak MPS cannot report
        result.extra["memory_peak_measures"] = (
            "mps device memory: torch.mps.driver_allocated_memory() at the end of the measured phase (the Metal "
            "driver's allocation, caches included); MPS has no peak counter, so this is not a peak")
        return result

    def _cast(self, model, precision: str):
        import copy

        return super()._cast(copy.deepcopy(model), precision)
