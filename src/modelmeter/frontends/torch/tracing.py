"""Tracing a PyTorch model: run a module (or any callable on tensors) under the tracer on meta or
real copies of its parameters and buffers, through ``torch.func.functional_call``, so the
user's module is never moved, cast or edited."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch

from modelmeter.errors import InputError, ModelRunError, NeedsData, first_line
from modelmeter.events import ModuleInfo, ParamInfo, Trace
from modelmeter.frontends.torch.dtypes import mixed_dtypes
from modelmeter.frontends.torch.exclusive import holds_model
from modelmeter.frontends.torch.fused import fused_attention
from modelmeter.frontends.torch.inputs import InputSpecs, cast_dtype, refuse_dims
from modelmeter.frontends.torch.isolation import Isolated
from modelmeter.frontends.torch.lifetimes import Lifetimes
from modelmeter.frontends.torch.packed import is_packed, nbytes, unpacked
from modelmeter.frontends.torch.packed import key as packed_key  # noqa: I001
from modelmeter.frontends.torch.standin import (
    STAND_IN,
    StandInLifetimes,
    StandInTracer,
    assumed_note,
    charged,
    integer,
)
from modelmeter.frontends.torch.tracer import (
    OpTracer,
    ScopeTracker,
    _tensors,
    storage_id,
)
from modelmeter.inputs import InputRequest
from modelmeter.report import InputSpec

MODES = ("auto", "meta", "real")


def trace(
    model: torch.nn.Module | Callable[..., Any],
    request: InputRequest,
    *,
    mode: str,
    convention: str,
    backward: bool,
    name: str | None = None,
) -> Trace:
    """Trace one forward pass of ``model`` on the inputs of ``request`` (its batch applied to
    given tensors too) and return the events, tree and parameters; a model in training mode
    gets a note saying what that changes."""
    result = _trace(model, request, mode=mode, convention=convention, backward=backward,
                    name=name)  # fmt: skip
    note = training_note(model)
    if note:
        result.notes.append(note)
    return result


def training_note(model: Any) -> str | None:
    """What training mode changes in the counts, or None for a model in eval mode (or not a
    module)."""
    if not isinstance(model, torch.nn.Module) or not model.training:
        return None
    kinds = {type(m) for m in model.modules() if m.training}
    changes = []
    if any(issubclass(k, torch.nn.modules.batchnorm._BatchNorm) for k in kinds):
        changes.append("batch norm uses batch statistics (computes the batch's mean and "
                       "variance and updates its running statistics: more FLOPs and bytes)")  # fmt: skip
    if any(issubclass(k, torch.nn.modules.dropout._DropoutNd) for k in kinds):
        changes.append("dropout masks its input (counted; an eval-mode model skips it)")
    what = "; ".join(changes) or (
        "no batch norm or dropout, but modules that check self.training run their training path"
    )
    return f"the model is in training mode: {what}; call model.eval() to count inference"


def _trace(
    model: torch.nn.Module | Callable[..., Any],
    request: InputRequest,
    *,
    mode: str,
    convention: str,
    backward: bool,
    name: str | None = None,
) -> Trace:
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    refuse_dims(request)
    request.check_batch()
    specs = InputSpecs.from_request(request)
    dtype = request.dtype
    cast = cast_dtype(dtype) if dtype else None
    if integer(cast) is not None:  # run in the float stand-in, charged as the integer dtype
        cast = _Cast(STAND_IN, integer(cast))
    label = name or _label(model)
    if mode in ("auto", "meta"):
        try:
            result = _run(model, specs, False, convention, cast, label, backward)
        except ModelRunError as meta_error:
            if mode == "meta":
                raise
            if _on_meta(model):  # no data to fall back on
                if not _wants_data(meta_error.__cause__):
                    raise  # a wrong shape: a real run would fail the same way
                raise _needs_data(meta_error, model) from meta_error.__cause__
            try:
                result = _run_real(model, specs, convention, cast, label, backward)
            except _NoMemory:  # the real run's tensors do not fit: the meta error says why
                raise meta_error from None
            except ModelRunError as real_error:
                raise real_error from None
            result.notes.append(
                "ran on real CPU tensors: a meta-device run failed "
                f"({meta_error.__cause__.__class__.__name__ if meta_error.__cause__ else 'error'}: "
                f"{first_line(meta_error.__cause__, '')})"
            )
            return result
        refused = mixed_dtypes(result.events)  # meta kernels let these through; real ones don't
        if refused:
            raise ModelRunError(refused)
        return result
    return _run_real(model, specs, convention, cast, label, backward)


class _NoMemory(ModelRunError):
    """A real run could not allocate its tensors."""


def _run_real(model: Any, specs: Any, *args: Any) -> Trace:
    """``_run`` on real tensors; an allocation that fails is one line, not an internal error."""
    try:
        return _run(model, specs, True, *args)
    except (MemoryError, RuntimeError) as e:
        if isinstance(e, ModelRunError) or not (
            isinstance(e, MemoryError) or "allocate" in str(e)
        ):
            raise
        raise _NoMemory(f"a real run could not allocate its tensors: {first_line(e, '')}") from None


class _Cast:
    """An integer analysis dtype: tensors are made as ``run`` and charged as ``label``."""

    def __init__(self, run: torch.dtype, label: torch.dtype | None) -> None:
        self.run, self.label = run, label


def _split(cast: Any) -> tuple[torch.dtype | None, torch.dtype | None]:
    """(the dtype tensors are made in, the integer dtype they are charged as or None)."""
    return (cast.run, cast.label) if isinstance(cast, _Cast) else (cast, None)


def _wants_data(cause: BaseException | None) -> bool:
    """Whether a meta run failed for want of values (``.item()``, a data-dependent shape, an
    op without a meta kernel) rather than on the inputs' shapes."""
    text = str(cause).lower()
    return isinstance(cause, NotImplementedError) or "meta" in text or "data-dependent" in text


