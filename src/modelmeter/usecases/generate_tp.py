"""``generate(..., tensor_parallel=T)``: the generation as one of T devices serves it
(:mod:`modelmeter.analysis.serving_parallel` for the split, :mod:`modelmeter.analysis.
serving_comm` for the collectives). The use case traces the whole model as usual; this
module turns the traced phases into one device's: its share of each op (the prefill Report
and the decode curves the roofline prices), of the weights, of the KV cache (its kv heads)
and of the activation peaks, and adds the collectives' time to every phase."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction
from math import ceil
from typing import Any

from modelmeter.analysis.latent_split import settle
from modelmeter.analysis.parallel import heads_of, kv_heads_of, layout
from modelmeter.analysis.serving_comm import ALL_REDUCES, TensorPlan, phase_comm, serving_fabric
from modelmeter.analysis.serving_parallel import (
    DeviceCurves,
    activation_share,
    check_serving,
    device_weights,
    kv_projections,
    scale_node_ops,
    split_modules,
)
from modelmeter.errors import InputError

_HOW = {"ring": "all on a ring",
        "custom": "the all-reduces as vLLM's custom all-reduce up to 8 MB, a ring above"}


def serving(tensor: Any, all_reduce: Any, model: Any, spec: Any) -> TensorServing | None:
    """The split (None on one device); an InputError for a bad degree or algorithm."""
    if all_reduce not in ALL_REDUCES:
        raise InputError(f"unknown all-reduce {all_reduce!r}; use one of "
                         f"{', '.join(ALL_REDUCES)}")  # fmt: skip
    return None if tensor == 1 else TensorServing(tensor, model, spec, all_reduce)


class TensorServing:
    """The split of one model over ``tensor`` devices on ``spec``'s node (checked when made:
    an InputError says why it cannot run); ``all_reduce``: ``ring`` or ``custom``."""

    def __init__(self, tensor: int, model: Any, spec: Any, all_reduce: str = "ring") -> None:
        self.split = check_serving(tensor, heads_of(model), kv_heads_of(model))
        self.all_reduce = all_reduce
        config = getattr(model, "config", None)
        if config is not None and hasattr(config, "get_text_config"):
            config = config.get_text_config(decoder=True)
        heads = self.split.heads or 1
        hidden = getattr(config, "hidden_size", None)
        self.head_dim = getattr(config, "head_dim", None) or (hidden // heads if hidden else None)
        self.vocab = getattr(config, "vocab_size", None) or 0
        dtype = getattr(model, "dtype", None)
        self.element = getattr(dtype, "itemsize", 4) or 4
        self.link = None
        if spec is not None:
            name = getattr(spec, "intra_link", None)
            if name is None:
                raise InputError(f"--tp {tensor}: {spec.name} names no intra-node link "
                                 "([interconnect] intra in its chip file) to run the "
                                 "all-reduces over")  # fmt: skip
            from modelmeter.hardware.links import link

            self.link = link(name)

    @property
    def tensor(self) -> int:
        return self.split.tensor

    def kinds(self, trace: Any, report: Any) -> list[str]:
        """Each event's kind in ``trace`` (``report``: its Report, for the module tree)."""
        return self.settled(trace, report)[1]

    def settled(self, trace: Any, report: Any) -> tuple[set[str], list[str]]:
        """The split modules (less the linears a norm over their output features makes
        replicated: ``analysis/latent_split.py``) and each event's kind under them."""
        names = split_modules(trace.modules, report)
        kv = kv_projections(report, self.split, self.head_dim)
        return settle(trace.events, names, kv, self.split.cache_share < 1)

    def prefill(self, trace: Any, report: Any, timed: Any, copy: Any) -> Any:
        """One device's prefill Report: ``timed`` (a copy when it is the traced ``report``)
        rewritten to the device's share."""
        out = copy() if timed is report else timed
        scale_node_ops(out, self.kinds(trace, report), self.split)
        return out

    def decode(self, ops: Any, step: Any) -> DeviceCurves:
        """One device's decode curves (``step(c)``: the traced context ``c``)."""
        kinds = []
        for start in ops.starts:
            d, report, _ = step(start)
            kinds.append(self.kinds(d.trace, report))
        return DeviceCurves(ops, kinds, self.split)

    def use_cache(self, template: Any) -> None:
        """Take the cache's heads from its layers (``LayerCache``: keys B x heads x S x D):
        where every layer's differ from the kv heads (1: a latent cache, multi-head latent
        attention), the cache is shared by the split as ``ServingSplit.cache_share`` says."""
        heads = {x.key_shape[1] for x in template if len(x.key_shape) == 4}
        if len(heads) == 1 and (h := heads.pop()) != self.split.kv_heads:
            self.split = replace(self.split, cache_heads=h)

    def held(self, held: Any) -> Any:
        """A cache's bytes per layer after T tokens, one device's share of them."""
        share = self.split.cache_share
        return lambda t: [ceil(b * share) for b in held(t)]

    def plan(self, traces: tuple[Any, Any], reports: tuple[Any, Any], batch: int) -> TensorPlan:
        """The plan: weights, activation shares, collectives (``traces``/``reports``: the
        prefill's and the first decode step's)."""
        kinds = [self.kinds(t, r) for t, r in zip(traces, reports, strict=True)]
        names = self.settled(traces[0], reports[0])[0]
        kv = kv_projections(reports[0], self.split, self.head_dim)
        weights = device_weights(reports[0], self.split, names, kv)
        shares = [activation_share(t.events, k, self.tensor) for t, k in
                  zip(traces, kinds, strict=True)]  # fmt: skip
        fab = serving_fabric(self.link)
        logits = batch * self.vocab * self.element
        comms = []
        for r in reports:
            lay = layout(r, self.split.heads, self.element, self.split.kv_heads)
            comms.append(phase_comm(fab, self.tensor, lay.layers, lay.boundary_bytes, logits,
                                    self.all_reduce))  # fmt: skip
        return TensorPlan(self.split, weights, shares[0], shares[1], comms[0], comms[1],
                          None if self.link is None else self.link.name,
                          None if self.link is None else self.link.display_name,
                          self.notes(comms[0].all_reduces), all_reduce=self.all_reduce)  # fmt: skip

    def notes(self, all_reduces: int) -> tuple[str, ...]:
        s = self.split
        out = [f"tensor parallel {s.tensor}: one device of {s.tensor} (weights, KV cache, "
               "activations and time per device; the phase counts above are the whole "
               "replica's); Linear, Embedding and stacked-expert weights split "
               f"{s.tensor} ways, the rest (norms, router) replicated; {all_reduces} "
               "all-reduces per forward pass (2 per layer, 1 after the embedding) and the "
               f"last position's logits gathered ({_HOW[self.all_reduce]}), not overlapped "
               "with compute"]
        if s.kv_replicas > 1:
            out.append(f"tensor parallel {s.tensor} > {s.kv_heads} key/value heads: each kv "
                       f"head replicated on {s.kv_replicas} devices (vLLM), one per device: "
                       f"KV cache and K/V projections per device are 1/{s.kv_heads} of the "
                       "whole, not 1/" + str(s.tensor))  # fmt: skip
        if s.cache_heads is not None:
            out.append(f"the KV cache holds {s.cache_heads} head{'s' if s.cache_heads > 1 else ''}"
                       f" per layer, not the {s.kv_heads} key/value heads (a latent the heads "
                       f"expand: multi-head latent attention): {s.cache_share} of it per "
                       "device, as vLLM keeps it")  # fmt: skip
        out.append("activations per device: the traced peak x the share of it a replay of "
                   "the phase's tensors with the split ones at 1/T gives (an approximation)")
        return tuple(out)


