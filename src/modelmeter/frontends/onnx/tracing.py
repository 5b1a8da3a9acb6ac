"""Tracing an ONNX graph into the same events as the PyTorch frontend produces.

``trace`` reads the model without its weights' bytes (:mod:`.load`), binds the user's input
shapes and symbolic dimensions (:mod:`.inputs`), infers every value's shape (:mod:`.shapes`),
maps node names onto a module tree (:mod:`.scopes`), sorts initializers into parameters,
buffers and constants (:mod:`.params`) and walks the nodes (:mod:`.walk`), turning each into
the OpCall its formula reads (:mod:`.adapters`). The builder then counts it exactly as it
counts a PyTorch trace. Decisions are written down in docs/onnx.md.
"""

from __future__ import annotations

from typing import Any

from modelmeter.events import ModuleInfo, ParamInfo, Trace
from modelmeter.frontends.onnx.inputs import apply, bind
from modelmeter.frontends.onnx.load import dtype_name, load_model, tensor_nbytes
from modelmeter.frontends.onnx.params import BUFFER, PARAM, classify
from modelmeter.frontends.onnx.scopes import ModuleTree, node_scope
from modelmeter.frontends.onnx.shapes import clear_value_info, diagnose, resolve
from modelmeter.frontends.onnx.walk import FLOATING, Val, Walker, implicit_inputs
from modelmeter.inputs import InputRequest
from modelmeter.report import InputSpec
from modelmeter.units import DTYPE_BYTES

# Ops that only transform one constant (their output is that constant, read differently).
_TRANSFORMS = {"Identity", "Transpose", "Cast", "CastLike", "Reshape", "Squeeze", "Unsqueeze",
               "Flatten"}


def trace(model: Any, request: InputRequest, *, convention: str = "exact") -> Trace:
    """Trace an ONNX model (a path to an ``.onnx`` file or an ``onnx.ModelProto``) on the
    inputs of ``request``: shapes or arrays of the graph inputs in order or by name, ``dims``
    (values of symbolic dimensions by name), ``batch`` (the first dimension of every input)
    and ``dtype`` (count bytes as if floating tensors had this dtype)."""
    loaded = load_model(model)
    proto = loaded.model
    graph = proto.graph
    binding = bind(graph, request)
    apply(graph, binding)
    if binding.changed:
        clear_value_info(proto)
    types, consts = resolve(proto)

    tree = ModuleTree()
    for node in graph.node:
        tree.add(node_scope(node))
    tree.fold_repeated_calls()

    kinds = classify(graph, _sources(graph))
    symbols = {d for gi in binding.inputs for d in (gi.dims or []) if isinstance(d, str)}
    walker = Walker(types, consts, convention, request.dtype, tree, symbols)
    walker.diagnose = _once(lambda: diagnose(proto))
    walker.graph_inputs = {gi.name for gi in binding.inputs}
    _define_initializers(walker, graph, kinds, request.dtype)
    for gi in binding.inputs:
        walker.define(gi.name, sid=walker.new_sid())
    for i, node in enumerate(graph.node):
        walker.step = i
        walker.node(node)

    return Trace(
        model=loaded.label,
        frontend="onnx",
        mode="meta",
        convention=convention,
        inputs=[_input_spec(walker, gi.name) for gi in binding.inputs],
        modules=_modules(tree, walker, graph),
        params=_params(walker, graph, kinds, request.dtype),
        events=walker.events,
        activation_bytes=walker.allocated,
        peak_activation_bytes=walker.peak(graph, [gi.name for gi in binding.inputs]),
        live_timeline=list(walker.timeline),  # filled by peak()
        notes=_notes(walker, loaded.inlined),
    )


def _define_initializers(
    walker: Walker, graph: Any, kinds: dict[str, str], dtype: str | None
) -> None:
    """Every initializer as a constant value of the walk (weights: parameters and buffers)."""
    for t in graph.initializer:
        sid = walker.new_sid()
        kind = kinds.get(t.name)
        shape = tuple(int(d) for d in t.dims)
        dt = dtype_name(t.data_type)
        if dtype and dt.startswith(FLOATING):
            dt = dtype
        walker.env[t.name] = Val(shape, dt, sid, weight=kind in (PARAM, BUFFER), const=True)
        walker.initializer_sids[t.name] = sid


