"""The tensor-parallel lines of ``modelmeter generate --tp T``'s table: the header's words,
the communication line of the times, tokens/s per device and the split of the weights and
of the KV cache (pure functions of a GenerationResult whose ``tensor_parallel`` is set)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.render._common import rate_text
from modelmeter.units import format_bytes, format_count, format_seconds

if TYPE_CHECKING:
    from modelmeter.analysis.generation_result import GenerationResult
    from modelmeter.analysis.serving_comm import PhaseComm


def header(g: GenerationResult) -> str:
    """The header's words (empty for one device)."""
    p = g.tensor_parallel
    if p is None:
        return ""
    return f" · tensor parallel {p.tensor}: per device memory and times"


def chip_suffix(g: GenerationResult) -> str:
    """After the chip's name in the timing block's title."""
    p = g.tensor_parallel
    return "" if p is None else f" x {p.tensor}, tensor parallel over {p.link_name}"


def timing_lines(g: GenerationResult) -> list[str]:
    """The communication line and tokens/s per device."""
    p, t = g.tensor_parallel, g.timing
    if p is None or t is None or p.prefill.time_s is None or p.decode.time_s is None:
        return []
    pre, dec = p.prefill, p.decode
    return [
        f"  communication        prefill {format_seconds(pre.time_s)} · "
        f"{format_seconds(dec.time_s)} per decode step ({dec.all_reduces} all-reduces of "
        f"{format_bytes(pre.all_reduce_bytes)} / {format_bytes(dec.all_reduce_bytes)} + "
        f"logits gather of {format_bytes(dec.gather_bytes)}; {_algorithms(pre, dec)}, not "
        "overlapped; in the times above)",
        f"  per device           {rate_text(t.tokens_per_s / p.tensor)} tokens/s overall · "
        f"{rate_text(t.decode_tokens_per_s / p.tensor)} while decoding (the replica's / "
        f"{p.tensor})",
    ]


def counts_line(g: GenerationResult) -> list[str]:
    """One device's share of the prefill and of the first decode step (under the phases)."""
    p = g.tensor_parallel
    if p is None or p.prefill_device is None or p.decode_device is None:
        return []
    a, b = p.prefill_device, p.decode_device
    return [f"  one device of {p.tensor}: prefill {format_count(a.macs)} MACs, "
            f"{format_bytes(a.bytes_read)} read · decode step (first) "
            f"{format_count(b.macs)} MACs, {format_bytes(b.bytes_read)} read, "
            f"{format_bytes(b.weight_bytes)} of weights"]


def _algorithms(pre: PhaseComm, dec: PhaseComm) -> str:
    """The all-reduces' algorithm, the prefill's / the decode step's where they differ."""
    if pre.algorithm == dec.algorithm:
        return pre.algorithm
    return f"{pre.algorithm} / {dec.algorithm}"


def memory_title(g: GenerationResult) -> str:
    p = g.tensor_parallel
    return "" if p is None else f" per device (tensor parallel {p.tensor})"


def weights_detail(g: GenerationResult) -> str:
    p = g.tensor_parallel
    if p is None:
        return ""
    w = p.weights
    return (f"  ({format_bytes(w.whole_split)} split 1/{p.tensor} = {format_bytes(w.split)}"
            f" + {format_bytes(w.replicated)} replicated)")


def kv_detail(g: GenerationResult) -> str:
    p = g.tensor_parallel
    if p is None or p.split.kv_heads is None:
        return ""
    s = p.split
    if s.cache_heads == 1:
        return "; a latent cache every head reads: whole on every device"
    if s.kv_replicas > 1:
        return (f"; {s.kv_per_device} of {s.kv_heads} key/value heads per device, each on "
                f"{s.kv_replicas} devices")
    return f"; {s.kv_per_device} of {s.kv_heads} key/value heads per device"


__all__ = ["chip_suffix", "counts_line", "header", "kv_detail", "memory_title", "timing_lines",
           "weights_detail"]
