"""The calibrate use case: attainable matmul and vector FLOP/s per dtype, copy bandwidth,
per-op overhead and kernel-class fractions measured on a device, as a
:class:`~modelmeter.analysis.measure.Calibration` (``modelmeter calibrate`` writes it as a
hardware spec).

The benchmark kernels run on the PyTorch frontend (modelmeter.frontends.torch.benchmarks,
imported when calibrating); what their times mean is worked out here: FLOPs counted by the
analysis (so measured rates are in the units the roofline divides by), roofline times on the
ceilings just measured, medians over rounds, geometric means over dtypes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelmeter.analysis.measure import Calibration
from modelmeter.analysis.roofline import roofline
from modelmeter.analysis.timings import quantile
from modelmeter.errors import InputError
from modelmeter.frontends.base import Progress
from modelmeter.frontends.loop import Steps
from modelmeter.hardware.calibrate_checks import rate_warnings
from modelmeter.hardware.calibrate_fractions import ceiling_spec, conv_memory_fraction, fraction
from modelmeter.hardware.calibrate_launch import measure_launches
from modelmeter.hardware.spec import HardwareSpec
from modelmeter.report import Report
from modelmeter.units import canonical_dtype

if TYPE_CHECKING:
    from modelmeter.frontends.torch.benchmarks import TorchBench

UNSTABLE = 1.5  # calibration rounds whose median exceeds their best by this much: a busy device
Kernels = dict[str, dict[str, tuple[float, float]]]  # dtype -> class -> (compute, memory)


def _analyze(fn: Any, example: Any) -> Report:
    from modelmeter.usecases.analyze import analyze

    return analyze(fn, example)


def calibrate(
    device: str = "cpu",
    dtypes: list[str] | None = None,
    *,
    quick: bool = False,
    progress: Progress | None = None,
    runtime: str = "torch",
    threads: int = 1,
) -> Calibration:
    """Measure attainable matmul and vector FLOP/s per dtype, copy bandwidth and per-op
    overhead on ``device``. ``dtypes``: canonical names or aliases (``tf32`` means float32
    matmuls with TF32 allowed); default float32 on CPU, float32/tf32/bf16/fp16 on CUDA.
    ``runtime="ort"``: onnxruntime's own kernels on the CPU instead, ``threads`` intra-op
    threads (:mod:`modelmeter.hardware.calibrate_ort_kernels`)."""
    if runtime == "ort":
        from modelmeter.hardware.calibrate_ort_kernels import calibrate_ort

        return calibrate_ort(device, dtypes, quick=quick, progress=progress, threads=threads)
    if runtime != "torch":
        raise InputError(f"unknown calibration runtime {runtime!r}: use torch or ort")
    from modelmeter.frontends.torch.benchmarks import TorchBench

    bench = TorchBench(device, quick)
    names = _dtypes(dtypes, bench.type)
    steps = Steps(2 * len(names) + 3, progress)
    details: dict[str, Any] = {}
    with bench.session():
        matmul, vector, bandwidth, sizes = _ceilings(bench, names, steps, details)
        with bench.as_measured():  # as measure runs: cuDNN autotuned, no TF32
            overheads, launch = _overheads(bench, names)
            steps.tick("overhead")
            ceilings = (matmul, vector, bandwidth, overheads)
            dtype_kernels = _kernel_efficiencies(bench, names, ceilings, details)
            kernels, kernels_memory = _over_dtypes(dtype_kernels)
            launches = measure_launches(bench, _launch_dtype(names),
                                        ceiling_spec(matmul, vector, bandwidth), _analyze,
                                        details)
        steps.tick("kernel classes")
    details["copy"] = f"{bench.copy_bytes >> 20} MiB"
    if bench.threads is not None:
        details["threads"] = bench.threads
    cal = Calibration(
        device=bench.device,
        device_name=bench.device_name,
        torch_version=bench.runtime,
        vendor=bench.vendor,
        kind={"cuda": "gpu", "mps": "soc"}.get(bench.type, "cpu"),
        matmul=matmul,
        vector=vector,
        bandwidth=bandwidth,
        kernel_overhead=next(iter(overheads.values())),
        launch_overhead=launch,
        launch_classes=launches,
        kernels=kernels,
        kernels_memory=kernels_memory,
        overheads=overheads,
        dtype_kernels=dtype_kernels,
        capacity=bench.capacity,
        details=details,
        warnings=_unstable(bench.rounds) + rate_warnings(matmul, vector, bandwidth, sizes),
    )
    cal = _with_ort(cal, bench.type)
    return _with_host(cal, bench.type) if bench.type == "cpu" else cal


def _with_ort(cal: Calibration, device: str) -> Calibration:
    """``cal`` with onnxruntime's per-node cost as ``[overhead.runtimes] ort`` (CPU, with
    onnxruntime: :mod:`modelmeter.hardware.calibrate_ort`; else the details say why not)."""
    from dataclasses import replace

    from modelmeter.hardware.calibrate_ort import measure_ort

    details = dict(cal.details)
    per_node = measure_ort(device, details)
    runtimes = {} if per_node is None else {"ort": per_node}
    return replace(cal, runtime_overhead=runtimes, details=details)


def _with_host(cal: Calibration, device: str) -> Calibration:
    """``cal`` with the eager host time (per module call, per generation step)
    fitted from tiny Llamas generating on the device (:mod:`modelmeter.hardware.
    calibrate_host`; left out without transformers)."""
    from dataclasses import replace

    from modelmeter.hardware.calibrate_host import measure_host

    fit = measure_host(cal.to_spec("calibrating"), device)
    if fit is None:
        return cal
    details = {**cal.details, "host": fit.note()}
    return replace(cal, module_call=fit.module_s, step_overhead=fit.step_s, details=details,
                   warnings=[*cal.warnings, *fit.warnings])


def _dtypes(dtypes: list[str] | None, device_type: str) -> list[str]:
    """The canonical dtypes to calibrate, each once; InputError for one that cannot be."""
    if dtypes is None:
        cpu = device_type == "cpu"
        dtypes = ["float32"] if cpu else ["float32", "tfloat32", "bfloat16", "float16"]
    names: list[str] = []
    for d in dtypes:
        try:
            c = canonical_dtype(d)
        except ValueError as e:
            raise InputError(str(e)) from None
        if not c.startswith(("float", "bfloat", "tfloat")) or c.startswith("float8"):
            raise InputError(f"cannot calibrate {d!r}: use float32, tf32, bf16, fp16 or fp64")
        if c == "tfloat32" and device_type != "cuda":
            raise InputError("tf32 is a CUDA setting: calibrate it with --device cuda")
        if c not in names:
            names.append(c)
    return names


def _ceilings(
    bench: TorchBench, names: list[str], steps: Steps, details: dict[str, Any]
) -> tuple[dict[str, float], dict[str, float], float, dict[str, int]]:
    """Best matmul and vector FLOP/s per dtype, copy bytes per second, and the size n of
    each dtype's best square matmul."""
    matmul: dict[str, float] = {}
    sizes: dict[str, int] = {}
    vector: dict[str, float] = {}
    for name in names:
        matmul[name], size = bench.matmul(name)
        sizes[name] = size
        details[f"matmul {name}"] = f"n={size}"
        steps.tick(f"matmul {name}")
    for name in names:
        if name != "tfloat32":
            vector[name] = max(
                _flops(fn, example) / bench.best(f"vector {name}", run)
                for fn, example, run in bench.vector_cases(name)
            )
        steps.tick(f"vector {name}")
    bandwidth = bench.copy()
    steps.tick("copy")
    return matmul, vector, bandwidth, sizes


