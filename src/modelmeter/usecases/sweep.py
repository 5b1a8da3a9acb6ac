"""The sweep and formula use cases: a model's cost over a grid of input sizes, and each cost as
an exact polynomial in those sizes.

Sizes a sweep can vary (``dims``): ``batch`` (the first dimension of every input), ``seq``
(the second dimension of every sequence input: an integer or bool input of rank >= 2, such
as ``input_ids`` and its mask, or a rank-3 ``[batch, seq, features]`` input), ``size`` (height and width of every rank-4 floating input, H=W)
and any other name: a symbolic dimension of an ONNX model (as ``--dim NAME=N``).

The model is loaded once. With ``formula`` (the default), the Report is fitted as exact
polynomials from as few traces as the degrees need (:mod:`modelmeter.analysis.report_formula`:
fitted on the smallest sweep values and checked at a value never fitted on, the largest one
where the degree is the highest allowed);
every other grid point's Report then comes from the formula, exactly, without a trace. A
figure that is not a polynomial (a data-dependent shape) leaves the formula incomplete: the
remaining points are then traced one by one, and the formula says which count it refused.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from modelmeter.analysis.report_formula import COUNTS, ReportFormula, fit_report, totals
from modelmeter.analysis.sweep import Formula, SweepResult, SweepRow, sweep_row
from modelmeter.builder import build
from modelmeter.errors import InputError
from modelmeter.frontends import frontend_for
from modelmeter.host import collector_paused
from modelmeter.inputs import InputItem, InputRequest, ShapeInput
from modelmeter.models.loaded import positions_note
from modelmeter.registry import CONVENTIONS
from modelmeter.report import Report
from modelmeter.shapes import MAX_DIM
from modelmeter.storage import Pricing
from modelmeter.usecases.analyze import _load_named, token_lengths

MAX_DEGREE = {"batch": 2, "seq": 2, "size": 4}  # size: H*W, and attention over H*W tokens
Progress = Callable[[str, int, int | None], None]


def _is_token(item: ShapeInput) -> bool:
    d = (item.dtype or "").lower()
    return len(item.shape) >= 2 and (d.startswith(("int", "uint", "long")) or d == "bool")


def _has_seq(item: ShapeInput) -> bool:
    """Token ids and masks (integer or bool, rank >= 2) and [batch, seq, features] floats."""
    return _is_token(item) or len(item.shape) == 3


def _is_image(item: ShapeInput) -> bool:
    d = (item.dtype or "float32").lower()
    return len(item.shape) == 4 and not _is_token(item) and d != "bool"


def _set_dim(item: InputItem, dim: str, n: int) -> tuple[InputItem, bool]:
    if not isinstance(item, ShapeInput):
        return item, False
    s = item.shape
    if dim == "seq" and _has_seq(item):
        return replace(item, shape=(s[0], n, *s[2:])), True
    if dim == "size" and _is_image(item):
        return replace(item, shape=(*s[:2], n, n)), True
    return item, False


def request_at(base: InputRequest, sizes: Mapping[str, int]) -> InputRequest:
    """``base`` with the sizes set (see the module doc); InputError when a size names nothing
    the inputs have."""
    request = base
    for dim, n in sizes.items():
        if dim == "batch":
            request = request.with_batch(n)
        elif dim in ("seq", "size"):
            hit = False
            args = []
            for item in request.args:
                new, changed = _set_dim(item, dim, n)
                args.append(new)
                hit |= changed
            kwargs = {}
            for k, item in request.kwargs.items():
                kwargs[k], changed = _set_dim(item, dim, n)
                hit |= changed
            if not hit:
                what = "sequence input (token ids, or rank 3)" if dim == "seq" else "image (rank 4)"
                raise InputError(
                    f"{dim}: no {what} given as a shape to set it on; give --input shapes, or "
                    "name an ONNX model's symbolic dimension instead"
                )
            request = replace(request, args=tuple(args), kwargs=kwargs)
        else:
            request = replace(request, dims={**request.dims, dim: n})
    return request


def _check_values(name: str, values: Sequence[int]) -> list[int]:
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_DIM:
            raise InputError(f"{name}: sizes must be whole numbers from 1 to {MAX_DIM} (got {v!r})")
        if v not in out:
            out.append(v)
    if not out:
        raise InputError(f"{name}: give at least one size")
    return out


def fit_points(values: Sequence[int], degree: int) -> list[int]:
    """The sizes a fit of degree <= ``degree`` is tried on: the smallest ``degree + 1``
    values ascending, then the largest (the check of a fit of the highest degree: the far end
    of the sweep), then the others; extended past the largest by steps of the smallest when
    there are fewer than ``degree + 2``."""
    pts = sorted(set(values))
    step = pts[0]
    while len(pts) < degree + 2:
        pts.append(pts[-1] + step)
    return [*pts[: degree + 1], pts[-1], *pts[degree + 1 : -1]]


class _Tracer:
    """The model loaded once and traced at any sizes (each size once)."""

    def __init__(self, model: Any, request: InputRequest, *, mode: str, convention: str,
                 progress: Progress | None, total: int | None,
                 backward: bool = False, pricing: Pricing | None = None) -> None:  # fmt: skip
        self.pricing = pricing  # storage formats (--weights/--kv): bytes priced at them
        if convention not in CONVENTIONS:
            raise InputError(f"unknown convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
        self.frontend = frontend_for(model)
        self.label: str | None = None
        self.limit: int | None = None  # the token positions a named model's config allows
        self.name = model if isinstance(model, str) else None
        if isinstance(model, str) and self.frontend.name == "torch":
            if request.dims:
                raise InputError("--dim/dims only applies to ONNX models (named dimensions)")
            model, request, self.label, self.limit = _load_named(self.frontend, model, request,
                                                                 real=mode == "real")  # fmt: skip
        self.model, self.base = model, request
        self.mode, self.convention, self.backward = mode, convention, backward
        self.progress, self.total = progress, total
        # every traced point's totals; its whole Report only where kept (a chip prices
        # each op): many large Reports alive slow the garbage collector down
        self.totals: dict[tuple[int, ...], dict[str, int]] = {}
        self.timelines: dict[tuple[int, ...], list[int]] = {}  # live bytes over each run
        self.reports: dict[tuple[int, ...], Report] = {}
        self.keep = False

    def check(self, variables: Sequence[str]) -> None:
        """Refuse a size a PyTorch model has no place for (a name is an ONNX dimension)."""
        odd = [v for v in variables if v not in ("batch", "seq", "size")]
        if odd and self.frontend.name == "torch":
            raise InputError(f"cannot sweep {odd[0]!r} on a PyTorch model: its sizes are batch, "
                             "seq and size (other names are an ONNX model's symbolic dimensions)")  # fmt: skip

    def __call__(self, variables: Sequence[str], point: tuple[int, ...]) -> Report:
        if point in self.reports:
            return self.reports[point]
        sizes = dict(zip(variables, point))
        if self.progress:
            shown = ", ".join(f"{k}={v}" for k, v in sizes.items())
            self.progress(f"tracing {shown}", len(self.totals), self.total)
        trace = self.frontend.trace(
            self.model, request_at(self.base, sizes), mode=self.mode,
            convention=self.convention, backward=self.backward,
        )  # fmt: skip
        if self.label is None:
            self.label = trace.model
        trace.model = self.label
        report = build(trace, pricing=self.pricing)
        self.totals[point] = dict(zip(COUNTS, totals(report)))
        self.timelines[point] = list(trace.live_timeline)
        if self.keep:
            self.reports[point] = report
        return report


def _degrees(variables: Sequence[str], max_degree: int | Mapping[str, int] | None) -> list[int]:
    if isinstance(max_degree, int):
        return [max_degree] * len(variables)
    given = dict(max_degree or {})
    return [given.get(v, MAX_DEGREE.get(v, 2)) for v in variables]


def _fit(tracer: _Tracer, variables: list[str], points: list[list[int]], degrees: list[int],
         checks: Sequence[tuple[int, ...]], full: bool = False) -> ReportFormula:  # fmt: skip
    return fit_report(lambda p: tracer(variables, p), variables, points, degrees, checks=checks,
                      full=full, timeline=tracer.timelines.__getitem__)  # fmt: skip


@collector_paused()
def sweep(
    model: Any,
    inputs: Any = None,
    *,
    batch: Sequence[int] | None = None,
    seq: Sequence[int] | None = None,
    size: Sequence[int] | None = None,
    dims: Mapping[str, Sequence[int]] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    hardware: Any = None,
    dtype: str | None = None,
    mode: str = "auto",
    convention: str = "exact",
    formula: bool = True,
    max_degree: int | Mapping[str, int] | None = None,
    backward: bool = False,
    tf32: bool = False,
    roofline_options: Mapping[str, Any] | None = None,
    check_far: bool = False, progress: Progress | None = None,  # fmt: skip
    weights: Any = None, kv: Any = None,  # fmt: skip
) -> SweepResult:
    """Analyse ``model`` at every point of the grid ``batch`` x ``seq`` x ``size`` x ``dims``
    (lists of sizes; see the module doc) and return one row of totals per point, with the
    roofline's latency and bound when ``hardware`` (a chip name, a file or a HardwareSpec) is
    given (``roofline_options``: more keywords for :func:`~modelmeter.analysis.roofline.roofline`).
    ``formula``: fit the exact formulas and take every point they cover from them
    (False: trace every point); ``check_far``: check the formula at the far corner of the
    grid too (one more trace where the fit did not reach it). ``model``, ``inputs``, ``kwargs``, ``dtype``, ``mode``,
    ``convention``, ``backward``, ``weights`` and ``kv`` are as for :func:`modelmeter.analyze`."""
    grid_axes = {k: v for k, v in (("batch", batch), ("seq", seq), ("size", size)) if v}
    grid_axes |= dict(dims or {})
    if not grid_axes:
        raise InputError("give at least one size to sweep (batch, seq, size or an ONNX dim)")
    variables = list(grid_axes)
    values = [_check_values(k, v) for k, v in grid_axes.items()]
    spec = _spec(hardware)
    grid = list(itertools.product(*values))
    request = InputRequest.from_api(inputs, kwargs, dtype=dtype)
    # the bar counts traces: all the grid's points without a formula, else not known ahead
    tracer = _Tracer(model, request, mode=mode, convention=convention, progress=progress,
                     total=None if formula else len(grid), backward=backward,
                     pricing=Pricing.of(weights, kv))  # fmt: skip
    tracer.check(variables)
    tracer.keep = spec is not None
    fitted: ReportFormula | None = None
    if formula:
        degrees = _degrees(variables, max_degree)
        points = [fit_points(v, d) for v, d in zip(values, degrees)]
        far = [tuple(max(v) for v in values)] if check_far else []
        # a chip needs every op's figures (the roofline prices each op); else the totals
        fitted = _fit(tracer, variables, points, degrees, far, full=spec is not None)
    rows = []
    for point in grid:
        sizes = dict(zip(variables, point))
        if spec is None:
            rows.append(_totals_row(tracer, fitted, variables, point))
            continue
        report, source = _report_at(tracer, fitted, variables, point)
        from modelmeter.analysis.roofline import roofline

        roof = roofline(report, spec, **{"tf32": tf32, **(roofline_options or {})})
        rows.append(sweep_row(sizes, report, source, roof))
    label = tracer.label or ""
    notes = _positions_notes(tracer, variables, grid)
    if any(r.source == "traced" for r in rows) and fitted and not fitted.totals_complete:
        notes.append("not every count is a polynomial in the sizes: every point was traced")
    elif spec is not None and fitted is not None and not fitted.complete:
        notes.append("not every op's figures are polynomials in the sizes: every point was "
                     "traced for the roofline")  # fmt: skip
    return SweepResult(
        model=label,
        variables=tuple(variables),
        rows=rows,
        convention=convention,
        chip=None if spec is None else spec.name,
        formula=None if fitted is None else Formula.from_fit(label, fitted),
        traces=len(tracer.totals),
        notes=notes,
    )


def _positions_notes(tracer: _Tracer, variables: list[str], grid: list[tuple[int, ...]]) -> list[str]:
    """A note when a point's token inputs are longer than the named model's config allows."""
    if tracer.limit is None:
        return []
    lengths = [n for p in grid for n in token_lengths(request_at(tracer.base, dict(zip(variables, p))))]
    note = positions_note(tracer.limit, lengths, tracer.name or "the model")
    return [note] if note else []


def _totals_row(tracer: _Tracer, fitted: ReportFormula | None, variables: list[str],
                point: tuple[int, ...]) -> SweepRow:  # fmt: skip
    sizes = dict(zip(variables, point))
    if point not in tracer.totals and fitted is not None and fitted.totals_complete:
        return SweepRow(sizes, fitted.totals_at(point), "formula")  # type: ignore[arg-type]
    if point not in tracer.totals:
        tracer(variables, point)
    return SweepRow(sizes, tracer.totals[point], "traced")


def _report_at(tracer: _Tracer, fitted: ReportFormula | None, variables: list[str],
               point: tuple[int, ...]) -> tuple[Report, str]:  # fmt: skip
    if point in tracer.totals or fitted is None or not fitted.complete:
        return tracer(variables, point), "traced"
    return fitted.report_at(point), "formula"


def _spec(hardware: Any) -> Any:
    if hardware is None or not isinstance(hardware, str):
        return hardware
    from modelmeter.hardware import load_spec

    return load_spec(hardware)


def formula(
    model: Any,
    inputs: Any = None,
    *,
    dims: Sequence[str] | Mapping[str, Sequence[int]] | None = None,
    kwargs: Mapping[str, Any] | None = None,
    dtype: str | None = None,
    mode: str = "auto",
    convention: str = "exact",
    max_degree: int | Mapping[str, int] | None = None,
    backward: bool = False,
    progress: Progress | None = None,
    weights: Any = None,
    kv: Any = None,
) -> Formula:
    """Each total of ``model``'s Report as an exact polynomial in the sizes ``dims`` (names,
    or names with the sizes to fit on; default ``batch``, and ``seq`` when the inputs have a
    token input), from as few traces as the degrees need. By default each size is fitted on multiples of its value in the model's inputs (1, 2, 3, 4 for a
    batch of 1; 128, 256, 384, 512 for a sequence of 128)."""
    request = InputRequest.from_api(inputs, kwargs, dtype=dtype)
    tracer = _Tracer(model, request, mode=mode, convention=convention, progress=progress,
                     total=None, backward=backward, pricing=Pricing.of(weights, kv))  # fmt: skip
    variables = list(dims) if dims else _default_dims(tracer.base)
    tracer.check(variables)
    degrees = _degrees(variables, max_degree)
    points = []
    for v, d in zip(variables, degrees):
        given = dims.get(v) if isinstance(dims, Mapping) else None
        if given:
            points.append(fit_points(_check_values(v, given), d))
        else:
            start = _current(tracer.base, v)
            points.append([start * (k + 1) for k in range(d + 2)])
    fitted = _fit(tracer, variables, points, degrees, ())
    label = tracer.label or fitted.template.model
    return Formula.from_fit(label, fitted)


def _default_dims(request: InputRequest) -> list[str]:
    items = (*request.args, *request.kwargs.values())
    tokens = any(isinstance(i, ShapeInput) and _has_seq(i) for i in items)
    return ["batch", "seq"] if tokens else ["batch"]


def _current(request: InputRequest, dim: str) -> int:
    """The size ``dim`` has in the request (1 where it says nothing: an ONNX dimension)."""
    if dim == "batch":
        return request.batch or next(
            (i.shape[0] for i in (*request.args, *request.kwargs.values())
             if isinstance(i, ShapeInput) and i.shape), 1)  # fmt: skip
    for item in (*request.args, *request.kwargs.values()):
        if isinstance(item, ShapeInput):
            if dim == "seq" and _has_seq(item):
                return item.shape[1]
            if dim == "size" and _is_image(item):
                return item.shape[-1]
    return request.dims.get(dim, 1)


__all__ = ["fit_points", "formula", "request_at", "sweep"]
