"""The real ``torch.optim`` optimizers on meta tensors: built from a :class:`StepSetup`, warmed
by one untraced step (so their state tensors exist, as in every step after the first), and
their state read back by category.

The fused variants (``fused=True``) run only on CUDA, CPU and a few other devices, never on
meta: they are counted as the foreach variant, which does the same arithmetic per element in
several kernels (a fused kernel reads and writes each tensor once, so it moves fewer bytes
than counted); a note says so.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from modelmeter.errors import InputError
from modelmeter.events import EIGHT_BIT, OPTIMIZERS, PRECISIONS, VARIANTS, StepSetup
from modelmeter.frontends.torch.bnb_optimizers import build_8bit
from modelmeter.frontends.torch.tracer import storage_id

_CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "adafactor": "Adafactor"}
ITEM_NOTE = ("Adafactor reads its parameters' and updates' root mean square with .item(), "
             "which has no value on meta tensors: 1.0 stands in (it sets the step's size, not "
             "its ops)")


def check_setup(setup: StepSetup) -> None:
    """One line (InputError) for an optimizer, variant or precision that is not known."""
    for value, known, what in (
        (setup.optimizer, OPTIMIZERS, "optimizer"),
        (setup.variant, VARIANTS, "optimizer variant"),
        (setup.precision, PRECISIONS, "precision"),
    ):
        if value not in known:
            raise InputError(f"unknown {what} {value!r}; use one of {', '.join(known)}")


def _kwargs(setup: StepSetup, variant: str) -> dict[str, Any]:
    kw: dict[str, Any] = {"lr": setup.lr}
    if setup.weight_decay is not None:
        kw["weight_decay"] = setup.weight_decay
    if setup.optimizer == "sgd":
        kw["momentum"] = setup.momentum
    if setup.optimizer == "adafactor":
        kw["lr"] = 1e-2  # its default; a 0 or tiny lr changes nothing counted
    if variant == "fused":
        kw["fused"] = True
    else:
        kw["foreach"] = variant == "foreach"
    return kw


def build_optimizer(setup: StepSetup, params: list[torch.Tensor]) -> tuple[Any, list[str]]:
    """The optimizer over ``params`` (meta tensors that require grad), warmed by one step; and
    the notes on what was counted."""
    if setup.optimizer in EIGHT_BIT:  # bitsandbytes: one implementation, no variants
        opt, notes = build_8bit(setup, params)
        _warm(opt, params)
        return opt, notes
    cls = getattr(torch.optim, _CLASSES[setup.optimizer])
    notes: list[str] = [ITEM_NOTE] if setup.optimizer == "adafactor" else []
    variant = setup.variant
    if variant == "fused":
        try:
            opt = cls(params, **_kwargs(setup, "fused"))
            _warm(opt, params)
            return opt, notes
        except (RuntimeError, ValueError) as e:
            variant = "foreach"
            notes.append(
                f"the fused {cls.__name__} cannot run on meta tensors ({str(e).splitlines()[0]}"
                "): counted as the foreach variant, the same arithmetic per element; a fused "
                "kernel reads and writes each tensor once and makes no temporaries, so it "
                "moves fewer bytes and may peak lower than counted"
            )
    opt = cls(params, **_kwargs(setup, variant))
    _warm(opt, params)
    return opt, notes


def counted_variant(setup: StepSetup, notes: list[str]) -> str:
    """The implementation the step's counts are of: bitsandbytes' one kernel per tensor
    ("fused"), a fused torch.optim that fell back to foreach on meta (a note says so), else
    the one asked for."""
    if setup.optimizer in EIGHT_BIT:
        return "fused"
    return "foreach" if any("fused" in n for n in notes) else setup.variant


def _warm(opt: Any, params: list[torch.Tensor]) -> None:
    """One untraced step on empty gradients: the states exist, as before any later step."""
    for p in params:
        p.grad = torch.empty_like(p)
    try:
        with _WarmStep():
            opt.step()
    finally:
        for p in params:
            p.grad = None


class MetaItems(TorchDispatchMode):
    """``.item()`` of a meta tensor answers a stand-in (1.0, 1 or True) instead of failing."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        stand_in = meta_item(func, args)
        return func(*args, **(kwargs or {})) if stand_in is None else stand_in


