"""``modelmeter calibrate --runtime ort``: the CPU's attainable figures as onnxruntime's own
kernels (MLAS) attain them, for predictions with ``--runtime ort``. Same spec schema as the
PyTorch calibration (:mod:`modelmeter.hardware.calibrate`); what differs:

- ``[compute]``: the best FLOP/s of one square ``MatMul`` node over the plan's sizes;
- ``[vector]``: the better of an ``Add`` and a tanh-``Gelu`` node (9 FLOPs an element) on a
  cache-resident vector (the PyTorch CPU benchmark's ops and size), per node = the
  difference of a chain of VECTOR_CHAIN nodes and one;
- ``[memory]``: PyTorch's large copy (the machine's bandwidth, not a kernel's);
- ``[efficiency.kernels]``: per class, one node's roofline busy time (the ONNX frontend's
  analysis of it, on the ceilings just measured) over the node's measured time: the
  difference of a chain of CHAIN nodes and one, over CHAIN - 1, less the per-node cost (so
  the per-run cost and the layout reorders onnxruntime adds at the chain's ends cancel);
  ``conv``'s memory side from a 1x1 convolution with few channels, as the PyTorch one;
- ``[overhead]`` kernel and ``[overhead.runtimes] ort``: onnxruntime's per-node cost
  (:mod:`modelmeter.hardware.calibrate_ort`); PyTorch's eager overheads are not measured.

Sessions run at onnxruntime's default optimisation level, as ``measure`` runs an ONNX file,
with ``threads`` intra-op threads (1 unless told otherwise). float32 only.
"""

from __future__ import annotations

from typing import Any

from modelmeter.analysis.measure import Calibration
from modelmeter.analysis.roofline import roofline
from modelmeter.errors import InputError
from modelmeter.frontends.base import Progress
from modelmeter.frontends.loop import Steps
from modelmeter.hardware.calibrate_checks import rate_warnings
from modelmeter.hardware.calibrate_fractions import ceiling_spec, conv_memory_fraction, fraction
from modelmeter.hardware.spec import HardwareSpec

CHAIN, VECTOR_CHAIN = 3, 9
CLASSES = ("conv", "depthwise", "pool", "norm")


def ort_or_refuse(device: str, dtypes: list[str] | None) -> Any:
    """The onnxruntime module, or InputError (one line) where ``--runtime ort`` cannot be
    calibrated: a device other than the CPU, a dtype other than float32, no onnxruntime."""
    if device != "cpu":
        raise InputError(f"calibrate --runtime ort measures onnxruntime's CPU kernels: use "
                         f"--device cpu, not {device}")
    from modelmeter.units import canonical_dtype

    for d in dtypes or []:
        try:
            ok = canonical_dtype(d) == "float32"
        except ValueError:
            ok = False
        if not ok:
            raise InputError(f"calibrate --runtime ort measures float32 only, not {d!r}")
    try:
        import onnx  # noqa: F401 - the benchmark nodes are built with its helper API
        import onnxruntime
    except ImportError:
        raise InputError("calibrate --runtime ort needs onnxruntime and onnx: "
                         "pip install onnxruntime onnx") from None
    return onnxruntime


def _analyze(model: Any) -> Any:
    from modelmeter.usecases.analyze import analyze

    return analyze(model)


def calibrate_ort(device: str = "cpu", dtypes: list[str] | None = None, *, quick: bool = False,
                  progress: Progress | None = None, threads: int = 1) -> Calibration:
    """The CPU's figures as onnxruntime attains them (module docstring); InputError where
    they cannot be measured (:func:`ort_or_refuse`)."""
    ort = ort_or_refuse(device, dtypes)
    from modelmeter.frontends.torch.benchmarks import TorchBench
    from modelmeter.hardware.calibrate_ort import measure_ort

    bench = TorchBench("cpu", quick)
    plan = bench.plan
    steps = Steps(5, progress)
    details: dict[str, Any] = {}

    def timed(model: Any) -> float:
        from modelmeter.frontends.onnx.ort_kernels import best

        return best(ort, model, threads, plan.rounds, plan.budget_s)

    matmul, size = _matmul(timed, plan.matmul_sizes)
    details["matmul float32"] = f"MatMul node, n={size}"
    steps.tick("matmul float32")
    vector = _vector(timed, plan.vector_numel)
    details["vector float32"] = f"Add and tanh-Gelu nodes on {plan.vector_numel} elements"
    steps.tick("vector float32")
    with bench.session():
        bandwidth = bench.copy()
    details["copy"] = f"PyTorch copy of {bench.copy_bytes >> 20} MiB"
    steps.tick("copy")
    per_node = measure_ort("cpu", details)
    steps.tick("overhead")
    node_s = per_node or 0.0
    spec = ceiling_spec({"float32": matmul}, {"float32": vector}, bandwidth)
    kernels, memory = _classes(timed, spec, plan.kernel_shape, node_s, details)
    steps.tick("kernel classes")
    details["threads"] = f"{threads} intra-op (onnxruntime), ORT_ENABLE_ALL"
    return Calibration(
        device="cpu", device_name=bench.device_name,
        torch_version=f"onnxruntime {ort.__version__}", vendor=bench.vendor, kind="cpu",
        matmul={"float32": matmul}, vector={"float32": vector}, bandwidth=bandwidth,
        kernel_overhead=node_s, launch_overhead=node_s, kernels=kernels,
        kernels_memory=memory, capacity=bench.capacity, details=details,
        runtime_overhead={} if per_node is None else {"ort": per_node},
        warnings=rate_warnings({"float32": matmul}, {"float32": vector}, bandwidth,
                               {"float32": size}),
        notes=NOTES.format(threads=threads),
    )  # fmt: skip


