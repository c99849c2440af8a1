"""The host CPU through eager PyTorch: fp32, bf16, fp16 and dynamic int8."""
from __future__ import annotations

from runners.backends.base import Detection, TorchBackend


class CPUBackend(TorchBackend):
    name = "cpu"
    platform_name = "pytorch"
    torch_device = "cpu"

    def _detect(self) -> Detection:
        import platform

        import psutil
        import torch

        from runners.measure import cpu_model

        return Detection(True, device_name=cpu_model(), platform="pytorch", platform_version=torch.__version__,
                         memory_gb=round(psutil.virtual_memory().total / 1024 ** 3, 2),
                         compute_units=psutil.cpu_count(logical=True),
                         metadata={"machine": platform.machine()})
        # torch's thread count is per run (--threads), so it is in the run's environment (torch_threads) and
        # each row's metrics.threads_used, not in this platform row that every run shares

    def precision_support(self, precision: str) -> str | None:
        if precision in ("fp32", "bf16", "fp16", "int8"):
            return None
        return f"unknown precision {precision}"
