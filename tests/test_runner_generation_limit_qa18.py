"""Generation that would run past a model's positions is not run, and the row says why (session 15): llama
generated 32 + 600 tokens past its 512 positions without a word (rotary positions run on), and a model with
learned positions raised only after its warm-up."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("the runners need torch and transformers", allow_module_level=True)


def _ids(length: int):
    import torch

    return {"input_ids": torch.ones(1, length, dtype=torch.long)}


@pytest.mark.slow  # transformers' configuration classes take seconds to import
def test_the_limit_of_each_kind_of_model():
    import transformers as t

    from runners.backends.base import generation_beyond_positions as beyond

    llama = t.LlamaConfig(max_position_embeddings=512)
    assert beyond(llama, _ids(32), 480) is None  # exactly the limit
    assert beyond(llama, _ids(32), 600) == ("not run: 32 prompt tokens + 600 new tokens pass the model's 512 "
                                            "positions; pass --generate-tokens 480 or less")
    assert "1024 positions" in beyond(t.GPT2Config(n_positions=1024), _ids(1000), 100)
    whisper = t.WhisperConfig(max_target_positions=128)
    assert beyond(whisper, {}, 127) is None
    assert "1 decoder start token + 200 new tokens pass the model's 128 positions" in beyond(whisper, {}, 200)
    assert beyond(t.T5Config(), _ids(32), 10_000) is None  # relative positions: no limit
    llava = t.LlavaConfig(text_config=t.LlamaConfig(max_position_embeddings=64).to_dict())
    assert "64 positions" in beyond(llava, _ids(60), 8)
    assert beyond(None, _ids(10), 10) is None


@pytest.mark.slow  # about 3 s: builds and measures llama
def test_runner_stores_the_forward_numbers_and_says_generation_was_not_run(tmp_path, capsys):
    from runners.run_model_benchmarks import main

    out = tmp_path / "out"
    assert main(["--model", "llama", "--no-db-store", "--output-dir", str(out), "--warmup", "1",
                 "--min-iterations", "2", "--min-duration", "0", "--batch-sizes", "1", "--sequence-lengths", "32",
                 "--generate-tokens", "600"]) == 0
    [row] = json.loads(next(Path(out).glob("benchmark_*.json")).read_text())["results"]
    assert row["throughput_items_per_second"] > 0
    assert row["metrics"]["generation_error"].startswith("not run: 32 prompt tokens + 600 new tokens")
    assert "tokens_per_second" not in row["metrics"]
    assert "generation of 600 tokens not run" in row["metrics"]["warning"]
    assert "generation not run" in capsys.readouterr().out
