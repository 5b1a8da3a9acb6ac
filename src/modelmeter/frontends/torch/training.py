"""Tracing one training step of a module on meta copies: the forward, the backward (as
``--backward`` traces it: seeded with ones on the outputs, no loss counted) and the real
optimizer's step (phase ``optimizer``), with the bytes alive after every op.

The user's model and its parameters are never touched: the forward runs on copies swapped in
by :class:`~modelmeter.frontends.torch.isolation.Isolated`; the optimizer updates those
copies (or their fp32 masters); its state is made by one untraced warm-up step, so the traced
step is a steady-state one (every step after the first). Gradient accumulation's extra work
per further micro-batch (``grad += new``, what autograd's AccumulateGrad runs when a gradient
exists) is traced apart, once.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch

from modelmeter.errors import InputError, ModelRunError
from modelmeter.events import ModuleInfo, OpEvent, StepMemory, StepSetup, Trace
from modelmeter.frontends.torch.autocast_meta import autocast
from modelmeter.frontends.torch.checkpointing import checkpointed
from modelmeter.frontends.torch.exclusive import holds_model
from modelmeter.frontends.torch.fused import fused_attention
from modelmeter.frontends.torch.inputs import InputSpecs, cast_dtype, refuse_dims
from modelmeter.frontends.torch.isolation import Isolated
from modelmeter.frontends.torch.optimizers import (
    build_optimizer,
    check_setup,
    masters_for,
    meta_item,
    meta_update,
    optimizer_step,
    state_bytes,
    updated,
)
from modelmeter.frontends.torch.tp_region import RegionTracker, router_modules
from modelmeter.frontends.torch.tracer import (
    Lifetimes,
    OpTracer,
    ScopeTracker,
    _tensors,
    storage_id,
)
from modelmeter.frontends.torch.tracing import (
    _backward,
    _describe_failure,
    _described,
    _state,
)
from modelmeter.inputs import InputRequest
from modelmeter.report import InputSpec


class _BornLifetimes(Lifetimes):
    """Lifetimes that also remember at which event each storage was made."""

    def __init__(self, excluded: set[int], clock: Any) -> None:
        super().__init__(excluded)
        self.clock = clock
        self.born: dict[int, int] = {}

    def track(self, t: torch.Tensor, sid: int, output: bool = True) -> None:
        if sid not in self.refs and sid not in self.excluded:
            self.born[sid] = self.clock()
        super().track(t, sid, output)


class _StepTracer(OpTracer):
    """An OpTracer that records the live bytes after every op it emits; in the optimizer's
    step, ``.item()`` of a meta tensor answers a stand-in (Adafactor reads norms so)."""

    timeline: list[int]
    regions: RegionTracker | None = None  # the forward's tensor-parallel region (tp_region)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if self.phase == "optimizer":
            stand_in = meta_item(func, args)
            if stand_in is not None:
                return stand_in
        out = super().__torch_dispatch__(func, types, args, kwargs)
        if self.regions is not None and out is not NotImplemented:
            self.regions.see(func.__name__.split(".")[0], args, kwargs or {}, out)
        return out

    def _execute(self, func: Any, target: str, args: tuple, kwargs: dict) -> Any:
        # the optimizer's in-place updates of meta tensors are recorded, not run (their meta
        # kernels, per tensor of the lists, would only check what the update changes nothing of)
        if self.phase == "optimizer" and meta_update(func, args, kwargs):
            return updated(func, args)
        return super()._execute(func, target, args, kwargs)

    def _emit(self, func: Any, target: str, args: tuple, kwargs: dict, out: Any) -> None:
        super()._emit(func, target, args, kwargs, out)
        self.timeline.append(self.lifetimes.live)


def trace_step(
    model: Any,
    request: InputRequest,
    setup: StepSetup,
    *,
    convention: str = "exact",
    name: str | None = None,
) -> tuple[Trace, StepMemory, list[OpEvent]]:
    """Trace one training step of ``model`` on the inputs of ``request``: the Trace (phases
    forward, backward, optimizer), the step's memory, and the events of one further
    micro-batch's gradient accumulation."""
    check_setup(setup)
    if not isinstance(model, torch.nn.Module):
        raise InputError("a training step needs an nn.Module: its parameters are what the "
                         "optimizer updates")  # fmt: skip
    if not any(p.requires_grad for p in model.parameters()):
        raise InputError("the model has no trainable parameters (every requires_grad is "
                         "False): nothing to train")  # fmt: skip
    refuse_dims(request)
    request.check_batch()
    specs = InputSpecs.from_request(request)
    cast = cast_dtype(setup.model_dtype)
    return _run_step(model, specs, cast, setup, convention, name or type(model).__name__)


