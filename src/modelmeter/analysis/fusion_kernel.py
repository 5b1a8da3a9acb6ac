"""One fused kernel being built by :func:`modelmeter.analysis.fusion.fusion_plan`: which rule
lets the next op join it, and what the kernel then costs (the rules are described in
:mod:`modelmeter.analysis.fusion`'s docstring).

A join says which tensors the joining op reads on chip: the kernel's output so far (the
first three rules, and ``cast``), or, for the ``reduction`` and ``rotary`` rules, a list of
the kernel's ops whose outputs it reads (``chip``), with :data:`WHOLE` where everything the
op reads is already in the kernel (the rotated half of a tensor the kernel read) and
:data:`REREAD` where it reads again the tensor the kernel's reduction read (``x - mean(x)``
in a kernel that starts at the mean; by storage id, :data:`INPUT` where it reads again a
tensor an op of the kernel read, of its output's size). Each such
output is then read from chip (its bytes leave ``bytes_read``) and, the first time, never
written (they leave ``bytes_written``; :meth:`Kernel.spill` puts the write back where an op
after the kernel reads it too). Every byte figure is an op's own count, so a fused
kernel's counts are sums and differences of its ops' counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from modelmeter.analysis.fusion_flow import has_ids, reads_any, reads_output
from modelmeter.costs import Cost, OpRecord
from modelmeter.units import DTYPE_BYTES

RULES = ("elementwise", "conv-bn-act", "attention", "cast", "reduction", "rotary")
POINTWISE = ("elementwise", "activation")
WHOLE = -1  # in a join's chip list: all the op reads is already in the kernel
REREAD = -2  # in a join's chip list: what the kernel's last reduction read, read again
INPUT = -3  # in a join's chip list: a tensor the kernel read, of the op's output size, again
_CASTS = ("_to_copy", "convert_element_type", "Cast", "CastLike")
_TWO_OUTPUTS = ("var_mean", "std_mean")
_REDUCTIONS = ("sum", "nansum", "mean", "amax", "amin", "max", "min", "var", "std", "var_mean",
               "std_mean", "logsumexp", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin",
               "ReduceLogSumExp", "ReduceSumSquare", "ReduceL2")


def _base(rec: OpRecord) -> str:
    return rec.op.split(".", 1)[-1]


def is_softmax(rec: OpRecord) -> bool:
    return "softmax" in rec.op


def is_cast(rec: OpRecord) -> bool:
    """A dtype cast (``_to_copy``, ONNX ``Cast``) of one tensor: pointwise under ``cast``."""
    return _base(rec) in _CASTS and len(rec.shapes) == 1


def is_reduction(rec: OpRecord, kind: str) -> bool:
    """A row reduction a compiler fuses with its pointwise neighbours: sum, mean, max, var
    ..., a softmax, a norm."""
    if _batch_norm(rec):
        return False  # in inference a scale and shift per channel
    return kind == "norm" or is_softmax(rec) or (kind == "reduce" and _base(rec) in _REDUCTIONS)


def _batch_norm(rec: OpRecord) -> bool:
    return "batch_norm" in rec.op and rec.phase == "forward"


def input_bytes(rec: OpRecord) -> list[int]:
    """Each input's bytes by its shape and the record's dtype (a cast: what it reads)."""
    if is_cast(rec):
        return [rec.cost.bytes_read]
    size = DTYPE_BYTES.get(rec.dtype, 4)
    return [math.prod(s) * size for s in rec.shapes]


def first_input_bytes(rec: OpRecord) -> int:
    sizes = input_bytes(rec)
    return sizes[0] if sizes else -1


def _shares(rec: OpRecord, sids: tuple[int, ...]) -> bool:
    """``rec`` reads one of the storages ``sids`` (True where either has no ids)."""
    if not (has_ids(rec) and any(sids)):
        return True
    return bool({s for s in rec.reads if s} & set(sids))


def _rotated_half(neg: OpRecord, after: OpRecord | None) -> bool:
    """``neg`` is followed by a ``cat`` of two tensors of its output's size (-x2, x1)."""
    return after is not None and _base(after) == "cat" and \
        input_bytes(after) == [neg.cost.bytes_written] * 2  # fmt: skip


