"""Canonical names for hardware types and model families.

The legacy files and the users of the guide spell the same hardware many ways (`CUDA`, `cuda:0`, `gpu`,
`OpenVINO`, `web_gpu`); everything stored uses one lower-case name from `HARDWARE_TYPES`.
"""
from __future__ import annotations

import functools
import re

HARDWARE_TYPES = ("cpu", "cuda", "rocm", "mps", "openvino", "webnn", "webgpu", "qualcomm")

_HARDWARE_ALIASES = {
    "gpu": "cuda", "nvidia": "cuda", "cuda_gpu": "cuda", "amd": "rocm", "hip": "rocm", "amd_gpu": "rocm",
    "apple": "mps", "metal": "mps", "apple_silicon": "mps", "ov": "openvino", "intel_openvino": "openvino",
    "web_gpu": "webgpu", "web-gpu": "webgpu", "web_nn": "webnn", "web-nn": "webnn", "qnn": "qualcomm",
    "x86": "cpu", "x86_64": "cpu", "host": "cpu",
}

# The 13 model families the guide names, with the modality each belongs to.
FAMILY_MODALITY = {
    "bert": "text", "t5": "text", "llama": "text", "qwen2": "text", "clip": "multimodal", "vit": "vision",
    "detr": "vision", "clap": "audio", "whisper": "audio", "wav2vec2": "audio", "llava": "multimodal",
    "llava_next": "multimodal", "xclip": "multimodal",
}


_DEVICE_INDEX_RE = re.compile(r"[:/]\d+$")


def normalize_hardware_type(value: str | None) -> str | None:
    """`CUDA`, `cuda:0`, `gpu` -> `cuda`; unknown names are kept, lower-cased, rather than guessed."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if not text:
        return None
    text = _DEVICE_INDEX_RE.sub("", text)  # cuda:0, cuda/1
    text = text.replace(" ", "_")
    return _HARDWARE_ALIASES.get(text, text)


_FAMILY_CHECKS = (("llava_next", ("llava-next", "llava_next", "llava-v1.6")), ("llava", ("llava",)),
                  ("xclip", ("xclip", "x-clip")), ("clap", ("clap",)), ("clip", ("clip",)),
                  ("wav2vec2", ("wav2vec",)), ("whisper", ("whisper",)), ("detr", ("detr",)),
                  ("qwen2", ("qwen",)), ("llama", ("llama",)), ("t5", ("t5",)), ("vit", ("vit",)),
                  ("bert", ("bert", "minilm")))


def family_of(model_name: str | None) -> str | None:
    """The guide's family a model name belongs to (`bert-base-uncased` -> `bert`), or None if unclear."""
    if not model_name:
        return None
    if type(model_name) is str and len(model_name) <= 300:
        return _family_of_name(model_name)  # a pure function of the name: cached
    return _family_of(model_name)


# names that hold a family's needle without being of that family: HuBERT is a speech model, not a BERT
_NOT_OF_A_FAMILY = ("hubert",)


def _family_of(model_name: str) -> str | None:
    name = model_name.lower().split("/")[-1]
    if any(n in name for n in _NOT_OF_A_FAMILY):
        return None
    for family, needles in _FAMILY_CHECKS:
        if any(n in name for n in needles):
            return family
    return None


_family_of_name = functools.lru_cache(maxsize=8192)(_family_of)