@holds_model  # the run swaps the module's tensors: one thread at a time per module
def _tracers(model: torch.nn.Module, weights: set[int], static: set[int],
             convention: str, routers: set[int] | None = None,
             ) -> tuple[ScopeTracker, _StepTracer, _BornLifetimes]:  # fmt: skip
    """The step's scope tracker, op tracer (with its timeline and tensor-parallel regions)
    and lifetimes (``static``: storages never freed: weights, masters, optimizer states)."""
    scopes = ScopeTracker({id(m): n for n, m in model.named_modules()}, backward=True)
    tracer = _StepTracer(scopes, weights, Lifetimes(set()), convention)
    lifetimes = _BornLifetimes(static, lambda: len(tracer.events))
    tracer.lifetimes, tracer.timeline = lifetimes, []
    tracer.regions = RegionTracker(weights, routers)
    return scopes, tracer, lifetimes


def _run_step(
    model: torch.nn.Module,
    specs: InputSpecs,
    cast: torch.dtype,
    setup: StepSetup,
    convention: str,
    label: str,
) -> tuple[Trace, StepMemory, list[OpEvent]]:
    copies, infos = _state(model, False, cast, grad=True)
    params = _trainable_copies(model, copies)
    masters = masters_for(params) if setup.mixed else params
    opt, notes = build_optimizer(setup, masters)
    states, host, state_sids = state_bytes(opt)
    weights = {p.sid for p in infos} | {storage_id(m) for m in masters}
    routers = router_modules(model)  # MoE routers: replicated under tensor parallelism
    scopes, tracer, lifetimes = _tracers(model, weights, weights | state_sids, convention,
                                         {p.sid for p in infos if p.owner in routers})
    args, kwargs = specs.materialize("cpu", False, cast)
    for t in _tensors((args, kwargs)):
        lifetimes.track(t, storage_id(t), output=False)
    inputs, fed = lifetimes.live, set(lifetimes.refs)
    try:
        with torch.enable_grad(), Isolated(model, copies), scopes.installed(), fused_attention():
            model.train()  # as a training loop runs it (put back by Isolated)
            policy = (lambda: autocast(cast)) if setup.mixed else nullcontext  # CUDA's
            blocks = (checkpointed(model, tracer, scopes, policy) if setup.checkpointing
                      else nullcontext())  # fmt: skip
            with tracer, blocks:
                with policy():
                    out = model(*args, **kwargs)
                activations = lifetimes.live - inputs
                saved = _saved_by_scope(lifetimes, tracer.events, fed)
                storages = _saved_storages(lifetimes, fed, tracer.regions, len(tracer.events))
                latent, tracer.regions = tracer.regions.normalised, None
                calls = dict(scopes.calls)  # a recomputation enters the blocks again
                _backward(out, tracer, scopes)
                del out
                scopes.release()  # the backward's hooks hold its graph (tracer.py)
                scopes.blame.failure = None  # a recomputation stopped early (its exception,
                # caught by PyTorch, keeps its frames and their tensors alive)
                tracer.phase = "optimizer"
                grads = _grads(params, lifetimes)
                optimizer_step(opt, params, masters, setup)
                tracer.phase = "forward"
            accumulate = _accumulation(params, copies, model, convention)
    except InputError:
        raise
    except Exception as e:  # named as analyze names it: the module that failed, its inputs
        raise ModelRunError(_describe_failure(e, scopes, False, specs)) from e
    finally:
        del args, kwargs
    by_sid = {p.sid: p for p in infos}
    memory = StepMemory(
        weights=sum(p.nbytes for p in by_sid.values() if not p.buffer),
        buffers=sum(p.nbytes for p in by_sid.values() if p.buffer),
        master=sum(m.untyped_storage().nbytes() for m in masters) if setup.mixed else 0,
        gradients=sum(n for _, n in grads),
        states=states, host_states=host, inputs=inputs, activations=activations,
        timeline=tracer.timeline,
        grad_born=grads,
        saved_by_scope=saved,
        saved_storages=storages,
        replicated_linears=tuple(sorted({by_sid[s].owner for s in latent if s in by_sid})),
    )
    trace = Trace(
        model=label,
        frontend="torch",
        mode="meta",
        convention=convention,
        inputs=[InputSpec(s, d, k) for s, d, k in _described(specs, cast)],
        modules=_modules(model, scopes, calls),
        params=infos,
        events=tracer.events,
        activation_bytes=lifetimes.allocated,
        peak_activation_bytes=lifetimes.peak,
        notes=notes,
    )
    return trace, memory, accumulate