Join = tuple[str, tuple[int, ...] | None]  # the rule; the ops whose outputs it reads on chip


@dataclass
class Kernel:
    """One fused kernel being built: its ops (module name, record), cost and pattern state."""

    ops: list[tuple[str, OpRecord]]
    cost: Cost
    kinds: list[str]
    output_bytes: int  # of the kernel so far
    state: str = ""  # "softmax" inside an attention pattern; "rotary..." inside a rotary one
    folded: int = 0  # FLOPs of folded batch norms
    copied: int = 0  # bytes of copies (V made contiguous) the attention kernel reads in place
    outs: list[int] = field(default_factory=list)  # each op's output bytes
    kept: set[int] = field(default_factory=set)  # ops whose output never reaches memory
    last: int = 0  # the op whose output is the kernel's output so far
    reduced: int = -1  # the last reduction in the kernel
    rotary: int = -1  # the op whose output the rotary pattern adds to

    @classmethod
    def start(cls, module: str, rec: OpRecord, kind: str) -> Kernel:
        w = rec.cost.bytes_written
        return cls([(module, rec)], rec.cost, [kind], w, outs=[w],
                   reduced=0 if is_reduction(rec, kind) else -1)

    def joins(self, rec: OpRecord, kind: str, rules: tuple[str, ...],
              softmax_next: bool = False, after: OpRecord | None = None) -> Join | None:
        """The rule under which ``rec`` joins this kernel and the ops whose outputs it reads
        on chip (None: the output so far), or None: it starts its own kernel.
        ``softmax_next``: a softmax follows ``rec`` with only pointwise ops between;
        ``after``: the op after ``rec``."""
        if rec.phase != self.ops[0][1].phase:
            return None
        if "cast" in rules and is_cast(rec):
            return ("cast", None) if self._reads_last(rec) else None
        if "attention" in rules:
            attention = self._attention(rec, kind, softmax_next)
            if attention is not None:
                return attention, None
        new = self._new_rules(rec, kind, rules, after)
        if new is not None:
            return new
        old = self._old_rules(rec, kind, rules)
        return None if old is None else (old, None)

    def _attention(self, rec: OpRecord, kind: str, softmax_next: bool) -> str | None:
        if self.state == "softmax" and kind == "movement":
            return "attention-copy"  # V made contiguous: the fused kernel reads V as it is
        if self.kinds[0] != "matmul" or not self._reads_last(rec):
            return None
        if self.state == "" and set(self.kinds[1:]) <= set(POINTWISE) and (
            is_softmax(rec) or (kind in POINTWISE and softmax_next)
        ):  # the scores' scale, bias and mask, then the softmax
            return "attention"
        if self.state == "softmax" and (kind == "matmul" or kind in POINTWISE):
            return "attention"
        return None

    def _reads_last(self, rec: OpRecord) -> bool:
        """``rec`` reads the kernel's output so far: by storage id (whole, as its first or
        a largest input), else its first input is as large."""
        flow = reads_output(rec, self.ops[self.last][1], self.output_bytes, input_bytes(rec),
                            main=True)
        return first_input_bytes(rec) == self.output_bytes if flow is None else flow

    def _reads(self, rec: OpRecord, j: int, size: int, sizes: list[int]) -> bool:
        """``rec`` reads op ``j``'s output of ``size`` bytes: by storage id, else by size."""
        flow = reads_output(rec, self.ops[j][1], size, sizes)
        return size in sizes if flow is None else flow

    def _old_rules(self, rec: OpRecord, kind: str, rules: tuple[str, ...]) -> str | None:
        if not self._reads_last(rec):
            return None
        if "conv-bn-act" in rules and self.kinds[0] in ("conv", "grouped", "depthwise"):
            if _batch_norm(rec) and self.kinds == [self.kinds[0]]:
                return "conv-bn-act"
            if kind == "activation" and not is_softmax(rec) and len(self.kinds) <= 2:
                return "conv-bn-act"
        if "elementwise" in rules and kind in POINTWISE and not is_softmax(rec):
            return "elementwise"
        return None

    def _new_rules(self, rec: OpRecord, kind: str, rules: tuple[str, ...],
                   after: OpRecord | None) -> Join | None:
        tail = self.kinds[-1] in POINTWISE
        if "rotary" in rules:
            rotary = self._rotary(rec, kind, tail, after)
            if rotary is not None:
                return rotary
        if "reduction" not in rules or self.state == "softmax":
            return None
        if is_reduction(rec, kind) and tail and self._reads_last(rec):
            return "reduction", (self.last,)  # the pointwise chain that makes its input
        if self.reduced < 0 or kind not in POINTWISE or is_softmax(rec) or any(
                k not in POINTWISE for k in self.kinds[self.reduced + 1:]):  # fmt: skip
            return None
        sizes = input_bytes(rec)
        results = [j for j in range(self.last, self.reduced - 1, -1)
                   if self._reads(rec, j, self._piece(j), sizes)]
        if not results:
            return None  # it reads no result of the reduction (by id, else by size)
        hit, out = results[0], rec.cost.bytes_written
        if out > self._piece(hit) and sizes.count(out):  # broadcast: x * rsqrt(mean(x^2))
            over = self._broadcast_over(out) if not has_ids(rec) else self._over_by_id(rec, out)
            return "reduction", (hit,) if over is None else (hit, over)
        return "reduction", (hit,)

    def _piece(self, j: int) -> int:
        """The bytes of one output of op ``j`` (var_mean's, std_mean's: half of them)."""
        return self.outs[j] // (2 if _base(self.ops[j][1]) in _TWO_OUTPUTS else 1)

    def _broadcast_over(self, out: int) -> int | None:
        """The tensor of ``out`` bytes a reduction's result is broadcast over: one made
        after the reduction (``x - mean``), else the reduced chain's input (x of
        ``x^2 -> mean``), else the reduction's own input, read again (None: none is)."""
        after = [j for j in range(self.reduced + 1, self.last + 1) if self.outs[j] == out]
        chain = [j for j in range(self.reduced) if self.outs[j] == out]
        early = [j for j in chain if j < self.reduced - 1]
        if after or chain:
            return (after or early or chain)[-1]
        return REREAD if first_input_bytes(self.ops[self.reduced][1]) == out else None

    def _over_by_id(self, rec: OpRecord, out: int) -> int | None:
        """What :meth:`_broadcast_over` finds, by storage id: the output of an op of the
        kernel (after the reduction, else before it) that ``rec`` reads, else :data:`INPUT`
        where it reads again a tensor an op of the kernel read (None: neither)."""
        sizes = input_bytes(rec)
        after = [j for j in range(self.reduced + 1, self.last + 1)
                 if self._reads(rec, j, out, sizes)]
        chain = [j for j in range(self.reduced) if self._reads(rec, j, out, sizes)]
        if after or chain:
            return (after or chain)[-1]
        read = {s for _, r in self.ops for s in r.reads if s}
        return INPUT if reads_any(rec, read, out, sizes) else None

    def _rotary(self, rec: OpRecord, kind: str, tail: bool,
                after: OpRecord | None) -> Join | None:
        """x * cos + cat(-x2, x1) * sin: the neg of x's second half, the cat, its multiply
        and the add, into the kernel of x * cos (by sizes, and by storage ids where the
        records have them)."""
        base, last = _base(rec), self.ops[self.last][1]
        if base == "neg" and tail and self.state in ("", "done") and _rotated_half(rec, after) \
                and 2 * first_input_bytes(rec) == self.output_bytes \
                and _shares(rec, last.reads):  # fmt: skip
            return "rotary", (WHOLE,)  # reads half of what x * cos read
        if self.state == "rotary-neg" and base == "cat" and _shares(rec, last.writes):
            return "rotary", (WHOLE, self.last)  # -x2 on chip, x1 half of x again
        sizes = input_bytes(rec)
        if self.state == "rotary-cat" and kind in POINTWISE and \
                self._reads(rec, self.last, self.output_bytes, sizes):  # fmt: skip
            return "rotary", (self.last,)  # cat(-x2, x1) * sin
        both = sizes.count(self.output_bytes) == 2 and (not has_ids(rec) or (
            self._reads(rec, self.last, self.output_bytes, sizes)
            and self._reads(rec, self.rotary, self.outs[self.rotary], sizes)))
        if self.state == "rotary-mul" and kind in POINTWISE and both and \
                self.outs[self.rotary] == self.output_bytes:  # fmt: skip
            return "rotary", (self.last, self.rotary)  # x * cos + that
        return None

    def add(self, module: str, rec: OpRecord, kind: str, join: Join) -> None:
        """``rec`` joins under ``join`` (what :meth:`joins` returned, or its plan)."""
        rule, chip = join
        c = rec.cost
        self.ops.append((module, rec))
        self.kinds.append(kind)
        self.outs.append(c.bytes_written)
        here = len(self.ops) - 1
        if chip is not None:
            self._add_on_chip(c, rule, chip)
        elif rule == "attention-copy":  # V read where it lies: the copy writes nothing
            self.copied += c.bytes_written
            self.cost += Cost(bytes_read=c.bytes_read)
            self.kept.add(here)
            return
        else:
            self._add_after(rec, kind, rule)
        self.output_bytes = c.bytes_written
        self.last = here
        if rule == "attention":
            self.state = "softmax" if is_softmax(rec) else ("done" if kind == "matmul" else
                                                            self.state)
        if is_reduction(rec, kind):
            self.reduced = here

    def _add_after(self, rec: OpRecord, kind: str, rule: str) -> None:
        """Joins reading the kernel's output so far (the first three rules and ``cast``)."""
        c, inner = rec.cost, self.output_bytes
        flops, weights = c.flops, c.weight_bytes
        if rule == "conv-bn-act" and _batch_norm(rec):
            # folded into the convolution's weights and bias when the kernel is built: no
            # FLOP and no read of its own vectors (scale, shift, mean, variance) at run time
            self.folded += flops
            flops, weights = 0, 0
        unread = c.weight_bytes - weights
        copied = self.copied if kind == "matmul" else 0  # the copy's output, read in place
        self.copied -= copied
        self.cost = Cost(
            self.cost.macs + c.macs,
            self.cost.flops + flops,
            self.cost.bytes_read + c.bytes_read - inner - copied - unread,
            self.cost.bytes_written + c.bytes_written - inner,
            self.cost.weight_bytes + weights,
        )
        self.kept.add(self.last)

    def _add_on_chip(self, c: Cost, rule: str, chip: tuple[int, ...]) -> None:
        """Joins that name the ops whose outputs they read on chip (``reduction``,
        ``rotary``)."""
        ops = [j for j in chip if j >= 0]
        read = c.bytes_read if WHOLE in chip else sum(self._piece(j) for j in ops)
        if INPUT in chip:
            read += c.bytes_written  # the tensor it broadcasts over: its output's size
        if REREAD in chip:
            reduction = self.ops[self.reduced][1].cost
            read += reduction.bytes_read - reduction.weight_bytes
        unwritten = sum(self.outs[j] for j in set(ops) if j not in self.kept)
        self.kept.update(ops)
        self.cost = Cost(self.cost.macs + c.macs, self.cost.flops + c.flops,
                         self.cost.bytes_read + c.bytes_read - read,
                         self.cost.bytes_written + c.bytes_written - unwritten,
                         self.cost.weight_bytes + c.weight_bytes)
        if rule == "rotary":
            step = {"rotary-neg": "rotary-cat", "rotary-cat": "rotary-mul", "rotary-mul": ""}
            if self.state not in step:  # the neg
                self.rotary, self.state = self.last, "rotary-neg"
            else:
                self.state = step[self.state]

    def spill(self, ops: list[int]) -> None:
        """Ops of the kernel whose output, used on chip, an op after the kernel also reads:
        their writes reach memory after all (the reads on chip stay on chip)."""
        written = sum(self.outs[j] for j in ops if j in self.kept)
        self.cost = replace(self.cost, bytes_written=self.cost.bytes_written + written)

    def record(self) -> OpRecord:
        """The kernel as one record: the first op's, its cost, writing the last op's output."""
        first = self.ops[0][1]
        if len(self.ops) == 1:
            return first
        return replace(first, cost=self.cost, writes=self.ops[self.last][1].writes)


__all__ = ["INPUT", "POINTWISE", "REREAD", "RULES", "WHOLE", "Join", "Kernel", "first_input_bytes",
           "input_bytes", "is_cast", "is_reduction", "is_softmax"]