# in-place arithmetic an optimizer's update does (foreach and per tensor): on meta tensors it
# changes no shape, dtype or stride, so the untraced warm-up step may skip it
_UPDATES = frozenset(
    f"{prefix}{name}_"
    for prefix in ("_foreach_", "")
    for name in ("add", "sub", "mul", "div", "lerp", "addcmul", "addcdiv", "sqrt", "neg",
                 "maximum", "clamp_min", "copy", "zero", "sign", "pow", "abs", "exp")  # fmt: skip
)


class _WarmStep(MetaItems):
    """:class:`MetaItems` that also skips the in-place updates of meta tensors (the state
    tensors an optimizer creates in its first step are all it needs to leave; what the update
    would write has no value on meta, and a meta update changes no metadata). An update that
    touches a tensor on another device (Adam's step counters on the CPU) runs."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        if meta_update(func, args, kwargs):
            return updated(func, args)
        return super().__torch_dispatch__(func, types, args, kwargs)


def meta_update(func: Any, args: tuple, kwargs: dict | None) -> bool:
    """Whether ``func`` is an in-place update (:data:`_UPDATES`) of meta tensors only: running
    it changes nothing a meta trace sees (no storage, no shape, dtype or stride)."""
    return func.overloadpacket.__name__ in _UPDATES and _all_meta((args, kwargs))


def updated(func: Any, args: tuple) -> Any:
    """What the in-place update ``func`` returns: nothing (the foreach ones), else its
    ``self``, the tensor it wrote."""
    return None if not func._schema.returns else args[0]


def _all_meta(value: Any) -> bool:
    """Whether every tensor in ``value`` (nested lists, tuples and dicts) is on meta."""
    if isinstance(value, torch.Tensor):
        return value.device.type == "meta"
    if isinstance(value, (list, tuple)):
        return all(_all_meta(v) for v in value)
    if isinstance(value, dict):
        return all(_all_meta(v) for v in value.values())
    return True


def meta_item(func: Any, args: tuple) -> Any:
    """The stand-in value of ``func`` when it is ``.item()`` of a meta tensor, else None."""
    if func is not torch.ops.aten._local_scalar_dense.default or not args:
        return None
    t = args[0]
    if not isinstance(t, torch.Tensor) or t.device.type != "meta":
        return None
    if t.dtype == torch.bool:
        return True
    return 1.0 if t.is_floating_point() else 1


def state_bytes(opt: Any) -> tuple[dict[str, int], int, set[int]]:
    """(device bytes of the optimizer's state tensors by name, bytes of those on the host,
    the storages of all of them). The params are on meta: a state on another device (Adam's
    ``step`` counters, on the CPU unless capturable) is held by the host."""
    device: dict[str, int] = {}
    host = 0
    sids: set[int] = set()
    seen: set[int] = set()
    for state in opt.state.values():
        for name, t in state.items():
            if not isinstance(t, torch.Tensor):
                continue
            sid = storage_id(t)
            if sid in seen:
                continue
            seen.add(sid)
            sids.add(sid)
            n = t.untyped_storage().nbytes()
            if t.device.type == "meta":
                device[name] = device.get(name, 0) + n
            else:
                host += n
    return device, host, sids


def masters_for(params: list[torch.Tensor]) -> list[torch.Tensor]:
    """fp32 master copies (meta) of the trainable weights, for mixed precision."""
    return [
        torch.empty(p.shape, dtype=torch.float32, device="meta", requires_grad=True)
        for p in params
    ]


def optimizer_step(
    opt: Any, params: list[torch.Tensor], masters: list[torch.Tensor], setup: StepSetup
) -> None:
    """The step as traced. Mixed precision: the half gradients are cast to fp32 on the
    masters (fp16 also unscaled: one multiply by 1/scale), the optimizer updates the masters,
    and the weights are copied back from them in half precision."""
    if setup.mixed:
        for p, m in zip(params, masters, strict=True):
            m.grad = None if p.grad is None else p.grad.to(torch.float32)
        grads = [m.grad for m in masters if m.grad is not None]
        if setup.precision == "fp16-mixed" and grads:
            torch._foreach_mul_(grads, 1.0 / 65536.0)  # GradScaler's unscale
    opt.step()
    if setup.mixed:
        with torch.no_grad():
            for p, m in zip(params, masters, strict=True):
                p.copy_(m)
        for m in masters:
            m.grad = None
