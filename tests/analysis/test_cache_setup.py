"""A cache layout's sizes (``analysis.cache_layout.setup``): the tokens it allocates, where
a decode step's ops may change, and the sizes it refuses. Pure."""

from __future__ import annotations

import pytest

from modelmeter.analysis.cache_layout import CacheSetup, setup
from modelmeter.errors import InputError


def test_allocated_tokens() -> None:
    paged = setup("paged", 12)
    assert (paged.block, paged.max_cache_len, paged.kind) == (16, 0, "dynamic")
    # ceil(T/16) x 16: 1 -> 16, 16 -> 16, 17 -> 32, 2049 -> 2064
    assert [paged.allocated(t) for t in (1, 16, 17, 2049)] == [16, 16, 32, 2064]
    static = setup("static", 12)
    assert (static.kind, static.max_cache_len) == ("static", 12)
    # preallocated to M = 12 (prompt + new): max(T, 12)
    assert [static.allocated(t) for t in (1, 12, 13)] == [12, 12, 13]
    assert setup("inplace", 12, max_cache_len=40).allocated(12) == 40
    assert setup("dynamic", 12).allocated(13) == 13


def test_breaks_by_cache_object() -> None:
    # a DynamicCache's window layer is full at w-1 and changes ops at w+1; a StaticCache's
    # starts rolling at w
    assert CacheSetup("paged").breaks((16,)) == [15, 17]
    assert CacheSetup("static", 1, 30).breaks((16,)) == [15, 16, 17]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("static", 12, 16, None), "paged cache only"),
        (("paged", 12, None, 20), "static or inplace cache only"),
        (("static", 12, None, 11), "max_cache_len must be a whole number >= 12"),
        (("paged", 12, 0, None), "block size must be a whole number >= 1"),
        (("paged", 12, True, None), "block size must be"),
        (("ring", 12, None, None), "unknown cache layout"),
    ],
)
def test_refused(args: tuple, words: str) -> None:
    with pytest.raises(InputError, match=words):
        setup(*args)