def _needs_data(error: ModelRunError, model: torch.nn.Module) -> NeedsData:
    """The meta run's error, saying why no real run follows and what one would allocate."""
    seen, size = set(), 0
    for t in (*model.parameters(), *model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            size += t.numel() * t.element_size()
    return NeedsData(f"{error}; the model's weights are on the meta device, so there is no "
                     "data to fall back on: a named model runs on real CPU tensors with random "
                     "weights with --mode real (API: mode='real')", size)  # fmt: skip


def _on_meta(model: Any) -> bool:
    """Whether the model's weights are shapes only (a real run is impossible)."""
    if not isinstance(model, torch.nn.Module):
        return False
    return any(t.device.type == "meta" for t in (*model.parameters(), *model.buffers()))


def _label(model: Any) -> str:
    if isinstance(model, torch.nn.Module):
        return type(model).__name__
    return getattr(model, "__name__", None) or type(model).__name__


def _device_of(model: Any) -> torch.device:
    if isinstance(model, torch.nn.Module):
        for t in model.parameters():
            return t.device if t.device.type != "meta" else torch.device("cpu")
        for t in model.buffers():
            return t.device if t.device.type != "meta" else torch.device("cpu")
    return torch.device("cpu")


def _copy(t: torch.Tensor, real: bool, cast: torch.dtype | None, grad: bool) -> torch.Tensor:
    dt = cast if (cast is not None and t.is_floating_point()) else t.dtype
    if real:
        if t.device.type == "meta":
            raise ModelRunError("the model's weights are on the meta device; real mode needs data")
        c = t.detach().to(dtype=dt, copy=True)
    else:
        c = torch.empty(t.shape, dtype=dt, device="meta")
    if grad and t.requires_grad and (c.is_floating_point() or c.is_complex()):
        c.requires_grad_(True)  # for the traced backward pass
    return c


def _state(
    model: torch.nn.Module,
    real: bool,
    cast: torch.dtype | None,
    grad: bool = False,
    as_dtype: torch.dtype | None = None,
) -> tuple[dict[int, torch.Tensor], list[ParamInfo]]:
    """Copies of every parameter and buffer by the original's ``id`` (shared and tied ones
    copied once) and the ParamInfo list, each listed under its first owning module. ``grad``:
    copies of trainable parameters require grad (for tracing the backward pass)."""
    copies: dict[int, torch.Tensor] = {}
    infos: list[ParamInfo] = []
    seen: set[int] = set()
    for mod_name, mod in model.named_modules(remove_duplicate=False):
        for kind, table in (("param", mod._parameters), ("buffer", mod._buffers)):
            for pname, t in table.items():
                if t is None:
                    continue
                full = f"{mod_name}.{pname}" if mod_name else pname
                c = copies.get(id(t))
                if c is None:
                    c = copies[id(t)] = _copy(t, real, cast, grad)
                    infos.append(
                        ParamInfo(
                            name=full,
                            owner=mod_name,
                            numel=t.numel(),
                            nbytes=charged(c, as_dtype),
                            sid=storage_id(c),
                            trainable=kind == "param" and t.requires_grad,
                            buffer=kind == "buffer",
                        )
                    )
        _packed(mod_name, mod, seen, infos)
    return copies, infos


def _packed(mod_name: str, mod: torch.nn.Module, seen: set[int], infos: list[ParamInfo]) -> None:
    """The weights of a quantised module, packed in a ScriptObject attribute (packed.py)."""
    for attr, value in vars(mod).items():
        if is_packed(value) and packed_key(value) not in seen:
            seen.add(packed_key(value))
            prefix = f"{mod_name}.{attr}" if mod_name else attr
            for name, t, sid in unpacked(value):
                infos.append(ParamInfo(f"{prefix}.{name}", mod_name, t.numel(), nbytes(t), sid))


@holds_model  # the run swaps the module's tensors: one thread at a time per module
def _run(
    model: Any,
    specs: InputSpecs,
    real: bool,
    convention: str,
    cast: Any,
    label: str,
    backward: bool = False,
) -> Trace:
    is_module = isinstance(model, torch.nn.Module)
    device = _device_of(model)
    cast, as_dtype = _split(cast)
    if is_module:
        copies, infos = _state(model, real, cast, backward, as_dtype)
        named = list(model.named_modules())
        names = {id(m): n for n, m in named}
        root_type = type(model).__name__
    else:
        copies, infos, named, names = {}, [], [], {}
        root_type = getattr(model, "__name__", type(model).__name__)
    weights = {p.sid for p in infos}
    args, kwargs = specs.materialize(device, real, cast)
    lifetimes = Lifetimes(weights) if as_dtype is None else StandInLifetimes(weights, as_dtype)
    for t in _tensors((args, kwargs)):  # also tensors inside list arguments
        lifetimes.track(t, storage_id(t), output=False)
    scopes = ScopeTracker(names, backward)
    if as_dtype is None:
        tracer = OpTracer(scopes, weights, lifetimes, convention)
    else:
        tracer = StandInTracer(scopes, weights, lifetimes, convention, as_dtype=as_dtype)
    isolated = Isolated(model if is_module else None, copies)  # put back whatever happens
    try:
        fused = nullcontext() if real else fused_attention()  # meta: SDPA as real devices run it
        with torch.set_grad_enabled(backward), isolated, scopes.installed(), fused, tracer:
            out = model(*args, **kwargs)
            if backward:
                _backward(out, tracer, scopes)
        del out
    except Exception as e:
        raise ModelRunError(_describe_failure(e, scopes, real, specs)) from e
    except SystemExit as e:  # the model's code may not end the caller's process
        raise ModelRunError(f"the model's code called sys.exit({e.code!r}) in its forward") from None
    finally:
        del args, kwargs
    modules = [ModuleInfo("", root_type, 1, scopes.output_shapes.get("", ()))]
    for n, m in named:
        if n:
            modules.append(
                ModuleInfo(
                    n, type(m).__name__, scopes.calls.get(n, 0), scopes.output_shapes.get(n, ())
                )
            )
    result = Trace(
        model=label,
        frontend="torch",
        mode="real" if real else "meta",
        convention=convention,
        inputs=[InputSpec(s, d, k) for s, d, k in _described(specs, as_dtype or cast)],
        modules=modules,
        params=infos,
        events=tracer.events,
        activation_bytes=lifetimes.allocated,
        peak_activation_bytes=lifetimes.peak,
        live_timeline=lifetimes.timeline,
    )
    if isinstance(tracer, StandInTracer) and tracer.assumed:
        result.notes.append(assumed_note(list(tracer.assumed), tracer.as_dtype))
    return result


def _backward(out: Any, tracer: OpTracer, scopes: ScopeTracker) -> None:
    """Run the backward pass of every output that needs a gradient, seeded with ones (as for
    ``out.sum().backward()`` without counting the sum)."""
    outs = [t for t in _tensors(out) if t.requires_grad]
    if not outs:
        raise InputError("backward requested but no output requires a gradient")
    with torch.utils._python_dispatch._disable_current_modes():
        seeds = [torch.ones_like(t) for t in outs]
    tracer.phase = "backward"
    scopes.in_backward = True
    try:
        torch.autograd.backward(outs, seeds)
    finally:
        tracer.phase = "forward"
        scopes.in_backward = False


def _described(specs: InputSpecs, cast: torch.dtype | None) -> list[tuple]:
    out = []
    for shape, dt, key in specs.describe():
        if cast is not None and dt.startswith(("float", "bfloat")):  # as analysed
            dt = str(cast).removeprefix("torch.")
        out.append((shape, dt, key))
    return out


def _describe_failure(e: Exception, scopes: ScopeTracker, real: bool, specs: Any = None) -> str:
    where = ""
    failed = scopes.blame.failed_in(e)  # the innermost module still running, not the last entered
    if failed is not None:
        name, typ, shapes = failed
        shown = ", ".join("x".join(map(str, s)) or "scalar" for s in shapes)
        if not shown:  # the hooks see positional arguments only: the root's are the request's
            given = [f"{k}={'x'.join(map(str, s))}" for s, _, k in (specs.describe() if specs else ())
                     if k is not None]  # fmt: skip
            shown = ", ".join(given) if not name and given else "none positional"
        where = f"module '{name or '<root>'}' ({typ}) failed on inputs [{shown}]: "
    return f"{where}{type(e).__name__}: {first_line(e, '')}"