def _flops(fn: Callable[..., Any], example: Any) -> int:
    """FLOPs the analysis counts for ``fn(*example)`` (traced on meta)."""
    return _analyze(fn, example).total().cost.flops


def _overheads(bench: TorchBench, names: list[str]) -> tuple[dict[str, float], float]:
    """({dtype: seconds per counted op of a tiny conv/BN/ReLU model in that dtype}, seconds
    per tiny add).

    The first is what the roofline charges per op record: the model's median forward time
    over the number of op records its analysis holds (their compute and memory time is
    negligible at these sizes). It differs per dtype where libraries do more on the host for
    one (cuDNN's bfloat16 convolutions launch layout conversions). Both are medians over
    rounds of back-to-back calls. TF32 is a float32 setting, not an op dtype: skipped.
    """
    tiny = bench.tiny_model()
    report = _analyze(*tiny)
    n_ops = max(1, sum(len(node.ops) for node in report.modules()))
    dtypes = [d for d in names if d != "tfloat32"] or ["float32"]
    adds, per_forward = bench.overhead_times(tiny, dtypes)
    out = {name: quantile(times, 0.5) / n_ops for name, times in per_forward.items()}
    return out, quantile(adds, 0.5)


def _launch_dtype(names: list[str]) -> str:
    """The dtype the launch times are measured in: bfloat16 where calibrated (what models
    are served in), else the first op dtype."""
    ops = [d for d in names if d != "tfloat32"] or ["float32"]
    return "bfloat16" if "bfloat16" in ops else ops[0]


