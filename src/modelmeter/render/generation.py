"""A generation analysis (``modelmeter generate``) as text a person reads at a glance, or
JSON (``modelmeter.generation/2``): pure functions of a GenerationResult.

The table has three blocks: the phases (prefill, one decode step first/mean/last, all
decode steps, the total = prefill + decode: the rows add up), the times on a chip, and the
memory against the chip's capacity (weights + KV cache + activations = total)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.render import generation_tp as tp
from modelmeter.render._common import rate_text
from modelmeter.render.formats import GENERATION_FORMATS, unknown_format
from modelmeter.render.generation_fusion import fusion_lines
from modelmeter.render.jsonfmt import dumps
from modelmeter.units import format_bytes, format_count, format_seconds

if TYPE_CHECKING:
    from modelmeter.analysis.generation import StepCounts
    from modelmeter.analysis.generation_memory import GenerationMemory
    from modelmeter.analysis.generation_result import GenerationResult

_COLUMNS = ("MACs", "FLOPs", "read", "written", "weights read", "KV read", "KV written")


def _cells(c: StepCounts | dict[str, float]) -> list[str]:
    get = c.get if isinstance(c, dict) else lambda k: getattr(c, k)
    return [
        format_count(get("macs")),
        format_count(get("flops")),
        format_bytes(get("bytes_read")),
        format_bytes(get("bytes_written")),
        format_bytes(get("weight_bytes")),
        format_bytes(get("kv_bytes_read")),
        format_bytes(get("kv_bytes_written")),
    ]


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        first = f"{r[0]:<{widths[0]}}"
        rest = "  ".join(f"{v:>{w}}" for v, w in zip(r[1:], widths[1:]))
        return f"{first}  {rest}".rstrip()

    return [line(header), *(line(r) for r in rows)]


def phase_rows(g: GenerationResult) -> list[list[str]]:
    """The phase block's rows (label, then one cell per count)."""
    hi = g.prompt + g.new - 1
    mean = {k: g.mean(k) for k in g.first.to_dict()}
    return [
        [f"prefill ({g.prompt} tokens)", *_cells(g.prefill_counts)],
        [f"decode step, first (context {g.prompt})", *_cells(g.first)],
        ["decode step, mean", *_cells(mean)],
        [f"decode step, last (context {hi})", *_cells(g.last)],
        [f"decode, {g.new} steps", *_cells(g.decode_total)],
        ["total", *_cells(g.total)],
    ]


def _timing_lines(g: GenerationResult) -> list[str]:
    t = g.timing
    if t is None:
        return []
    how = ("every context" if t.every_context
           else f"exact sum, roofline at {len(t.evaluated)} contexts")
    return [
        "",
        f"on {t.chip}{tp.chip_suffix(g)} (roofline, {t.figures} figures, {t.runtime} runtime)",
        f"  time to first token  {format_seconds(t.ttft_s)}  ({t.prefill_bound}-bound)",
        f"  per token            first {format_seconds(t.decode_first_s)} "
        f"({t.decode_first_bound}-bound) · mean {format_seconds(t.decode_mean_s)} · last "
        f"{format_seconds(t.decode_last_s)} ({t.decode_last_bound}-bound)",
        f"  decode               {format_seconds(t.decode_total_s)} for {g.new} steps "
        f"({how})",
        f"  end to end           {format_seconds(t.end_to_end_s)}",
        f"  tokens/s             {rate_text(t.tokens_per_s)} overall · "
        f"{rate_text(t.decode_tokens_per_s)} while decoding (batch {g.batch})",
        *tp.timing_lines(g),
        *(f"  note: {n}" for n in t.notes),
    ]


def _memory_lines(g: GenerationResult) -> list[str]:
    m = g.memory
    acts = m.batch * m.activations_per_sequence
    out = [
        "",
        f"memory{tp.memory_title(g)} at {m.tokens} tokens x batch {m.batch}",
        f"  weights              {format_bytes(m.weight_bytes)}{tp.weights_detail(g)}",
        f"  KV cache             {format_bytes(m.kv_total_bytes)} = {m.batch} x "
        f"{format_bytes(m.kv_sequence_bytes)} per sequence "
        f"({format_bytes(m.kv_per_token)} per token"
        + (f"; sliding windows {', '.join(map(str, g.windows))}" if g.windows else "")
        + tp.kv_detail(g) + ")" + _allocation(g),
        f"  activations (peak)   {format_bytes(acts)}",
        f"  total                {format_bytes(m.total_bytes)}",
    ]
    if m.capacity is not None:
        verdict = "fits" if m.fits else "does NOT fit"
        out += [
            f"  capacity             {format_bytes(m.capacity)} on {m.chip}: {verdict}",
            f"  largest batch        {m.max_batch} at {m.tokens} tokens",
            f"  longest context      {m.max_context} tokens at batch {m.batch}",
        ]
    return out


def _slots(m: GenerationMemory) -> str:
    """The padding in slots per sequence (in tokens' worth of every layer where window
    layers keep fewer blocks than full ones)."""
    if not m.paged_layers or not any(cap for _, cap in m.layers):
        return f"{m.allocated(m.tokens) - m.tokens} slots per sequence"
    n = m.kv_padding_bytes / m.kv_per_token
    return f"{n:g} " + ("token's" if n == 1 else "tokens'") + " worth per sequence"


def _peak(m: GenerationMemory) -> str:
    """A paged window layer's blocks went down on the way: the most the cache took."""
    peak = m.kv_peak(m.tokens)
    if peak == m.kv_sequence_bytes:
        return ""
    return f"; up to {format_bytes(peak)} per sequence earlier in the generation"


def _allocation(g: GenerationResult) -> str:
    """How the cache's memory is allocated, when not token by token: a paged cache's blocks
    (their padding), a preallocated cache's length."""
    m = g.memory
    pad = m.kv_padding_bytes
    if m.block > 1:
        if not pad:
            return f"; blocks of {m.block} tokens, no padding"
        return (f"; blocks of {m.block} tokens: {format_bytes(m.batch * pad)} of it padding "
                f"({_slots(m)}){_peak(m)}")
    if m.reserved:
        return f"; preallocated to {m.reserved} tokens" + (
            f": {format_bytes(m.batch * pad)} of it unused" if pad else "")
    return ""


def generation_table(g: GenerationResult) -> str:
    lines = [
        f"{g.model} · generate: batch {g.batch}, prompt {g.prompt}, {g.new} new tokens · "
        f"{g.layout} KV cache · {g.convention} FLOPs" + (f" · {g.storage}" if g.storage else "")
        + tp.header(g),
        "",
        *_grid(["phase (whole batch)", *_COLUMNS], phase_rows(g)),
    ]
    macs = g.curve.counts["macs"]
    lines.append(
        "  decode MACs at context c: "
        + "; ".join(
            f"{p.format('c')} from c={s}" if len(macs.starts) > 1 else p.format("c")
            for s, p in zip(macs.starts, macs.pieces)
        )
    )
    lines += tp.counts_line(g) + _timing_lines(g) + fusion_lines(g) + _memory_lines(g)
    lines += [f"note: {n}" for n in g.notes]
    return "\n".join(lines) + "\n"


def render_generation(g: GenerationResult, fmt: str = "table") -> str:
    """The result in one of ``GENERATION_FORMATS``."""
    if fmt == "json":
        return dumps(g.to_dict())
    if fmt != "table":
        raise unknown_format(fmt, GENERATION_FORMATS)
    return generation_table(g)


__all__ = ["render_generation", "generation_table", "phase_rows"]
