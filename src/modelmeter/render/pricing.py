"""How a roofline was priced, in one line: which figures (attainable, datasheet, ideal), where
they came from, and the runtime; and a spec's attainable figures beside its datasheet ones
(``hardware show``). Pure functions of a Roofline or a spec."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelmeter.hardware.estimate import own_matrix_peak
from modelmeter.units import format_peak, format_rate

if TYPE_CHECKING:
    from modelmeter.analysis.roofline import Roofline
    from modelmeter.hardware.spec import HardwareSpec

RUNTIME_WORDS = {
    "eager": "eager (the host issues every op)",
    "graphs": "graphs (CUDA graphs / torch.compile: no per-op host time)",
    "ort": "ort (onnxruntime's per-op time)",
}


def figures_line(roof: Roofline) -> str:
    """E.g. 'attainable (measured: ...) · runtime eager (the host issues every op)'."""
    if roof.figures == "attainable":
        what = roof.figures_source  # already says "attainable (basis: source)"
    elif roof.figures == "ideal":
        what = "ideal: " + roof.figures_source
    else:
        what = "as the spec gives them (no [attainable] section)"
    words = RUNTIME_WORDS.get(roof.runtime, roof.runtime)
    if roof.runtime == "graphs" and not roof.spec.launches_overlap:
        words = "graphs (a compiled runtime: no per-op host time)"
    return f"{what} · runtime {words}"




def _us(seconds: float) -> str:
    return f"{seconds * 1e6:g} us"


def _kernels(header: str, table: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for cls, v in table.items():
        text = (f"compute {v['compute']:.3g} · memory {v['memory']:.3g}" if isinstance(v, dict)
                else f"{v:.3g}")
        out.append((f"{header}.{cls}", text + " of the roofline"))
    return out


def attainable_lines(spec: HardwareSpec) -> list[tuple[str, str]]:
    """``hardware show``'s lines for ``[overhead] launch``/``runtimes`` and the
    ``[attainable]`` section, each figure beside the datasheet's."""
    lines = [("overhead.launch", _us(spec.launch_overhead) + " per kernel")] \
        if spec.launch_overhead is not None else []
    lines += _launch_classes("", spec)
    lines += [(f"overhead.runtimes.{r}", _us(v) + " per op")
              for r, v in spec.runtime_overhead.items()]
    lines += _depthwise_calls("", spec)
    a = spec.attainable
    if a is None:
        return lines
    lines += [("attainable.basis", a.basis), ("attainable.source", a.source or "-")]
    if a.uncertainty:
        lines.append(("attainable.uncertainty", a.uncertainty))
    if a.bandwidth is not None:
        lines.append(("attainable.memory.bandwidth", f"{format_rate(a.bandwidth, 'B/s')} "
                      f"({a.bandwidth / spec.bandwidth:.2f} of the datasheet)"))
    for table, peaks in (("compute", a.compute), ("vector", a.vector)):
        for dt, v in peaks.items():
            sheet = own_matrix_peak(spec, dt) if table == "compute" else spec.vector.get(dt)
            ratio = f" ({v / sheet:.2f} of the datasheet)" if sheet else ""
            lines.append((f"attainable.{table}.{dt}", format_peak(v, dt) + ratio))
    if a.kernel_overhead is not None:
        lines.append(("attainable.overhead.kernel", _us(a.kernel_overhead) + " per op (eager)"))
    if a.launch_overhead is not None:
        lines.append(("attainable.overhead.launch", _us(a.launch_overhead) + " per kernel"))
    lines += _launch_classes("attainable.", a)
    lines += [(f"attainable.overhead.dtypes.{d}", _us(v) + f" per {d} op")
              for d, v in a.dtype_overhead.items()]
    lines += [(f"attainable.overhead.runtimes.{r}", _us(v) + " per op")
              for r, v in a.runtime_overhead.items()]
    lines += _kernels("attainable.efficiency.kernels", a.kernels_table())
    for d in a.dtype_kernels:
        lines += _kernels(f"attainable.efficiency.dtypes.{d}", a.dtype_kernels_table(d))
    return lines + _depthwise_calls("attainable.", a)


def _launch_classes(prefix: str, figures: Any) -> list[tuple[str, str]]:
    return [(f"{prefix}overhead.launch_classes.{c}", _us(v) + f" per {c} op on the device")
            for c, v in figures.launch_classes.items()]


def _depthwise_calls(prefix: str, figures: Any) -> list[tuple[str, str]]:
    """The per-module-call and per-generation-step host times and the depthwise kernel-size
    exponents, where given."""
    lines = [] if figures.module_call is None else [
        (f"{prefix}overhead.module_call", _us(figures.module_call) + " per module call (eager)")]
    step = getattr(figures, "step_overhead", None)  # generation only, never in [attainable]
    if step is not None:
        lines.append((f"{prefix}overhead.step", _us(step) + " per generation step (eager)"))
    return lines + [
        (f"{prefix}efficiency.depthwise_taps.{d}",
         f"{a:g}: a depthwise kernel of T taps at its class's compute fraction x (T/9)^{a:g}")
        for d, a in figures.depthwise_taps.items()]


__all__ = ["attainable_lines", "figures_line"]
