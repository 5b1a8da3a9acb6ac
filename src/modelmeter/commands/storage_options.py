"""``--weights FORMAT`` and ``--kv FORMAT``: the storage formats an analysis prices bytes at
(``modelmeter.storage``), parsed by argparse before any model loads. Beside the shared options
of ``options.py`` (kept apart: that module is full)."""

from __future__ import annotations

import argparse

from modelmeter.errors import InputError
from modelmeter.storage import (
    KV_FORMATS,
    WEIGHT_FORMATS,
    KVFormat,
    WeightFormat,
    parse_kv_format,
    parse_weight_format,
)


def weight_format_arg(text: str) -> WeightFormat:
    try:
        return parse_weight_format(text)
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def kv_format_arg(text: str) -> KVFormat:
    try:
        return parse_kv_format(text)
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_storage_options(p: argparse.ArgumentParser) -> None:
    """``--weights`` (weight-only formats of the matrix products' weights) and ``--kv``."""
    p.add_argument(
        "--weights",
        type=weight_format_arg,
        metavar="FORMAT",
        help=f"store the weights of matrix products as {', '.join(WEIGHT_FORMATS)} (int4 = "
        "groups of 128, fp16 scales, int4 zero points; int4:g64 sets the group; int8 is per "
        "channel; fp8 per tensor); embeddings, norms and lm_head keep their dtype; bytes "
        "change, counts do not, compute stays in the activation dtype",
    )
    p.add_argument(
        "--kv",
        type=kv_format_arg,
        metavar="FORMAT",
        help=f"store KV-cache tensors as {', '.join(KV_FORMATS)} (int8/int4 with an fp16 scale "
        "and zero point per token and head)",
    )


def storage_kwargs(args: argparse.Namespace) -> dict[str, object]:
    """The ``weights=``/``kv=`` keyword arguments of ``analyze`` that were set (none: {})."""
    return {k: getattr(args, k) for k in ("weights", "kv") if getattr(args, k, None) is not None}


__all__ = ["add_storage_options", "storage_kwargs", "weight_format_arg", "kv_format_arg"]
