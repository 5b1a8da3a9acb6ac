"""Charts of a generation (``modelmeter generate --plot FILE``): per-token latency and tokens
per second against batch and against context, the memory limit drawn as a dashed line.
A pure function of :class:`~modelmeter.usecases.generate_sweep.GenerationSweeps`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelmeter.render.plots import new_figure, save_figure

if TYPE_CHECKING:
    from modelmeter.usecases.generate_sweep import GenerationSweeps, SweepPoint

LATENCY, RATE, LIMIT = "#1f77b4", "#ff7f0e", "#d62728"


def _panel(ax: Any, points: tuple[SweepPoint, ...], xlabel: str, rate: str,
           limit: int | None, limit_text: str, log: bool) -> None:  # fmt: skip
    xs = [p.x for p in points]
    ax.plot(xs, [p.per_token_s * 1e3 for p in points], "o-", color=LATENCY, ms=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("per-token latency (ms)", color=LATENCY)
    if log:
        ax.set_xscale("log", base=2)
    twin = ax.twinx()
    twin.plot(xs, [p.tokens_per_s for p in points], "s--", color=RATE, ms=3)
    twin.set_ylabel(rate, color=RATE)
    if limit is not None and limit > 0:
        ax.axvline(limit, color=LIMIT, ls=":", lw=1.5)
        ax.annotate(limit_text, (limit, 0.98), xycoords=("data", "axes fraction"),
                    ha="right", va="top", rotation=90, color=LIMIT, fontsize=7)  # fmt: skip
    ax.grid(True, alpha=0.3)


def save_generation_plot(s: GenerationSweeps, path: str) -> None:
    """Two panels: against batch (the asked prompt and new tokens) and against context (the
    asked batch); write ``path`` (PNG, PDF or SVG by its extension)."""
    g = s.result
    fig = new_figure(11, 4.2)
    left, right = fig.subplots(1, 2)
    _panel(left, s.by_batch, "batch", "tokens/s (whole generation)", s.max_batch,
           f"memory: largest batch {s.max_batch}", log=True)  # fmt: skip
    left.set_title(f"prompt {g.prompt}, {g.new} new tokens", fontsize=9)
    _panel(right, s.by_context, "context (tokens in the cache)", "tokens/s while decoding",
           s.max_context, f"memory: longest context {s.max_context}", log=False)  # fmt: skip
    right.set_title(f"decode step at batch {g.batch}", fontsize=9)
    t = g.timing
    how = f"roofline, {t.figures} figures, {t.runtime} runtime" if t is not None else "roofline"
    tp = g.tensor_parallel
    chip = (t.chip if t else "") + (f" x {tp.tensor} (tensor parallel: per device)"
                                    if tp is not None else "")  # fmt: skip
    fig.suptitle(f"{g.model} on {chip} ({how}; {g.layout} KV cache)", fontsize=10)
    save_figure(fig, path)


__all__ = ["save_generation_plot"]
