"""Tensor-parallel serving (vLLM's ``--tensor-parallel-size``, TensorRT-LLM's ``tp_size``):
what one of the T devices holds and computes in a generation. Pure arithmetic on traces and
Reports; the split rule is training's (:mod:`modelmeter.analysis.parallel`: the weight
matrices of ``SPLIT_TYPES`` split T ways, the rest replicated), with what serving adds:

- **Stacked experts** (a module whose own ops run ``aten._grouped_mm`` on its parameters)
  split T ways too: expert tensor parallelism, every expert's matrices column/row split as
  the dense MLP's are (vLLM's fused MoE under tensor parallelism). A router that is not a
  ``Linear`` (``MixtralTopKRouter``) is replicated, as vLLM's ``ReplicatedLinear`` gate.
- **Key/value heads**: T dividing the kv heads gives each device kv/T of them. T above them
  (T a multiple of kv) replicates each kv head on T/kv devices, as vLLM's
  ``QKVParallelLinear`` does: every device holds one head, so its K/V projection weights and
  its cache are ``ceil(kv/T)/kv`` of the whole, not 1/T (:attr:`ServingSplit.kv_share`).
  The projections are found as the ``Linear`` modules whose output has kv x head_dim
  features (a fused QKV projection is split 1/T as a whole: not modelled).

**Which ops a device runs whole** follows the data flow as training's tensor-parallel region
does (:mod:`modelmeter.frontends.torch.tp_region`), replayed on the trace's events: a matrix
product with a split weight operand flips its output between whole and split (column- then
row-parallel), any other op's output is split when a non-parameter input is (key/value
cache tensors are split: the cache is split by heads; a storage, named by its serial id,
stays split for as long as it lives, wherever it is read). Each event is then ``whole``
(norms, rotary tables, residual adds, the embedding lookup, masks, the router: every device
runs it in full), ``split`` (attention, the MLP's inner activations, the logits: 1/T of its
counts), ``column`` (a column-parallel product: 1/T of its weights and output, the whole
input read) or ``row`` (a row-parallel product: 1/T of its MACs and reads; its output, the
partial sums the all-reduce adds, whole). Ops reading or writing the KV cache take
``cache_share`` instead of 1/T (``kv_share``; a latent cache: whole). Counts are rounded up per op.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from math import ceil
from typing import Any

from modelmeter.analysis.experts import GROUPED_MM
from modelmeter.analysis.parallel import SPLIT_TYPES, check_heads
from modelmeter.costs import Cost
from modelmeter.errors import InputError

NODE_GPUS = 8  # the GPUs of one node (HGX/DGX): tensor parallel serving stays inside one
_PRODUCTS = frozenset({"mm", "addmm", "bmm", "baddbmm", "addbmm", "matmul", "linear", "mv",
                       "addmv", "_scaled_mm", "_grouped_mm"})  # fmt: skip
KINDS = ("whole", "split", "column", "row", "kv", "kv-column")


@dataclass(frozen=True, slots=True)
class ServingSplit:
    """The tensor-parallel degree and the heads it splits."""

    tensor: int
    heads: int | None = None
    kv_heads: int | None = None
    # the heads of the cache's tensors where they are not the kv heads: 1 for a latent that
    # every head reads (multi-head latent attention: DeepSeek-V2/V3's compressed keys and
    # values), which no device can hold a part of; None: the kv heads
    cache_heads: int | None = None

    @property
    def kv_per_device(self) -> int | None:
        """Key/value heads one device holds: ceil(kv / T) (1 when T > kv: replicated)."""
        return None if self.kv_heads is None else -(-self.kv_heads // self.tensor)

    @property
    def kv_replicas(self) -> int:
        """Devices holding each key/value head: T / kv when T exceeds them, else 1."""
        if self.kv_heads is None or self.tensor <= self.kv_heads:
            return 1
        return self.tensor // self.kv_heads

    @property
    def kv_share(self) -> Fraction:
        """The share of the KV cache (and of the K/V projections) one device holds."""
        if self.kv_heads is None:
            return Fraction(1, self.tensor)
        return Fraction(self.kv_per_device or 1, self.kv_heads)

    @property
    def cache_share(self) -> Fraction:
        """The share of the KV cache one device holds and reads: ``kv_share``, or for a cache
        of ``cache_heads`` heads ceil(n / T) / n of it (a latent: 1, whole on every device,
        as vLLM's MLA keeps it on every tensor-parallel rank)."""
        n = self.cache_heads
        return self.kv_share if n is None else Fraction(-(-n // self.tensor), n)

    def to_dict(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "heads": self.heads, "kv_heads": self.kv_heads,
                "kv_heads_per_device": self.kv_per_device, "kv_replicas": self.kv_replicas,
                "kv_share": str(self.kv_share), "cache_heads": self.cache_heads,
                "cache_share": str(self.cache_share)}  # fmt: skip


def check_serving(tensor: Any, heads: int | None, kv_heads: int | None) -> ServingSplit:
    """The split, or one InputError: T a whole number 1 .. 8 (one node), dividing the
    attention heads; the key/value heads divisible by T or T by them (vLLM's rule)."""
    if isinstance(tensor, bool) or not isinstance(tensor, int) or tensor < 1:
        raise InputError(f"tensor parallel degree must be a whole number >= 1 (got {tensor!r})")
    if tensor > NODE_GPUS:
        raise InputError(f"tensor parallel degree {tensor}: tensor-parallel serving runs within "
                         f"one node, at most {NODE_GPUS} GPUs (no pipeline parallelism here)")  # fmt: skip
    if tensor > 1 and heads is None:
        raise InputError("tensor parallelism needs the model's attention heads (a "
                         "transformers config's num_attention_heads); this model names none")  # fmt: skip
    check_heads(tensor, heads)
    if tensor > 1 and kv_heads is not None and kv_heads % tensor and tensor % kv_heads:
        raise InputError(f"tensor parallel degree {tensor} and the model's {kv_heads} "
                         "key/value heads: neither divides the other (vLLM's rule: each "
                         "device holds kv/T heads, or each head is replicated on T/kv devices)")  # fmt: skip
    return ServingSplit(tensor, heads, kv_heads)


def split_modules(modules: list[Any], report: Any = None) -> set[str]:
    """Names of the modules whose parameters are split T ways: ``SPLIT_TYPES`` (``modules``:
    objects with ``name`` and ``type``), and the stacked-experts modules whose own ops run
    a grouped matmul (from ``report``'s tree)."""
    names = {m.name for m in modules if m.type in SPLIT_TYPES}
    if report is not None:
        names |= {n.name for n in report.modules() if any(r.op == GROUPED_MM for r in n.ops)}
    return names


def event_kinds(events: list[Any], split_scopes: set[str],
                kv_scopes: set[str] = frozenset(),  # type: ignore[assignment]
                cache_split: bool = True) -> list[str]:  # fmt: skip
    """Each event's kind (``KINDS``, the module docstring's rule; ``kv_scopes``: the K/V
    projections of replicated kv heads, whose products are ``kv-column``; ``cache_split``
    False: the cache is whole on each device, a latent, so reading it splits nothing)."""
    split: set[int] = set()  # split storage ids
    out = []
    for ev in events:
        ins = ev.call.inputs
        weighted = any(t.weight for t in ins) and ev.scope in split_scopes
        inside = any((t.kv and cache_split) or t.sid in split for t in ins if not t.weight)
        name = ev.target.split(".")[-1] if "." in ev.target else ev.target
        product = weighted and name in _PRODUCTS
        kv = any(t.kv for t in (*ins, *ev.call.outputs))
        if product:
            kind = "row" if inside else "kv-column" if ev.scope in kv_scopes else "column"
            inside = not inside
        else:
            kind = "kv" if kv else "split" if inside else "whole"
        for t in ev.call.outputs:
            if inside:
                split.add(t.sid)
            else:
                split.discard(t.sid)
        out.append(kind)
    return out


def _part(n: int, share: Fraction) -> int:
    return ceil(n * share)


def device_cost(cost: Cost, kind: str, split: ServingSplit) -> Cost:
    """What one device does of an op of ``kind`` (the module docstring)."""
    if kind == "whole":
        return cost
    s = (split.cache_share if kind == "kv" else split.kv_share if kind == "kv-column"
         else Fraction(1, split.tensor))  # fmt: skip
    w = cost.weight_bytes
    if kind in ("column", "kv-column"):  # the whole input read, 1/T of the weights and the output
        acts = cost.bytes_read - w
        return Cost(_part(cost.macs, s), _part(cost.flops, s), acts + _part(w, s),
                    _part(cost.bytes_written, s), _part(w, s))  # fmt: skip
    written = cost.bytes_written if kind == "row" else _part(cost.bytes_written, s)
    return Cost(_part(cost.macs, s), _part(cost.flops, s), _part(cost.bytes_read, s), written,
                _part(w, s))  # fmt: skip


def scale_node_ops(report: Any, kinds: list[str], split: ServingSplit,
                   skip: set[tuple[int, int]] = frozenset()) -> None:  # type: ignore[assignment]  # fmt: skip
    """Rewrite ``report``'s op records in place to one device's share (records found by
    their ``seq``, the event's index; ``skip``: (id(node), index) pairs left alone)."""
    for node in report.modules():
        for j, rec in enumerate(node.ops):
            if (id(node), j) in skip or not 0 <= rec.seq < len(kinds):
                continue
            kind = kinds[rec.seq]
            if kind != "whole":
                node.ops[j] = replace(rec, cost=device_cost(rec.cost, kind, split))


class DeviceCurves:
    """One device's decode Reports: an ``OpCurves`` (rewritten in place: its templates are
    private copies) whose records are scaled to the device's share, the records that vary
    with the context again after each ``report_at``. ``kinds``: per piece, the event kinds
    of the trace its template was built from."""

    def __init__(self, curves: Any, kinds: list[list[str]], split: ServingSplit) -> None:
        self.curves, self.kinds, self.split = curves, kinds, split
        for i, template in enumerate(curves.templates):
            varying = {(id(node), j) for node, j, _ in curves._varying(i)}
            scale_node_ops(template, kinds[i], split, varying)

    def report_at(self, c: int) -> Any:
        report = self.curves.report_at(c)
        i = max(j for j, s in enumerate(self.curves.starts) if s <= c)
        for node, j, _ in self.curves._varying(i):
            rec = node.ops[j]
            if 0 <= rec.seq < len(self.kinds[i]) and self.kinds[i][rec.seq] != "whole":
                node.ops[j] = replace(rec, cost=device_cost(rec.cost, self.kinds[i][rec.seq],
                                                            self.split))  # fmt: skip
        return report

    def nondecreasing(self, c: int) -> bool:
        return self.curves.nondecreasing(c)


def kv_projections(report: Any, split: ServingSplit, head_dim: int | None) -> set[str]:
    """The ``Linear`` modules projecting the keys or the values (output features kv x
    head_dim, kv below the heads); empty when the kv heads are not replicated."""
    if split.kv_replicas == 1 or not head_dim or split.kv_heads is None:
        return set()
    width = split.kv_heads * head_dim
    return {n.name for n in report.modules() if n.type == "Linear" and n.output_shapes
            and n.output_shapes[0] and n.output_shapes[0][-1] == width}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DeviceWeights:
    """One device's weight bytes: the split modules' share and the replicated rest."""

    split: int  # bytes of the split modules' share on one device
    replicated: int  # bytes every device holds whole (norms, a router ...)
    whole_split: int  # the split modules' bytes over all devices

    @property
    def total(self) -> int:
        return self.split + self.replicated

    def to_dict(self) -> dict[str, int]:
        return {"weight_bytes_per_device": self.total, "split_bytes_per_device": self.split,
                "replicated_bytes": self.replicated, "split_bytes_whole": self.whole_split}  # fmt: skip


def device_weights(report: Any, split: ServingSplit, names: set[str],
                   kv_names: set[str] = frozenset()) -> DeviceWeights:  # type: ignore[assignment]  # fmt: skip
    """Weight bytes per device: each split module's own parameter bytes / T (rounded up;
    a replicated K/V projection's at ``kv_share``), the others whole."""
    part = replicated = whole = 0
    for node in report.modules():
        b = node.own.param_bytes
        if not b:
            continue
        if node.name in kv_names:
            part += _part(b, split.kv_share)
            whole += b
        elif node.name in names:
            part += _part(b, Fraction(1, split.tensor))
            whole += b
        else:
            replicated += b
    return DeviceWeights(part, replicated, whole)


def activation_share(events: list[Any], kinds: list[str], tensor: int) -> Fraction:
    """The share of a phase's activation peak one device holds, by replaying the events'
    storages (born at their first output, dead after their last use; parameters and cache
    apart) with the split ones at 1/T: the device's replayed peak over the whole one. An
    approximation: the traced peak (kept by Python's references) is scaled by it. Storage
    ids are serials never given twice (:mod:`modelmeter.frontends.torch.storage_ids`); an
    id an op outputs that none of its inputs has, seen before, starts a new entry (a view or
    an in-place op shares its input's storage)."""
    live: dict[int, int] = {}  # storage id -> its current entry
    spans: list[list[int]] = []  # per entry: born, last use, bytes, split (0/1)
    for i, ev in enumerate(events):
        ins = {t.sid for t in ev.call.inputs}
        for t in ev.call.inputs:
            if t.sid in live and not t.kv:
                spans[live[t.sid]][1] = i
        for t in ev.call.outputs:
            if t.weight or t.kv:  # the cache is counted apart
                continue
            n = ceil(t.numel * t.itemsize)
            if t.sid in live and t.sid in ins:
                entry = spans[live[t.sid]]
                entry[1], entry[2] = i, max(entry[2], n)
                continue
            live[t.sid] = len(spans)
            spans.append([i, i, n, int(kinds[i] in ("split", "column", "kv", "kv-column"))])
    return _peak_ratio(spans, len(events), tensor)


def _peak_ratio(spans: list[list[int]], length: int, tensor: int) -> Fraction:
    """The peak of the live bytes with split entries at 1/T over the peak of all of them."""
    whole = [0] * (length + 1)
    device = [Fraction(0)] * (length + 1)
    for born, last, n, is_split in spans:
        d = Fraction(n, tensor) if is_split else Fraction(n)
        whole[born] += n
        whole[last + 1] -= n
        device[born] += d
        device[last + 1] -= d
    live_w = peak_w = 0
    live_d = peak_d = Fraction(0)
    for w, d in zip(whole, device, strict=True):
        live_w, live_d = live_w + w, live_d + d
        peak_w, peak_d = max(peak_w, live_w), max(peak_d, live_d)
    return peak_d / peak_w if peak_w else Fraction(1)


__all__ = ["KINDS", "NODE_GPUS", "DeviceCurves", "DeviceWeights", "ServingSplit",
           "activation_share", "check_serving", "device_cost", "device_weights", "event_kinds",
           "kv_projections", "scale_node_ops", "split_modules"]  # fmt: skip