NOTES = ("attainable figures of onnxruntime's own CPU kernels ({threads} intra-op thread(s), "
         "default optimisation level, float32), for --runtime ort: [compute] best square "
         "MatMul node, [vector] better of an Add and a tanh-Gelu node (cache-resident), [memory] PyTorch's large copy "
         "(read + written), [overhead] kernel and [overhead.runtimes] ort: onnxruntime's "
         "time per node of a chain of tiny nodes, [efficiency.kernels] roofline time / "
         "measured time of one Conv 3x3, depthwise Conv, MaxPool 3x3 and BatchNormalization "
         "node (a chain of 3 less a chain of 1)")


def _matmul(timed: Any, sizes: tuple[int, ...]) -> tuple[float, int]:
    """Best FLOP/s of one square MatMul node over ``sizes`` (FLOPs as the analysis counts)."""
    from modelmeter.frontends.onnx.ort_kernels import matmul

    best, best_n = 0.0, 0
    for n in sizes:
        model = matmul(n)
        rate = _analyze(model).total().cost.flops / timed(model)
        if rate > best:
            best, best_n = rate, n
    return best, best_n


def _vector(timed: Any, numel: int) -> float:
    """The better FLOP/s of an Add and a tanh-Gelu node: the FLOPs and seconds a chain of
    VECTOR_CHAIN nodes takes beyond a chain of one."""
    from modelmeter.frontends.onnx.ort_kernels import chain

    rates = []
    for cls in ("vector", "gelu"):
        short, long = chain(cls, (numel,), 1), chain(cls, (numel,), VECTOR_CHAIN)
        flops = _analyze(long).total().cost.flops - _analyze(short).total().cost.flops
        rates.append(flops / max(timed(long) - timed(short), 1e-12))
    return max(rates)


def node_seconds(t_short: float, t_long: float, nodes: int, node_s: float) -> float:
    """One node's device seconds: (t_long - t_short) / nodes less the per-node cost (the
    per-run cost and the chain ends' reorders cancel in the difference)."""
    return max((t_long - t_short) / nodes - node_s, 1e-12)


def _classes(timed: Any, spec: HardwareSpec, shape: tuple[int, int, int, int], node_s: float,
             details: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """Per class, the attainable fraction of one node (module docstring); conv's memory
    side from a 1x1 convolution on a quarter of the channels at twice the height/width."""
    from modelmeter.frontends.onnx.ort_kernels import chain

    n, c, h, w = shape
    kernels: dict[str, float] = {}
    details["kernel classes"] = f"NCHW {n}x{c}x{h}x{w}, 3x3; conv memory 1x1 at {c // 4} ch"
    cases = [(cls, shape) for cls in CLASSES] + [("conv memory", (n, c // 4, 2 * h, 2 * w))]
    for cls, dims in cases:
        one = chain(cls, dims, 1)
        (t,) = roofline(_analyze(one), spec).ops
        t1, tk = timed(one), timed(chain(cls, dims, CHAIN))
        device_s = node_seconds(t1, tk, CHAIN - 1, node_s)
        if cls == "conv memory":
            km = conv_memory_fraction(t, kernels["conv"], device_s)
            details[cls + " float32"] = f"{km:.3g}"
            return kernels, {"conv": km}
        busy = max(t.compute_s, t.memory_s)
        kernels[cls] = fraction(busy, device_s)
        raw = busy / device_s
        details[f"{cls} float32"] = (f"{kernels[cls]:.3g} (roofline / measured {raw:.3g}, "
                                     f"{device_s * 1e6:.0f}us per node)")
    return kernels, {}


__all__ = ["CHAIN", "CLASSES", "VECTOR_CHAIN", "calibrate_ort", "node_seconds", "ort_or_refuse"]
