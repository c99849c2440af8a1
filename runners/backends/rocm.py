"""AMD GPUs through PyTorch's ROCm (HIP) build: same API as CUDA (`torch.cuda`), told apart by `torch.version.hip`."""
from __future__ import annotations

import subprocess

from runners.backends.base import Detection
from runners.backends.cuda import CUDABackend


def rocm_driver_version() -> str | None:
    try:
        with open("/sys/module/amdgpu/version", encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        pass
    try:
        out = subprocess.run(["rocm-smi", "--showdriverversion"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.stdout.splitlines():
        if "version" in line.lower() and ":" in line:
            return line.split(":", 1)[1].strip()
    return None


class ROCmBackend(CUDABackend):
    name = "rocm"
    platform_name = "rocm"
    torch_device = "cuda"  # HIP devices appear as "cuda" in torch

    def _detect(self) -> Detection:
        import torch

        hip = getattr(torch.version, "hip", None)
        if not hip:
            return Detection(False, f"torch {torch.__version__} is not a ROCm build (torch.version.hip is None); "
                                    "install a ROCm build of torch on a machine with an AMD GPU")
        if not torch.cuda.is_available():
            return Detection(False, f"no ROCm device found: torch.cuda.is_available() is False (HIP {hip})")
        props = torch.cuda.get_device_properties(0)
        return Detection(True, device_name=torch.cuda.get_device_name(0), platform="rocm", platform_version=hip,
                         driver_version=rocm_driver_version(), memory_gb=round(props.total_memory / 1024 ** 3, 2),
                         compute_units=props.multi_processor_count,
                         metadata={"gcn_arch": getattr(props, "gcnArchName", None)})
