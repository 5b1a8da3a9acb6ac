"""What ``modelmeter calibrate`` measured, one figure a line (a pure function of a
Calibration)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.units import format_rate

if TYPE_CHECKING:
    from modelmeter.analysis.measure import Calibration


def _efficiency_lines(cal: Calibration) -> list[str]:
    tables = {"": (cal.kernels, cal.kernels_memory)}
    if len(cal.dtype_kernels) > 1:
        tables = {
            d: ({k: c for k, (c, _) in t.items()}, {k: m for k, (_, m) in t.items()})
            for d, t in cal.dtype_kernels.items()
        }
    lines = []
    for dtype, (compute, memory) in tables.items():
        for cls, v in compute.items():
            label = f"{cls} {dtype}".strip()
            if cls in memory and memory[cls] != v:
                lines.append(
                    f"  efficiency {label:<18} {v:.2f} of its compute roofline, "
                    f"{memory[cls]:.2f} of its memory roofline"
                )
            else:
                lines.append(f"  efficiency {label:<18} {v:.2f} of its roofline")
    return lines


def render_calibration(cal: Calibration, path: str) -> str:
    """The calibration written to ``path`` as text: peaks, bandwidth, overheads, efficiencies."""
    lines = [f"calibrated {cal.device} ({cal.device_name}), {cal.torch_version} -> {path}"]
    for dtype, v in cal.matmul.items():
        lines.append(f"  matmul  {dtype:<10} {format_rate(v)}")
    for dtype, v in cal.vector.items():
        lines.append(f"  vector  {dtype:<10} {format_rate(v)}")
    lines.append(f"  copy bandwidth     {format_rate(cal.bandwidth, 'B/s')}")
    ort = cal.torch_version.startswith("onnxruntime")  # calibrate --runtime ort
    overheads = cal.overheads or {"": cal.kernel_overhead}
    for dtype, v in overheads.items():
        per = "node (onnxruntime)" if ort else "op"
        lines.append(f"  overhead per {per} {dtype:<10} {v * 1e6:.2f} us".rstrip())
    if not ort:  # an ort calibration's tiny add is its per-node figure again
        lines.append(f"  one tiny add       {cal.launch_overhead * 1e6:.2f} us")
    for cls, v in cal.launch_classes.items():
        lines.append(f"  launch {cls:<11} {v * 1e6:.2f} us per op on the device (CUDA graph)")
    if cal.module_call is not None and cal.step_overhead is not None:
        lines.append(f"  eager host         {cal.module_call * 1e6:.2f} us per module call, "
                     f"{cal.step_overhead * 1e6:.2f} us per generation step")  # fmt: skip
    if "ort" in cal.runtime_overhead:
        lines.append(f"  onnxruntime        {cal.runtime_overhead['ort'] * 1e6:.3f} us per node")
    return "\n".join(lines + _efficiency_lines(cal)) + "\n"
