"""The communication of tensor-parallel serving, per phase, and the plan's record.

Per forward pass (a prefill of P tokens, or a decode step of 1 token per sequence) over T
devices, as vLLM runs a Llama-shaped model:

- **2 all-reduces per transformer layer** of the layer's output, B x tokens x H at the
  activations' dtype: after attention's row-parallel output projection and after the MLP's
  row-parallel down projection (Megatron's split; the same two in a mixture-of-experts
  layer: its experts' down projections are row-parallel);
- **1 all-reduce after the vocabulary-parallel embedding** (each device looks up the tokens
  of its vocabulary slice, zeros elsewhere: vLLM's ``VocabParallelEmbedding`` all-reduces
  its output), the same size;
- **the logits**: the LM head is vocabulary-parallel (each device computes V/T logits of a
  position); vLLM computes them for the last position of each sequence only and gathers
  them, B x V at the activations' dtype: to rank 0 (``tensor_model_parallel_gather``), or to
  every device (an all-gather) where the platform asks for it (``use_all_gather``). Both
  send (T-1)/T of the buffer per device on a ring in T-1 steps: priced as an all-gather.

Each collective is priced on a ring over the node's link (:mod:`modelmeter.analysis.
collectives`: 2(T-1) steps of the link's latency plus 2(T-1)/T of the buffer over its
bandwidth for an all-reduce). Serving does not overlap them with compute (each all-reduce
feeds the next op): their time adds to the phase's.

``custom`` prices the all-reduces as vLLM's custom all-reduce does them over NVLink (its
kernels read the peers' buffers directly): up to 8 MB (its default ``max_size``) *one-shot*
— one step, each device reading the T-1 other buffers, (T-1) x S — for T = 2, or S below
512 KB with T <= 4, or below 256 KB with T <= 8; else *two-shot* (a reduce-scatter and an
all-gather by direct reads: 2 steps, 2(T-1)/T x S); above 8 MB NCCL's ring. The logits
gather stays a ring.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from modelmeter.analysis.collectives import Fabric
from modelmeter.analysis.serving_parallel import NODE_GPUS, DeviceWeights, ServingSplit
from modelmeter.costs import Cost

ALL_REDUCES = ("ring", "custom")
CUSTOM_MAX = 8 * 1024 * 1024  # vLLM's custom all-reduce: buffers up to 8 MB


def custom_kind(nbytes: int, tensor: int) -> str:
    """The algorithm vLLM's custom all-reduce runs for ``nbytes`` over ``tensor`` devices
    (``ring``: above its 8 MB, NCCL's)."""
    if nbytes > CUSTOM_MAX:
        return "ring"
    if tensor == 2 or (tensor <= 4 and nbytes < 512 * 1024) or nbytes < 256 * 1024:
        return "one-shot"
    return "two-shot"


def _all_reduce(fabric: Fabric, nbytes: int, tensor: int, algorithm: str) -> tuple[str, float,
                                                                                  float]:  # fmt: skip
    """(the algorithm run, bytes each device moves, time; 0 without a link) of one all-reduce."""
    kind = "ring" if algorithm == "ring" else custom_kind(nbytes, tensor)
    if kind == "ring":
        ring = fabric.ring("all-reduce", nbytes, tensor)
        return kind, ring.sent, ring.time_s
    ln = fabric.intra
    steps, moved = ((1, (tensor - 1) * nbytes) if kind == "one-shot"
                    else (2, 2 * (tensor - 1) * nbytes / tensor))  # fmt: skip
    time = 0.0 if ln is None else steps * ln.latency + moved / ln.bandwidth
    return kind, float(moved), time


@dataclass(frozen=True, slots=True)
class PhaseComm:
    """The collectives of one forward pass: ``all_reduces`` of ``all_reduce_bytes`` each and
    one gather of ``gather_bytes`` (the whole buffer); bytes each device sends and the time
    (None without a link)."""

    all_reduces: int
    all_reduce_bytes: int
    gather_bytes: int
    sent: float
    time_s: float | None
    algorithm: str = "ring"  # the all-reduces': ring, one-shot or two-shot

    def to_dict(self) -> dict[str, Any]:
        return {"all_reduces": self.all_reduces, "all_reduce_bytes": self.all_reduce_bytes,
                "all_reduce_algorithm": self.algorithm,
                "logits_gather_bytes": self.gather_bytes, "bytes_sent_per_device": self.sent,
                "time_s": self.time_s}  # fmt: skip


def phase_comm(fabric: Fabric, tensor: int, layers: int, boundary: int, logits: int,
               algorithm: str = "ring") -> PhaseComm:  # fmt: skip
    """``layers`` transformer layers whose output is ``boundary`` bytes, ``logits`` bytes of
    logits gathered: 2 all-reduces per layer and 1 after the embedding (module docstring),
    each by ``algorithm`` (``ALL_REDUCES``)."""
    n = 2 * layers + 1 if layers else 0
    kind, sent, ar_time = _all_reduce(fabric, boundary, tensor, algorithm)
    ga = fabric.ring("all-gather", logits, tensor)
    time = None if fabric.intra is None else n * ar_time + ga.time_s
    return PhaseComm(n, boundary, logits, n * sent + ga.sent, time, kind)


def serving_fabric(link: Any) -> Fabric:
    """The node the T devices sit in: the chip's intra-node link (None: bytes only)."""
    return Fabric(intra=link, gpus_per_node=NODE_GPUS, algorithm="ring")


@dataclass(frozen=True)
class TensorPlan:
    """What tensor parallelism does to a generation: the split, one device's weights, the
    shares of the activation peaks it holds, the communication of the prefill and of one
    decode step, the link."""

    split: ServingSplit
    weights: DeviceWeights
    prefill_activation_share: Fraction
    decode_activation_share: Fraction
    prefill: PhaseComm
    decode: PhaseComm
    link: str | None = None  # the link's name (nvlink4)
    link_name: str | None = None  # its display name
    notes: tuple[str, ...] = ()
    # one device's counts: the prefill and the first decode step (None: not priced yet)
    prefill_device: Cost | None = None
    decode_device: Cost | None = None
    all_reduce: str = "ring"  # the algorithm asked for (ALL_REDUCES)

    @property
    def tensor(self) -> int:
        return self.split.tensor

    def to_dict(self) -> dict[str, Any]:
        return {**self.split.to_dict(), **self.weights.to_dict(),
                "prefill_activation_share": float(self.prefill_activation_share),
                "decode_activation_share": float(self.decode_activation_share),
                "link": self.link, "all_reduce": self.all_reduce, "overlapped": False,
                "prefill_communication": self.prefill.to_dict(),
                "decode_step_communication": self.decode.to_dict(),
                "prefill_per_device": _cost(self.prefill_device),
                "decode_first_step_per_device": _cost(self.decode_device),
                "notes": list(self.notes)}  # fmt: skip


def _cost(c: Cost | None) -> dict[str, int] | None:
    return None if c is None else c.to_dict()


__all__ = ["ALL_REDUCES", "CUSTOM_MAX", "PhaseComm", "TensorPlan", "custom_kind", "phase_comm",
           "serving_fabric"]