def device_memory(memory: Any, plan: TensorPlan) -> Any:
    """``memory`` (its cache already one device's) with one device's weights and
    activation peaks."""
    return replace(memory, weight_bytes=plan.weights.total,
                   prefill_activation_bytes=_times(memory.prefill_activation_bytes,
                                                   plan.prefill_activation_share),
                   decode_activation_bytes=_times(memory.decode_activation_bytes,
                                                  plan.decode_activation_share))  # fmt: skip


def _times(n: int, share: Fraction) -> int:
    return ceil(n * share)


def with_communication(timing: Any, plan: TensorPlan, new: int) -> Any:
    """``timing`` with the collectives' time added to the prefill and every decode step."""
    if timing is None or plan.prefill.time_s is None or plan.decode.time_s is None:
        return timing
    pre, dec = plan.prefill.time_s, plan.decode.time_s
    note = (f"tensor parallel {plan.tensor}: communication over {plan.link_name} "
            f"({plan.all_reduce} all-reduce, not overlapped): {pre * 1e3:.3f} ms in the "
            f"prefill, {dec * 1e6:.1f} us per decode step, included in the times")  # fmt: skip
    return replace(timing, ttft_s=timing.ttft_s + pre, decode_first_s=timing.decode_first_s + dec,
                   decode_last_s=timing.decode_last_s + dec,
                   decode_total_s=timing.decode_total_s + new * dec,
                   times=tuple(t + dec for t in timing.times),
                   notes=(*timing.notes, note))  # fmt: skip


__all__ = ["TensorServing", "device_memory", "serving", "with_communication"]
