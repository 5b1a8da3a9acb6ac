"""The eager host time beyond the per-op figure, per ``nn.Module`` call (``[overhead]
module_call``, charged by the roofline: :mod:`modelmeter.analysis.module_calls`) and per step
of a generation loop (``[overhead] step``, :mod:`modelmeter.analysis.generation_host`), from
tiny Llamas generating on the device (:mod:`modelmeter.frontends.torch.generate_bench`).

A tiny Llama's decode step, measured, less modelmeter's prediction of it on the chip's
figures without these two (its ops' issue times and their negligible kernel times), is the
host time the roofline does not see: ``residual(L) = calls(L) x module + step`` for L
decoder layers, ``calls`` the decode step's ``nn.Module`` calls as the roofline charges them
(:func:`~modelmeter.analysis.module_calls.calls_before`; it runs in series on a CPU). Two
depths give the two figures::

    module = (residual(4) - residual(1)) / (calls(4) - calls(1))
    step   = residual(1) - calls(1) x module

each clamped at 0. The prefill's residual is not fitted: it is a check (the note says how
far the fitted figures put it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmeter.hardware.calibrate_checks import host_warnings


@dataclass(frozen=True)
class HostFit:
    """The fitted figures and what they came from: per depth (layers, module calls, measured
    step, predicted step without them)."""

    module_s: float
    step_s: float
    points: tuple[tuple[int, int, float, float], ...]
    warnings: tuple[str, ...] = ()  # a figure clamped to 0 (calibrate_checks.host_warnings)

    def note(self) -> str:
        parts = ", ".join(
            f"{layers} layer(s): {calls} module calls, step {m * 1e6:.0f}us measured against "
            f"{p * 1e6:.0f}us predicted per op"
            for layers, calls, m, p in self.points
        )
        return (f"[overhead] module_call and step: a tiny Llama's decode step measured less "
                f"predicted, fitted over module calls ({parts})")  # fmt: skip


def fit_host(points: list[tuple[int, int, float, float]]) -> HostFit:
    """The two figures from (layers, module calls, measured step, predicted step) at two
    depths (see the module docstring)."""
    (_, c1, m1, p1), (_, c2, m2, p2) = points[0], points[-1]
    r1, r2 = m1 - p1, m2 - p2
    module = (r2 - r1) / (c2 - c1) if c2 != c1 else 0.0
    step = r1 - c1 * max(0.0, module)
    warnings = tuple(host_warnings(module, step))
    return HostFit(max(0.0, module), max(0.0, step), tuple(points), warnings)


def measure_host(spec: Any, device: str = "cpu", rounds: int = 5) -> HostFit | None:
    """Time the tiny Llamas on ``device`` and fit the figures against ``spec`` (a chip file's
    figures without them); None without transformers."""
    from modelmeter.analysis.module_calls import calls_before
    from modelmeter.frontends.torch.generate_bench import NEW, PROMPT, tiny_generations
    from modelmeter.usecases.generate import generate

    runs = tiny_generations(device, rounds)
    if len(runs) < 2:
        return None
    points = []
    for run in runs:
        g = generate(run.model, prompt=PROMPT, new=NEW, hardware=spec, cache="dynamic")
        assert g.timing is not None
        calls = sum(calls_before(g.decode))
        points.append((run.layers, calls, run.step_s, g.timing.decode_mean_s))
    return fit_host(points)


__all__ = ["HostFit", "fit_host", "measure_host"]
