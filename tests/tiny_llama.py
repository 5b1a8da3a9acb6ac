"""The tiny decoders the generate tests share, and their configs written to files.

TINY_LLAMA: hidden 64, 4 heads of 16, 2 KV heads, MLP 128, vocab 256, 2 layers (float32 as
transformers builds it; TINY_LLAMA_FP16 the same in float16). MISTRAL_W16: the same widths
with head_dim 16, vocab 128 and a sliding window of 16 tokens, float32. Each test keeps the
figures it derives by hand from these next to its assertions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

TINY_LLAMA = {
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 64,
    "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2,
    "num_hidden_layers": 2, "vocab_size": 256, "max_position_embeddings": 512,
}  # fmt: skip
TINY_LLAMA_FP16 = {**TINY_LLAMA, "torch_dtype": "float16"}
MISTRAL_W16 = {
    "model_type": "mistral", "architectures": ["MistralForCausalLM"], "hidden_size": 64,
    "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 16, "num_hidden_layers": 2, "vocab_size": 128, "sliding_window": 16,
    "max_position_embeddings": 256, "torch_dtype": "float32",
}  # fmt: skip


def config_source(tmp_path_factory: pytest.TempPathFactory, name: str, config: dict) -> str:
    """``config`` written to ``name.json`` in a fresh folder, as a model name (``hf:PATH``; the
    file's stem is the label the renderers print)."""
    path: Path = tmp_path_factory.mktemp("cfg") / f"{name}.json"
    path.write_text(json.dumps(config))
    return f"hf:{path}"


def built(source: str) -> object:
    """The model ``source`` names, built on meta by modelmeter's loader."""
    from modelmeter.models import load

    return load(source).model


def load_model(tmp_path_factory: pytest.TempPathFactory, name: str, config: dict) -> object:
    """The model of :func:`config_source`, built on meta."""
    return built(config_source(tmp_path_factory, name, config))
