"""Fixtures the generate use-case tests share: the float16 tiny Llama of tests/tiny_llama.py
(one per test module, as a module-scoped fixture)."""

from __future__ import annotations

import pytest
from tiny_llama import TINY_LLAMA_FP16, built, config_source


@pytest.fixture(scope="module")
def tiny_llama_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    """TINY_LLAMA_FP16 written to ``tiny-llama.json``, as a model name (``hf:PATH``)."""
    return config_source(tmp_path_factory, "tiny-llama", TINY_LLAMA_FP16)


@pytest.fixture(scope="module")
def tiny_llama(tiny_llama_path: str) -> object:
    """The float16 tiny Llama, built on meta."""
    return built(tiny_llama_path)