def _kernel_efficiencies(
    bench: TorchBench,
    names: list[str],
    ceilings: tuple[dict[str, float], dict[str, float], float, dict[str, float]],
    details: dict[str, Any],
) -> Kernels:
    """Per kernel class, the fraction of its roofline time the device attains; for ``conv``
    also the memory side apart (a second, memory-heavy convolution).

    Each benchmark op is analysed (on meta, the analysis' own formulas) and its roofline busy
    time, max(compute, memory), computed on the ceilings just measured; the fraction is that
    over the measured time (less the per-op overhead where launches do not overlap
    execution), kept within [0.01, 1]. Measured in every calibrated dtype (TF32 aside):
    returns each dtype's figures (class -> (compute, memory)); the details get each figure.
    """
    matmul, vector, bandwidth, overheads = ceilings
    spec = ceiling_spec(matmul, vector, bandwidth)
    own: Kernels = {}
    for name in (d for d in names if d != "tfloat32"):
        overhead = 0.0 if bench.overlap else overheads[name]
        mine = own.setdefault(name, {})
        for cls, (fn, example, run) in bench.kernel_cases(name):
            busy = roofline(_analyze(fn, example), spec).latency_s
            measured = bench.best(f"{cls} {name}", run)
            frac = fraction(busy, measured - overhead)
            mine[cls] = (frac, frac)
            details[f"{cls} {name}"] = f"{frac:.3g}"
        # the memory side of convolutions: with the compute side just measured, what is
        # left of a memory-heavy 1x1 convolution's time is memory
        fn, example, run = bench.conv_memory_case(name)
        (t,) = roofline(_analyze(fn, example), spec).ops
        kc = mine["conv"][0]
        km = conv_memory_fraction(t, kc, bench.best(f"conv memory {name}", run) - overhead)
        mine["conv"] = (kc, km)
        details[f"conv memory {name}"] = f"{km:.3g}"
        if bench.type == "cpu":  # a GPU's 4 MB products are launch-bound: not measured there
            mine["matmul"] = (1.0, _matvec(bench, name, spec, overhead))
            details[f"matvec {name}"] = f"{mine['matmul'][1]:.3g}"
    details["kernel classes"] = bench.kernel_shapes()
    return own


def _matvec(bench: TorchBench, name: str, spec: HardwareSpec, overhead: float) -> float:
    """The memory side of matrix products: a matrix-vector product's roofline memory time
    over its measured time, 32 distinct matrices read in turn (a decode step's linear layers
    read their weights at this share of the copy bandwidth; the compute side is the measured
    matmul peak itself, 1.0)."""
    fn, example, run = bench.matvec_case(name)
    (t,) = roofline(_analyze(fn, example), spec).ops
    return fraction(t.memory_s, bench.best(f"matvec {name}", run) / 32 - overhead)  # 32 a run


def _over_dtypes(own: Kernels) -> tuple[dict[str, float], dict[str, float]]:
    """The general ``[efficiency.kernels]``: per class, the geometric mean over the dtypes of
    the compute side, and of the memory side where it differs (conv)."""
    sides: dict[str, list[tuple[float, float]]] = {}
    for table in own.values():
        for cls, pair in table.items():
            sides.setdefault(cls, []).append(pair)
    compute = {cls: _geomean([c for c, _ in p]) for cls, p in sides.items()}
    memory = {
        cls: _geomean([m for _, m in p]) for cls, p in sides.items() if any(c != m for c, m in p)
    }
    return compute, memory


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _unstable(rounds: dict[str, list[list[float]]]) -> list[str]:
    """A warning for each figure whose rounds' median exceeded their best by UNSTABLE."""
    out = []
    for label, series in rounds.items():
        spread = max((quantile(r, 0.5) / min(r) for r in series if min(r) > 0), default=0.0)
        if spread > UNSTABLE:
            out.append(f"{label} varied {spread:.1f}x between rounds")
    return out


__all__ = ["UNSTABLE", "calibrate"]
