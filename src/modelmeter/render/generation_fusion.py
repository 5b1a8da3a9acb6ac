"""The fusion block of ``modelmeter generate --fuse``'s table: kernels, bytes and times
unfused -> fused (a pure function of a GenerationResult whose ``fusion`` is set)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.render._common import rate_text
from modelmeter.units import format_bytes, format_seconds

if TYPE_CHECKING:
    from modelmeter.analysis.generation_result import GenerationResult


def _pair(a: float, b: float, fmt: str = "s") -> str:
    if fmt == "s":
        return f"{format_seconds(a)} -> {format_seconds(b)}"
    if fmt == "b":
        return f"{format_bytes(a)} -> {format_bytes(b)}"
    return f"{a:,} -> {b:,}"


def fusion_lines(g: GenerationResult) -> list[str]:
    """The block (empty without ``fusion``)."""
    f = g.fusion
    if f is None:
        return []
    rules = ", ".join(f.rules) or "none"
    where = " per device" if g.tensor_parallel is not None else ""
    out = [
        "",
        f"fusion what-if (rules: {rules}): unfused -> fused, as a compiling runtime would "
        f"run it{where}",
        f"  kernels              prefill {_pair(f.prefill_kernels, f.prefill_kernels_fused, 'n')}"
        f" · decode step {_pair(f.decode_kernels, f.decode_kernels_fused, 'n')}",
        f"  bytes moved          prefill {_pair(f.prefill_bytes, f.prefill_bytes_fused, 'b')}"
        f" · decode step (first) {_pair(f.decode_bytes, f.decode_bytes_fused, 'b')}",
    ]
    t, u = f.timing, g.timing
    if t is not None and u is not None:
        out += [
            f"  time to first token  {_pair(u.ttft_s, t.ttft_s)}  ({t.prefill_bound}-bound fused)",
            f"  per token            first {_pair(u.decode_first_s, t.decode_first_s)} "
            f"({t.decode_first_bound}-bound fused) · mean "
            f"{_pair(u.decode_mean_s, t.decode_mean_s)} · last "
            f"{_pair(u.decode_last_s, t.decode_last_s)} ({t.decode_last_bound}-bound fused)",
            f"  end to end           {_pair(u.end_to_end_s, t.end_to_end_s)}",
            f"  tokens/s             {rate_text(u.tokens_per_s)} -> {rate_text(t.tokens_per_s)} "
            f"overall · {rate_text(u.decode_tokens_per_s)} -> "
            f"{rate_text(t.decode_tokens_per_s)} while decoding",
        ]
    return out + [f"  note: {n}" for n in f.notes]


__all__ = ["fusion_lines"]
