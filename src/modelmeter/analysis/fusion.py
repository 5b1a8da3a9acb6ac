"""Fusion as a what-if: the Report as a compiler that fuses kernels would run it, and what that
buys per module (bytes, kernels, predicted latency) against the unfused count.

A Report counts every op as its own kernel: each writes its output to memory and the next
reads it back. A compiling runtime (torch.compile, TensorRT, onnxruntime) fuses common chains
into one kernel. :func:`fuse` applies these rules (each switchable, :data:`RULES`; ``all``
is every one), in execution order (the records' ``seq``), to ops of one phase:

* ``elementwise``: an elementwise op or activation (not a softmax) that reads the output of
  the op just before it joins that op's kernel (its producer: a convolution, a matmul, a norm,
  another elementwise op ...);
* ``conv-bn-act``: a batch norm right after a convolution is folded into it (its FLOPs and
  the reads of its four vectors vanish: the scale and shift go into the convolution's
  weights and bias when the kernel is built, not at run time), and an activation after them
  joins;
* ``attention``: matmul, then (elementwise ops and) a softmax, then a matmul: one kernel, as
  flash attention runs it (the score matrix never reaches memory);
* ``cast``: a dtype cast (``_to_copy``, ONNX ``Cast``: one tensor in, the same elements out)
  is a pointwise op: it joins the kernel whose output it reads, and the other rules treat it
  as an elementwise op (a bfloat16 RMSNorm's casts to float32 and back);
* ``reduction``: a row reduction (sum, mean, max, var, var_mean, logsumexp, a softmax, a
  norm op) joins the pointwise chain that makes its input (``x^2 -> mean``), and a pointwise
  op after it joins when any of its inputs (not only the first: ``weight * x``) is a result
  of the reduction or of an op after it (by size; each of var_mean's two outputs is one);
  where it broadcasts that result over a larger tensor (the normalising
  ``x * rsqrt(mean(x^2) + eps)``, ``(x - mean) * rstd``), that larger input is taken to be
  a tensor of the kernel, read on chip: one made after the reduction, else the reduced
  chain's input, else (a kernel that starts at the reduction) the tensor it reduced. A decomposed RMSNorm, LayerNorm or
  softmax is one kernel, as inductor generates it;
* ``rotary``: the rotary embedding's ``x * cos + cat(-x2, x1) * sin`` (the rotated half):
  the ``neg`` of half of the tensor the kernel's last op read, followed by a ``cat`` of two
  such halves, joins that op's kernel, and the ``cat``, its multiply and the add after it
  follow: one kernel (inductor indexes the halves in place).

An op joins a kernel only if it reads the kernel's output so far, whole: by the storage ids
the records carry (:mod:`modelmeter.analysis.fusion_flow`; as its first or a largest input
under the first three rules and ``cast``, any input under ``reduction``), else, for records
without ids (a Report loaded from JSON), where its first input is as large (by size: a known
approximation, which fuses unrelated tensors of equal sizes). ``rotary`` matches by sizes
and, with ids, by storage too.
The fused kernel keeps the first op's name, shapes, dtype, unit and module (its kernel class,
and so its efficiency, is the producer's); its cost is the sum of its ops' less the tensors
that stay on chip::

    bytes_read    = sum of the ops' bytes read    - sum of the reads on chip
                    (- a folded batch norm's weight bytes)
    bytes_written = sum of the ops' bytes written - sum of the intermediates
    FLOPs, MACs   = the sums (less a folded batch norm's FLOPs)
    weight bytes  = the sum (less a folded batch norm's)

where an intermediate is the output of an op of the kernel that a later op of the kernel
reads (the output so far, or under ``reduction`` and ``rotary`` an earlier one: each is
subtracted from the written bytes once, unless an op after the kernel reads it as well (by
storage id: the plan's ``spills``; without ids none is found), whose write then stays),
and a read on chip is each such read, plus under ``rotary`` the halves of a tensor the
kernel has read already. Every term is an op's own count, so a fused kernel's counts stay
sums and differences of op counts (:mod:`modelmeter.analysis.generation_fusion` relies on
it). The kernel being built and the rules' tests live in
:mod:`modelmeter.analysis.fusion_kernel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from modelmeter.analysis.fusion_flow import Flow
from modelmeter.analysis.fusion_kernel import POINTWISE, RULES, Join, Kernel, is_cast, is_softmax
from modelmeter.analysis.kernels import record_class
from modelmeter.costs import OpRecord
from modelmeter.errors import InputError
from modelmeter.report import ModuleNode, Report


def parse_rules(text: str) -> tuple[str, ...]:
    """``all``, ``none`` or a comma-separated subset of :data:`RULES` (InputError otherwise)."""
    if text.strip() == "all":
        return RULES
    if text.strip() == "none":
        return ()
    rules = tuple(r.strip() for r in text.split(",") if r.strip())
    alone = [r for r in rules if r in ("all", "none")]
    if alone:
        raise InputError(f"fusion rule {alone[0]!r} stands alone (--fuse {alone[0]}); to pick "
                         f"rules, list some of {', '.join(RULES)}")
    bad = [r for r in rules if r not in RULES]
    if bad or not rules:
        raise InputError(f"unknown fusion rule {bad[0] if bad else text!r}; use all, none or "
                         f"some of {', '.join(RULES)}")
    return rules


@dataclass(frozen=True)
class FusionPlan:
    """Which op joins the kernel before it (the rule) or starts its own (None), in run
    order: the decisions :func:`fuse` takes on one Report, replayed by :meth:`apply` on a
    Report of the same ops whose costs differ (a decode step at another context, one
    device's share under tensor parallelism), whose shapes may no longer match its costs."""

    ops: tuple[str, ...]
    kinds: tuple[str, ...]
    joins: tuple[str | None, ...]
    chips: tuple[tuple[int, ...] | None, ...] = ()  # per join: the outputs read on chip
    spills: tuple[int, ...] = ()  # ops whose output, used on chip, is read after its kernel

    @property
    def kernels(self) -> int:
        return sum(1 for j in self.joins if j is None)

    def apply(self, report: Report, memo: dict[int, Any] | None = None) -> Report:
        """``report`` (the same ops, in the same run order) fused as planned; ``memo``: a
        dict kept between calls, so that a fused kernel whose ops are the same objects as
        last time is the same record (the roofline's memo then reuses its time)."""
        ops = _run_order(report)
        if tuple(rec.op for _, rec in ops) != self.ops:
            raise ValueError("the fusion plan was made for other ops")
        kernels: list[Kernel] = []
        starts: list[int] = []
        chips = self.chips or (None,) * len(ops)
        for i, ((module, rec), kind, rule, chip) in enumerate(
                zip(ops, self.kinds, self.joins, chips, strict=True)):  # fmt: skip
            if rule is None:
                kernels.append(Kernel.start(module, rec, kind))
                starts.append(i)
            else:
                kernels[-1].add(module, rec, kind, (rule, chip))
        for k, start in zip(kernels, starts, strict=True):
            k.spill([j - start for j in self.spills if start <= j < start + len(k.ops)])
        placed: dict[str, list[OpRecord]] = {node.name: [] for node in report.modules()}
        for i, k in enumerate(kernels):
            rec = k.record()
            if memo is not None and len(k.ops) > 1:
                parts = tuple(r for _, r in k.ops)
                seen = memo.get(i)
                if seen is not None and all(a is b for a, b in zip(seen[0], parts, strict=True)):
                    rec = seen[1]
                else:
                    memo[i] = (parts, rec)
            placed[k.ops[0][0]].append(rec)
        return replace(report, root=_rebuilt(report.root, placed))


def _run_order(report: Report) -> list[tuple[str, OpRecord]]:
    """(module name, record) of every op, in ``seq`` order (tree order when any is unknown)."""
    ops = [(node.name, rec) for node in report.modules() for rec in node.ops]
    if all(rec.seq >= 0 for _, rec in ops):
        ops.sort(key=lambda p: p[1].seq)
    return ops


def fusion_plan(report: Report, rules: tuple[str, ...] = RULES) -> FusionPlan:
    """The kernels ``rules`` make of ``report``'s ops (module docstring), as a plan."""
    ops = _run_order(report)
    kinds = ["elementwise" if "cast" in rules and is_cast(rec) else record_class(rec)
             for _, rec in ops]  # a cast is pointwise under "cast"
    kernels: list[Kernel] = []
    joins: list[Join | None] = []
    for i, (module, rec) in enumerate(ops):
        kind = kinds[i]
        after = ops[i + 1][1] if i + 1 < len(ops) else None
        join = kernels[-1].joins(rec, kind, rules, _softmax_next(ops, kinds, i), after) \
            if kernels else None
        joins.append(join)
        if join is None:
            kernels.append(Kernel.start(module, rec, kind))
        else:
            kernels[-1].add(module, rec, kind, join)
    return FusionPlan(tuple(rec.op for _, rec in ops), tuple(kinds),
                      tuple(j[0] if j else None for j in joins),
                      tuple(j[1] if j else None for j in joins), _spills(ops, kernels))


def _spills(ops: list[tuple[str, OpRecord]], kernels: list[Kernel]) -> tuple[int, ...]:
    """The ops (run-order index) whose output a kernel uses on chip and an op after that
    kernel reads as well (by storage id: none where the records have none)."""
    flow = Flow([rec for _, rec in ops])
    spills, start = [], 0
    for k in kernels:
        end = start + len(k.ops) - 1
        spills += [start + j for j in sorted(k.kept) if flow.read_after(start + j, end)]
        start = end + 1
    return tuple(spills)


def fuse(report: Report, rules: tuple[str, ...] = RULES) -> Report:
    """``report`` with the ops each rule fuses merged into one record each (module docstring);
    the Report itself is not changed. Ops run in their ``seq`` order (tree order when any is
    unknown)."""
    return fusion_plan(report, rules).apply(report)


def _softmax_next(ops: list[tuple[str, OpRecord]], kinds: list[str], i: int) -> bool:
    """Whether a softmax follows op ``i`` with only pointwise ops between."""
    for (_, rec), kind in zip(ops[i + 1:], kinds[i + 1:], strict=True):
        if is_softmax(rec):
            return True
        if kind not in POINTWISE:
            return False
    return False


def _rebuilt(node: ModuleNode, placed: dict[str, list[OpRecord]]) -> ModuleNode:
    return replace(node, ops=placed[node.name],
                   children=[_rebuilt(c, placed) for c in node.children])


@dataclass(frozen=True)
class FusionRow:
    """One module's subtree, unfused and fused."""

    name: str
    type: str
    depth: int
    kernels: int
    fused_kernels: int
    bytes: int
    fused_bytes: int
    latency_s: float
    fused_latency_s: float

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class FusionWhatIf:
    """What fusing would buy on a chip: per module and in total (schema modelmeter.fusion/1)."""

    model: str
    hardware: str
    rules: tuple[str, ...]
    runtime: str
    rows: list[FusionRow]
    notes: list[str] = field(default_factory=list)
    figures: str = "attainable"  # which figures priced it (attainable, datasheet, ideal)

    @property
    def total(self) -> FusionRow:
        return self.rows[0]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "modelmeter.fusion/1", "model": self.model, "hardware": self.hardware,
                "rules": list(self.rules), "runtime": self.runtime, "figures": self.figures,
                "total": self.total.to_dict(), "modules": [r.to_dict() for r in self.rows],
                "notes": list(self.notes)}


def fusion_whatif(report: Report, spec: Any, rules: tuple[str, ...] = RULES,
                  **pricing: Any) -> FusionWhatIf:
    """The roofline of ``report`` on ``spec`` unfused and fused by ``rules``, per module
    (``pricing``: the roofline's keyword arguments, e.g. ``runtime="graphs"``)."""
    from modelmeter.analysis.roofline import roofline

    before = roofline(report, spec, **pricing)
    after = roofline(fuse(report, rules), spec, **pricing)
    rows = []
    for node in report.modules():
        b, a = before.modules[node.name], after.modules[node.name]
        rows.append(FusionRow(node.name or "(model)", node.type, node.depth, b.kernels,
                              a.kernels, b.bytes, a.bytes, b.latency_s, a.latency_s))
    return FusionWhatIf(report.model, before.spec.name, rules, before.runtime, rows,
                        notes=list(before.notes), figures=before.figures)


__all__ = ["RULES", "FusionPlan", "FusionRow", "FusionWhatIf", "fuse", "fusion_plan",
           "fusion_whatif", "parse_rules"]