def _params(
    walker: Walker, graph: Any, kinds: dict[str, str], dtype: str | None
) -> list[ParamInfo]:
    """The parameters and buffers among the initializers, in the graph's order."""
    params: list[ParamInfo] = []
    for t in graph.initializer:
        kind = kinds.get(t.name)
        if kind not in (PARAM, BUFFER):
            continue
        numel = 1
        for d in t.dims:
            numel *= int(d)
        nbytes = tensor_nbytes(t.data_type, t.dims)
        if dtype and dtype_name(t.data_type).startswith(FLOATING):
            nbytes = int(-(-numel * DTYPE_BYTES[dtype] // 1))
        params.append(
            ParamInfo(
                name=t.name,
                owner=walker.owners.get(t.name, ""),
                numel=numel,
                nbytes=nbytes,
                sid=walker.initializer_sids[t.name],
                trainable=kind == PARAM,
                buffer=kind == BUFFER,
            )
        )
    return params


def _notes(walker: Walker, inlined: int) -> list[str]:
    """The walk's notes, then what loading and walking the graph changed."""
    notes = list(walker.notes)
    if inlined:
        notes.append(
            f"{inlined} call(s) of the model's local functions inlined: their ops are "
            "counted one by one, in the scope of the graph (the call's module is not known)"
        )
    if walker.fused:
        done = ", ".join(f"{op.rpartition('.')[2]} x{n}" for op, n in walker.fused.items())
        notes.append(
            f"onnxruntime fused ops counted as the standard ops they fuse ({done}); their "
            "bytes are those of the parts, as if unfused"
        )
    if walker.folded:
        notes.append(
            f"{walker.folded} node(s) computing only from constants are folded when the model "
            "is loaded and not counted per inference"
        )
    return notes


def _once(fn: Any) -> Any:
    """``fn`` computed on the first call only."""
    memo: list[Any] = []

    def call() -> Any:
        if not memo:
            memo.append(fn())
        return memo[0]

    return call


def _sources(graph: Any) -> dict[str, str]:
    """Value -> the initializer it is a load-time transform of (through Identity, Transpose,
    Cast, Reshape ...)."""
    inits = {t.name for t in graph.initializer}
    sources: dict[str, str] = {}
    for node in graph.node:
        if node.op_type in _TRANSFORMS and node.input and node.output:
            src = sources.get(node.input[0], node.input[0])
            if src in inits:
                sources[node.output[0]] = src
    return sources


def _input_spec(walker: Walker, name: str) -> InputSpec:
    v = walker.env[name]
    dims = v.dims or ()
    shape = tuple(d if isinstance(d, int) else -1 for d in dims)
    return InputSpec(shape, v.dtype, name)


_GENERIC_GRAPH_NAMES = {"", "main_graph", "torch_jit", "torch-jit-export", "main", "graph"}


def _output_shapes(graph: Any, walker: Walker, tree: ModuleTree) -> dict[str, list[tuple]]:
    """Shapes of the values each module (its first call) writes and something outside it
    reads, in the order they are written; for the root, the graph outputs."""
    chains: list[tuple[str, ...]] = [node_scope(n).chain for n in graph.node]
    consumers: dict[str, list[str | None]] = {}
    for node, chain in zip(graph.node, chains):
        where = chain[-1] if chain else ""
        for name in (*node.input, *implicit_inputs(node)):
            if name:
                consumers.setdefault(name, []).append(where)
    for vi in graph.output:
        consumers.setdefault(vi.name, []).append(None)  # read outside every module
    out: dict[str, list[tuple]] = {}
    for node, chain in zip(graph.node, chains):
        for name in node.output:
            v = walker.env.get(name)
            if not name or v is None or v.const or not v.complete:
                continue
            readers = consumers.get(name, [])
            for mod in chain:
                if mod in tree.alias:
                    break
                if any(r is None or (r != mod and not r.startswith(mod + ".")) for r in readers):
                    out.setdefault(mod, []).append(tuple(v.dims))  # type: ignore[arg-type]
    root = []
    for vi in graph.output:
        v = walker.env.get(vi.name)
        if v is not None and v.complete:
            root.append(tuple(v.dims))  # type: ignore[arg-type]
    out[""] = root
    return out


def _modules(tree: ModuleTree, walker: Walker, graph: Any) -> list[ModuleInfo]:
    """The root, then every scope (parents first). A module's type is its class when the
    exporter recorded it, else the op type of a leaf whose ops all have one type, else
    ``Module``; the root's is the graph's name unless it is an exporter's generic one."""
    name = graph.name if graph.name not in _GENERIC_GRAPH_NAMES else "Graph"
    root_type = tree.root_class or name
    shapes = _output_shapes(graph, walker, tree)
    parents = set()
    for name in tree.order:
        parts = name.split(".")
        parents.update(".".join(parts[:i]) for i in range(1, len(parts)))
    out = [ModuleInfo("", root_type, 1, tuple(shapes.get("", ())))]
    for name in tree.order:
        typ = tree.classes.get(name)
        if typ is None:
            ops = walker.scope_ops.get(name, set())
            typ = next(iter(ops)) if len(ops) == 1 and name not in parents else "Module"
        out.append(ModuleInfo(name, typ, tree.calls.get(name, 1), tuple(shapes.get(name, ()))))
    return out


__all__ = ["trace"]
