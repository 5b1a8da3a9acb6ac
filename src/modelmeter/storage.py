"""Storage formats: the bytes a tensor takes when the weights or the KV cache are stored in a
format other than the dtype the model computes in. Counts (MACs, FLOPs) never depend on them;
bytes do. ``parse_weight_format`` and ``parse_kv_format`` read the text a user writes.

Weight formats (weight-only: the matrix product still computes in the activation dtype):

- ``fp32``, ``fp16``, ``bf16``: plain, no scales.
- ``fp8``: float8 e4m3, one float32 scale for the whole tensor (per-tensor, as transformers'
  and compressed-tensors' FP8 checkpoints store it): ``numel + 4`` bytes.
- ``int8``: per output channel (one group is a whole row of the reduction dimension),
  symmetric, one float16 scale per row (W8A16).
- ``int4`` (= ``int4:g128``): groups of 128 elements along the reduction (input) dimension,
  one float16 scale and one int4 zero point per group, the zero points packed two a byte:
  the GPTQ/AWQ checkpoint layout (``scales`` fp16, ``qzeros`` packed like ``qweight``).
- Modifiers: ``:gN`` sets the group size (``int4:g64``, ``int8:g128``), ``:sym`` drops the
  zero point, ``:asym`` adds one (stored at the element width, packed).

Byte rule (exact, integers): a tensor of ``numel`` elements whose reduction dimension has
``row`` elements has ``rows = ceil(numel / row)`` rows; each row splits into
``ceil(row / group)`` groups (a last, partial group still has its own scale). Its bytes are
``ceil(numel * bits / 8)`` (the elements, packed over the whole tensor) +
``ceil(groups * scale bytes)`` + ``ceil(groups * zero-point bits / 8)``.

KV-cache formats (``parse_kv_format``): ``fp16``, ``bf16``, ``fp8`` (e4m3; a per-layer scale,
as vLLM keeps it, lives outside the cache and is not counted) and ``int8``/``int4``:
asymmetric per token and per head (LMDeploy's ``quant_policy`` 8/4): each head's vector of
``head_dim`` elements (the cache tensor's last dimension) has one float16 scale and one
float16 zero point, 4 bytes per head per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from modelmeter.errors import InputError
from modelmeter.units import DTYPE_BYTES

WEIGHT_FORMATS = ("fp32", "fp16", "bf16", "fp8", "int8", "int4")
KV_FORMATS = ("fp16", "bf16", "fp8", "int8", "int4")
DEFAULT_GROUP = 128
# name -> (element dtype, bits, granularity, scale dtype, zero point by default)
_WEIGHT_BASES: dict[str, tuple[str, int, str, str | None, bool]] = {
    "fp32": ("float32", 32, "none", None, False),
    "fp16": ("float16", 16, "none", None, False),
    "bf16": ("bfloat16", 16, "none", None, False),
    "fp8": ("float8_e4m3fn", 8, "tensor", "float32", False),
    "int8": ("int8", 8, "channel", "float16", False),
    "int4": ("int4", 4, "group", "float16", True),
}
_KV_BASES: dict[str, tuple[str, int, str | None]] = {
    "fp16": ("float16", 16, None),
    "bf16": ("bfloat16", 16, None),
    "fp8": ("float8_e4m3fn", 8, None),
    "int8": ("int8", 8, "float16"),
    "int4": ("int4", 4, "float16"),
}
_WEIGHT_HELP = (
    f"use one of {', '.join(WEIGHT_FORMATS)}; int8/int4 take :gN (a group size, e.g. int4:g64) "
    "and :sym or :asym (no zero point, or one)"
)


def _packed(numel: int, bits: int, groups: int, scale: str | None, zero_bits: int) -> int:
    """Elements packed over the whole tensor, plus each group's scale and packed zero point."""
    data = -(-numel * bits // 8)
    scales = math.ceil(groups * Fraction(DTYPE_BYTES[scale])) if scale else 0
    return data + scales + -(-groups * zero_bits // 8)


@dataclass(frozen=True, slots=True)
class WeightFormat:
    """How a weight is stored. ``granularity``: ``none`` (a plain dtype, no scale),
    ``tensor`` (one scale), ``channel`` (one scale per row of the reduction dimension) or
    ``group`` (``group_size`` elements along that row per scale). ``zero_bits``: 0 when
    symmetric, else the bits of each group's (packed) zero point."""

    name: str
    dtype: str
    bits: int
    granularity: str = "none"
    group_size: int | None = None
    scale_dtype: str | None = None
    zero_bits: int = 0

    def groups(self, numel: int, row: int) -> int:
        """Scale groups of a tensor of ``numel`` elements with rows of ``row`` elements."""
        if self.granularity == "none" or numel == 0:
            return 0
        if self.granularity == "tensor":
            return 1
        row = max(int(row), 1)
        rows = -(-numel // row)
        if self.granularity == "channel":
            return rows
        return rows * -(-row // int(self.group_size or row))

    def nbytes(self, numel: int, row: int) -> int:
        """Exact bytes of a tensor of ``numel`` elements whose reduction dimension (a
        Linear's ``in_features``) has ``row`` elements (see the module's byte rule)."""
        g = self.groups(numel, row)
        return _packed(numel, self.bits, g, self.scale_dtype if g else None, self.zero_bits)

    def describe(self) -> str:
        """One phrase: ``int4, groups of 128 along the input dimension, fp16 scale and int4
        zero point per group``."""
        return _describe(self.name.split(":")[0], self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "dtype": self.dtype, "bits": self.bits,
            "granularity": self.granularity, "group_size": self.group_size,
            "scale_dtype": self.scale_dtype, "zero_bits": self.zero_bits,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class KVFormat:
    """How the KV cache is stored: ``bits`` per element and, when ``scale_dtype`` is set, one
    scale and one zero point of that dtype per head vector (the cache's last dimension)."""

    name: str
    dtype: str
    bits: int
    scale_dtype: str | None = None

    def nbytes(self, numel: int, head_dim: int) -> int:
        """Exact bytes of ``numel`` cache elements in head vectors of ``head_dim``."""
        if self.scale_dtype is None:
            return _packed(numel, self.bits, 0, None, 0)
        vectors = -(-numel // max(int(head_dim), 1))
        # a scale and a zero point, both of scale_dtype, per head vector
        return _packed(numel, self.bits, 2 * vectors, self.scale_dtype, 0)

    def describe(self) -> str:
        if self.scale_dtype is None:
            return f"{self.name} ({self.dtype}, {_per_element(self.bits)})"
        return (f"{self.name} ({_per_element(self.bits)}, asymmetric per token and head: "
                f"{_short(self.scale_dtype)} scale and zero point per head vector)")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "bits": self.bits,
                "scale_dtype": self.scale_dtype}  # fmt: skip


def _short(dtype: str) -> str:
    return {"float16": "fp16", "float32": "fp32", "bfloat16": "bf16"}.get(dtype, dtype)


def _per_element(bits: int) -> str:
    return f"{bits // 8} byte{'s' if bits > 8 else ''} per element" if bits >= 8 else (
        f"{bits} bits per element")  # fmt: skip


def _describe(base: str, f: WeightFormat) -> str:
    if f.granularity == "none":
        return f"{base} ({f.dtype}, no scales)"
    zero = f" and {f.dtype} zero point" if f.zero_bits else ""
    scale = f"{_short(f.scale_dtype or '')} scale{zero}"
    where = {
        "tensor": f"{f.dtype}, one {scale} per tensor",
        "channel": f"per output channel, {scale} per row",
        "group": f"groups of {f.group_size} along the input dimension, {scale} per group",
    }[f.granularity]
    return f"{base} ({where})"


def parse_weight_format(text: str | WeightFormat) -> WeightFormat:
    """The weight format ``text`` names (``int4``, ``int4:g64``, ``int8``, ``fp8``, ``fp16``
    ...); InputError listing the valid ones otherwise."""
    if isinstance(text, WeightFormat):
        return text
    shown = str(text)[:40]
    base, *mods = str(text).strip().lower().split(":")
    if base not in _WEIGHT_BASES:
        raise InputError(f"unknown weight format {shown!r}; {_WEIGHT_HELP}")
    dtype, bits, gran, scale, zero = _WEIGHT_BASES[base]
    group = DEFAULT_GROUP if gran == "group" else None
    for mod in mods:
        if mod in ("sym", "asym") and base.startswith("int"):
            zero = mod == "asym"
        elif mod[:1] == "g" and mod[1:].isdigit() and int(mod[1:]) > 0 and base.startswith("int"):
            gran, group = "group", int(mod[1:])
        else:
            raise InputError(f"unknown weight format {shown!r}; {_WEIGHT_HELP}")
    name = base + (f":g{group}" if gran == "group" else "")
    if zero != _WEIGHT_BASES[base][4]:
        name += ":asym" if zero else ":sym"
    return WeightFormat(name, dtype, bits, gran, group, scale, bits if zero else 0)


def parse_kv_format(text: str | KVFormat) -> KVFormat:
    """The KV-cache format ``text`` names (fp16, bf16, fp8, int8, int4); InputError listing
    them otherwise."""
    if isinstance(text, KVFormat):
        return text
    key = str(text).strip().lower()
    if key not in _KV_BASES:
        raise InputError(
            f"unknown KV-cache format {str(text)[:40]!r}; use one of {', '.join(KV_FORMATS)}"
        )
    return KVFormat(key, *_KV_BASES[key])


@dataclass(frozen=True, slots=True)
class Pricing:
    """The storage formats an analysis prices bytes at: ``weights`` for the weights of matrix
    products (see ``builder``), ``kv`` for KV-cache tensors; None keeps a tensor's dtype."""

    weights: WeightFormat | None = None
    kv: KVFormat | None = None

    @classmethod
    def of(cls, weights: str | WeightFormat | None = None,
           kv: str | KVFormat | None = None) -> Pricing | None:  # fmt: skip
        """The Pricing of what a caller gave (text or formats); None when neither is set."""
        if weights is None and kv is None:
            return None
        return cls(
            None if weights is None else parse_weight_format(weights),
            None if kv is None else parse_kv_format(kv),
        )

    def weight_bytes(self, numel: int, row: int) -> int | None:
        return None if self.weights is None else self.weights.nbytes(numel, row)

    def kv_bytes(self, numel: int, head_dim: int) -> int | None:
        return None if self.kv is None else self.kv.nbytes(numel, head_dim)

    def label(self) -> str:
        """``weights int4:g128, KV cache fp8``: the formats set, in short."""
        parts = [] if self.weights is None else [f"weights {self.weights.name}"]
        return ", ".join(parts + ([] if self.kv is None else [f"KV cache {self.kv.name}"]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": None if self.weights is None else self.weights.to_dict(),
            "kv": None if self.kv is None else self.kv.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Storage:
    """What a report's bytes assumed: the pricing, and the weights stored at its weight
    format (``tensors`` of them, ``params`` elements, ``nbytes`` bytes at the format)."""

    pricing: Pricing
    tensors: int = 0
    params: int = 0
    nbytes: int = 0

    def notes(self) -> list[str]:
        """The lines a report shows: which formats its bytes assume."""
        p, out = self.pricing, []
        if p.weights is not None:
            out.append(
                f"weights stored as {p.weights.describe()}: {self.tensors} matrix-product "
                f"weight(s), {self.params:,} parameters, {self.nbytes:,} bytes; embeddings, "
                "norms, biases and the output head keep their dtype; compute stays in the "
                "activation dtype"
            )
        if p.kv is not None:
            out.append(f"KV cache stored as {p.kv.describe()}")
        return out

    def to_dict(self) -> dict[str, Any]:
        quantized = {"tensors": self.tensors, "params": self.params, "bytes": self.nbytes}
        return {**self.pricing.to_dict(), "quantized": quantized}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Storage:
        """The Storage ``to_dict`` wrote; ValueError when malformed."""
        try:
            w, kv = d.get("weights"), d.get("kv")
            pricing = Pricing(
                None if w is None else parse_weight_format(w["name"]),
                None if kv is None else parse_kv_format(kv["name"]),
            )
        except InputError as e:
            raise ValueError(str(e)) from None
        q = d.get("quantized", {})
        counts = [q.get(k, 0) for k in ("tensors", "params", "bytes")]
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
            raise ValueError("storage counts must be whole numbers >= 0")
        return cls(pricing, *counts)


def per_element(total: int, numel: int) -> Fraction:
    """Exact bytes per element of a tensor stored in ``total`` bytes."""
    return Fraction(total, max(numel, 1))


__all__ = [
    "WEIGHT_FORMATS", "KV_FORMATS", "DEFAULT_GROUP", "WeightFormat", "KVFormat", "Pricing",
    "Storage", "parse_weight_format", "parse_kv_format", "per_element",
]  # fmt: skip