def _saved_by_scope(lifetimes: _BornLifetimes, events: list[OpEvent], fed: set[int]) -> dict:
    """Bytes live now (end of the forward) by the scope of the op that made each storage."""
    out: dict[str, int] = {}
    for sid in lifetimes.refs.keys() - fed:
        i = lifetimes.born.get(sid, len(events))
        scope = events[i].scope if i < len(events) else ""
        out[scope] = out.get(scope, 0) + lifetimes.size[sid]
    return out


def _saved_storages(lifetimes: _BornLifetimes, fed: set[int], regions: RegionTracker,
                    n: int) -> list[tuple[int, int, bool]]:  # fmt: skip
    """(event index at which it was made, bytes, inside the tensor-parallel region) of each
    storage live at the end of the forward, the inputs apart, in the order they were made."""
    return sorted((lifetimes.born.get(sid, n), lifetimes.size[sid], sid in regions.split)
                  for sid in lifetimes.refs.keys() - fed)  # fmt: skip


def _trainable_copies(model: torch.nn.Module, copies: dict[int, torch.Tensor]) -> list:
    """The copies of the trainable parameters, each once (tied ones share a copy)."""
    out: dict[int, torch.Tensor] = {}
    for p in model.parameters():
        c = copies.get(id(p))
        if c is not None and c.requires_grad:
            out[id(c)] = c
    return list(out.values())


def _grads(params: list[torch.Tensor], lifetimes: _BornLifetimes) -> list[tuple[int, int]]:
    """(event index at which it was made, bytes) of each distinct gradient storage."""
    out: dict[int, tuple[int, int]] = {}
    for p in params:
        if p.grad is not None:
            sid = storage_id(p.grad)
            out[sid] = (lifetimes.born.get(sid, 0), p.grad.untyped_storage().nbytes())
    return list(out.values())


def _accumulation(
    params: list[torch.Tensor], copies: dict[int, torch.Tensor], model: Any, convention: str
) -> list[OpEvent]:
    """The ops one more micro-batch adds to the gradients (``grad.add_(new)`` for each, as
    AccumulateGrad runs it), traced on meta, each in its owning module."""
    owner = {}
    for mod_name, mod in model.named_modules():
        for p in mod._parameters.values():
            if p is not None and id(p) in copies:
                owner.setdefault(id(copies[id(p)]), mod_name)
    events: list[OpEvent] = []
    for p in params:
        if p.grad is None:
            continue
        tracer = OpTracer(ScopeTracker({}), set(), Lifetimes(set()), convention)
        tracer.phase = "backward"
        new = torch.empty_like(p.grad)
        with torch.no_grad(), tracer:
            p.grad.add_(new)
        events.extend(
            OpEvent(owner.get(id(p), ""), e.frontend, e.target, e.call, e.phase)
            for e in tracer.events
        )
    return events


def _modules(model: torch.nn.Module, scopes: ScopeTracker, calls: dict) -> list[ModuleInfo]:
    out = [ModuleInfo("", type(model).__name__, 1, scopes.output_shapes.get("", ()))]
    for n, m in model.named_modules():
        if n:
            out.append(ModuleInfo(n, type(m).__name__, calls.get(n, 0),
                                  scopes.output_shapes.get(n, ())))  # fmt: skip
    return out
