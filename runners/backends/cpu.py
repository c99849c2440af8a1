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
                         metadata={"torch_threads": torch.get_num_threads(), "machine": platform.machine()})

    def precision_support(self, precision: str) -> str | None:
        if precision in ("fp32", "bf16", "fp16", "int8"):
            return None
        return f"unknown precision {precision}"
