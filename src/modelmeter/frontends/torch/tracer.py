"""ATen-level tracing: a TorchDispatchMode that sees every op, and global module hooks that
say which module is running. Both are installed only while a trace runs and removed in
``finally`` blocks; nothing is attached to the user's modules.

Threads: the dispatch mode is per thread (PyTorch's mode stack is thread-local). Module
hooks are process-wide: installed once for all running traces (counted under a lock, the
last to end removes them), each call goes to the calling thread's innermost tracker; threads
that trace nothing are ignored. The autograd hooks of a backward trace are removed when it
ends: left in place they keep the graph, parameter copies and gradients alive in a cycle
through the autograd engine that the garbage collector cannot see."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.autograd.graph import register_multi_grad_hook
from torch.nn.modules import module as _nn_module
from torch.utils._python_dispatch import TorchDispatchMode

from modelmeter.events import OpEvent
from modelmeter.frontends.torch.blame import Blame
from modelmeter.frontends.torch.firstuse import settle
from modelmeter.frontends.torch.lifetimes import Lifetimes
from modelmeter.frontends.torch.metakernels import run as _run
from modelmeter.frontends.torch.packed import STORED, is_packed, packed_metas
from modelmeter.frontends.torch.storage_ids import storage_id
from modelmeter.frontends.torch.views import distinct as _distinct
from modelmeter.host import pause_collector, resume_collector
from modelmeter.registry import OpCall, TensorMeta, ZeroCost, lookup

# Ops that only query metadata; returning NotImplemented lets the tensor answer itself.
_METADATA_QUERIES = {
    "is_contiguous",
    "sym_is_contiguous",
    "is_strides_like_format",
    "is_non_overlapping_and_dense",
    "size",
    "sym_size",
    "stride",
    "sym_stride",
    "storage_offset",
    "sym_storage_offset",
    "numel",
    "sym_numel",
    "dim",
    "layout",
}

_DTYPE_NAMES: dict[torch.dtype, str] = {}
_PLAIN = {int, float, bool, str, type(None)}


def dtype_name(dtype: torch.dtype) -> str:
    """``float32``; a quantised dtype by what its elements are stored in (quint8 -> uint8)."""
    name = _DTYPE_NAMES.get(dtype)
    if name is None:
        name = str(dtype).removeprefix("torch.")
        name = _DTYPE_NAMES[dtype] = STORED.get(name, name)
    return name


class ScopeTracker:
    """Keeps the stack of running modules through global forward hooks."""

    def __init__(self, names: dict[int, str], backward: bool = False) -> None:
        self.names = names
        self.backward = backward  # also follow modules through the backward pass
        self.in_backward = False
        self.stack: list[str] = [""]
        self.bw_stack: list[str] = [""]
        self.calls: dict[str, int] = {}
        self.output_shapes: dict[str, tuple[tuple[int, ...], ...]] = {}
        self.last_entered: tuple[str, str, tuple] | None = None
        self.blame = Blame()  # the innermost module running when an error was raised
        self._handles: list[Any] = []

    @property
    def scope(self) -> str:
        return self.bw_stack[-1] if self.in_backward else self.stack[-1]

    def _bw_enter(self, output: Any, name: str) -> None:
        """Before the autograd nodes that made the module's outputs run, its backward begins.
        (Node pre-hooks also fire for the graph's roots, which tensor hooks miss.)"""

        def enter(*_: Any) -> None:
            top = self.bw_stack[-1]
            # an enclosing module sharing this output adds nothing: the innermost stays on top
            if top != name and not (name == "" or top.startswith(name + ".")):
                self.bw_stack.append(name)

        nodes = {id(t.grad_fn): t.grad_fn for t in _tensors(output) if t.grad_fn is not None}
        for node in nodes.values():
            self._handles.append(node.register_prehook(enter))

    def _bw_exit(self, name: str):  # noqa: ANN202
        def exit_(*_: Any) -> None:
            for i in range(len(self.bw_stack) - 1, 0, -1):
                if self.bw_stack[i] == name:
                    del self.bw_stack[i]
                    break

        return exit_

    def _grad_hook(self, obj: Any, fn: Any) -> None:
        tensors = [t for t in _tensors(obj) if t.requires_grad]
        if tensors:
            self._handles.append(register_multi_grad_hook(tensors, fn))

    def _pre(self, module: torch.nn.Module, args: tuple) -> None:
        name = self.names.get(id(module))
        if name is None:  # a module created inside forward: ops stay with the caller
            name = self.stack[-1]
            self.blame.enter(self.blame.running[-1] if self.blame.running else None)
        else:
            self.calls[name] = self.calls.get(name, 0) + 1
            shapes = (
                tuple(a.shape for a in args)
                if all(type(a) is torch.Tensor for a in args)
                else _shapes(args)
            )
            self.last_entered = (name, type(module).__name__, shapes)
            self.blame.enter(self.last_entered)
            if self.backward:  # grads of the inputs ready: this module's backward is done
                self._grad_hook(args, self._bw_exit(name))
        self.stack.append(name)

    def _post(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        self.blame.exit()
        if len(self.stack) > 1:
            name = self.stack.pop()
            if self.names.get(id(module)) == name:
                if name not in self.output_shapes:
                    self.output_shapes[name] = _shapes(output)
                if self.backward:
                    self._bw_enter(output, name)

    @contextmanager
    def installed(self) -> Iterator[ScopeTracker]:
        """This thread's module calls go to this tracker until the block ends."""
        trackers = _current_trackers()
        with _global_hooks():
            trackers.append(self)
            try:
                yield self
            finally:
                trackers.remove(self)
                self.stack[1:] = []
                self.blame.clear()
                self.release()

    def release(self) -> None:
        """Remove the autograd hooks of the backward pass (see the module docstring)."""
        handles, self._handles = self._handles, []
        for h in handles:
            h.remove()


_LOCAL = threading.local()
_HOOKS_LOCK = threading.Lock()
_HOOKS: list[Any] = []  # the global hook handles while any trace runs
_USERS = 0  # traces running (in any thread)


def _current_trackers() -> list[ScopeTracker]:
    trackers = getattr(_LOCAL, "trackers", None)
    if trackers is None:
        trackers = _LOCAL.trackers = []
    return trackers


def _tracker() -> ScopeTracker | None:
    trackers = getattr(_LOCAL, "trackers", None)
    return trackers[-1] if trackers else None


def _global_pre(module: torch.nn.Module, args: tuple) -> None:
    tracker = _tracker()
    if tracker is not None:
        tracker._pre(module, args)


def _global_post(module: torch.nn.Module, args: tuple, output: Any) -> None:
    tracker = _tracker()
    if tracker is not None:
        tracker._post(module, args, output)


@contextmanager
def _global_hooks() -> Iterator[None]:
    """The process-wide module hooks, installed by the first running trace and removed by
    the last (the lock is held only to count, never while a forward runs)."""
    global _USERS
    with _HOOKS_LOCK:
        if _USERS == 0:
            _HOOKS.append(_nn_module.register_module_forward_pre_hook(_global_pre))
            try:
                post = _nn_module.register_module_forward_hook(_global_post, always_call=True)
            except TypeError:  # older torch without always_call
                post = _nn_module.register_module_forward_hook(_global_post)
            _HOOKS.append(post)
        _USERS += 1
    try:
        yield
    finally:
        with _HOOKS_LOCK:
            _USERS -= 1
            if _USERS == 0:
                for h in _HOOKS:
                    h.remove()
                _HOOKS.clear()


def _shapes(obj: Any) -> tuple[tuple[int, ...], ...]:
    out: list[tuple[int, ...]] = []
    for t in _tensors(obj):
        out.append(tuple(t.shape))
    return tuple(out)


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)
    elif hasattr(obj, "to_tuple"):  # transformers ModelOutput
        yield from _tensors(obj.to_tuple())


class OpTracer(TorchDispatchMode):
    """Emits one OpEvent per ATen op; decomposes ops the registry does not know.

    Python's cyclic garbage collector is paused while it is active: a model that leaves
    tensors in reference cycles (transformers' MoE layers do) would otherwise see them freed
    whenever the collector happens to run, and its peak of live bytes would change from run
    to run. Paused, such tensors stay live until the trace ends: the same figure every time."""

    def __init__(
        self,
        scopes: ScopeTracker,
        weights: set[int],
        lifetimes: Lifetimes,
        convention: str,
    ) -> None:
        super().__init__()
        self.scopes = scopes
        self.weights = weights
        self.lifetimes = lifetimes
        self.convention = convention
        self.events: list[OpEvent] = []
        self.phase = "forward"
        self.kv: set[int] = set()  # storages of a KV cache (kvcache.py keeps it)
        self.writing_kv = False  # inside a cache's update: its outputs are cache storage
        self._argnames: dict[Any, list[str]] = {}
        self._outs: dict[Any, frozenset[str]] = {}
        self._info: dict[Any, tuple[str, Any]] = {}

    def __enter__(self) -> OpTracer:
        settle()  # PyTorch's first-use imports, not inside the forward (firstuse.py)
        pause_collector()  # counted across threads: off until the last trace running ends
        return super().__enter__()

    def __exit__(self, *exc: Any) -> Any:
        try:
            return super().__exit__(*exc)
        finally:
            resume_collector()

    def _meta(self, t: torch.Tensor) -> TensorMeta:
        sid = storage_id(t)
        shape = tuple(t.shape)
        w = sid in self.weights
        return TensorMeta(shape, dtype_name(t.dtype), sid, w, _distinct(t), sid in self.kv)

    def _convert(self, value: Any, inputs: list[TensorMeta]) -> Any:
        if type(value) in _PLAIN:
            return value
        if isinstance(value, torch.Tensor):
            m = self._meta(value)
            inputs.append(m)
            return m
        if isinstance(value, (list, tuple)):
            for v in value:
                if type(v) not in _PLAIN:
                    return tuple(self._convert(v, inputs) for v in value)
            return value
        if isinstance(value, (torch.dtype, torch.device, torch.memory_format, torch.layout)):
            return str(value).removeprefix("torch.")
        if is_packed(value):  # a quantised module's packed weights: read as weights
            metas = packed_metas(value, self.weights)
            inputs.extend(metas)
            return metas
        return value

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        info = self._info.get(func)
        if info is None:
            target = func.__name__.split(".")[0]
            if func.namespace not in ("aten", "prims"):  # e.g. torchvision.nms
                target = f"{func.namespace}.{target}"
            info = self._info[func] = (target, lookup("aten", target))
        target, entry = info
        if target in _METADATA_QUERIES:
            return NotImplemented
        if entry is None:
            with self:
                r = func.decompose(*args, **kwargs)
            if r is not NotImplemented:
                return r
            decomp = _core_decompositions().get(func)
            if decomp is not None:
                with self:
                    return decomp(*args, **kwargs)
        out = self._execute(func, target, args, kwargs)
        if isinstance(entry, ZeroCost):  # views keep storages alive, nothing more
            if type(out) is torch.Tensor:
                self.lifetimes.track(out, storage_id(out))
            else:
                for t in _tensors(out):
                    self.lifetimes.track(t, storage_id(t))
        else:
            self._emit(func, target, args, kwargs, out)
        return out

    def _execute(self, func: Any, target: str, args: tuple, kwargs: dict) -> Any:
        """Run the op (a subclass may skip what changes nothing it records)."""
        return _run(func, target, args, kwargs)

    def _emit(self, func: Any, target: str, args: tuple, kwargs: dict, out: Any) -> None:
        names = self._argnames.get(func)
        if names is None:
            schema = func._schema.arguments
            names = self._argnames[func] = [a.name for a in schema]
            self._outs[func] = frozenset(a.name for a in schema if a.is_out)
        outs = self._outs[func]
        inputs: list[TensorMeta] = []
        written: list[TensorMeta] = []  # out= arguments are written, not read
        named: dict[str, Any] = {}
        for i, value in enumerate(args):
            name = names[i] if i < len(names) else f"arg{i}"
            named[name] = self._convert(value, written if name in outs else inputs)
        for k, value in kwargs.items():
            named[k] = self._convert(value, written if k in outs else inputs)
        outputs = []
        for t in _tensors(out):
            sid = storage_id(t)
            kv = self.writing_kv or sid in self.kv
            outputs.append(TensorMeta(tuple(t.shape), dtype_name(t.dtype), sid, False, kv=kv))
            self.lifetimes.track(t, sid)
        call = OpCall(target, named, tuple(inputs), tuple(outputs), self.convention)
        self.events.append(OpEvent(self.scopes.scope, "aten", target, call, self.phase))


_CORE_DECOMP: dict | None = None


def _core_decompositions() -> dict:
    global _CORE_DECOMP
    if _CORE_DECOMP is None:
        from torch._decomp import decomposition_table

        _CORE_DECOMP = dict(decomposition_table)
    return _CORE_DECOMP
