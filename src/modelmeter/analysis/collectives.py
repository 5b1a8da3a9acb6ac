"""How long one collective takes on a cluster of nodes: the flat ring and the two-level
(hierarchical) algorithm, over the links of :mod:`modelmeter.hardware.links`. Pure arithmetic.

A group of g devices whose ranks are ``stride`` apart (a data-parallel group under tensor x
pipeline parallelism of r devices per replica has stride r) on nodes of n devices: l =
min(g, n / stride) of them share a node (1 when stride >= n), over m = g / l nodes.

**Ring** (Patarasuk & Yuan 2009; NCCL's rings) over an S-byte buffer: all-reduce sends
2(g-1)/g · S per device in 2(g-1) steps, reduce-scatter and all-gather (g-1)/g · S in g-1
steps; time = steps · latency + sent / bandwidth. Within one node it runs over the intra-node
link; a ring that crosses nodes runs at its slowest hop (the lower bandwidth and the higher
latency of the intra-node link and a GPU's share of the NICs): one ring, as a single NCCL
channel runs. In this model the hierarchical algorithm is never slower where it applies (it
sends the same 2(g-1)/g · S in all, each part over a link at least as fast as the ring's
slowest, in fewer steps); ``auto`` still compares the two.

**Hierarchical** (two levels, as NCCL's and Horovod's hierarchical all-reduce): an all-reduce
is a reduce-scatter among the l devices of each node over the intra-node link ((l-1)/l · S,
l-1 steps), an all-reduce of each device's 1/l shard among the m nodes over the NICs
(2(m-1)/m · S/l, 2(m-1) steps; the l shards of a node cross in parallel, one NIC per GPU), and
an all-gather inside the node ((l-1)/l · S, l-1 steps): the time is the sum of the three, each
with its own link's bandwidth and latency. A reduce-scatter is the first two stages with a
reduce-scatter across nodes ((m-1)/m · S/l); an all-gather the mirror image. NICs: one per GPU
(``nics_per_node`` = n; the DGX/HGX layout the links' figures assume); with k < n NICs the n
GPUs of a node share them, each at k/n of a NIC's bandwidth.

**All-to-all** (expert parallelism's token dispatch and combine) over g devices: each device
sends (g-1)/g · S, a slice of S/g to each of the g-1 others, priced as a pairwise exchange
(Thakur, Rabenseifner & Gropp 2005, "Optimization of collective communication operations in
MPICH", the long-message all-to-all): g-1 steps, one message each, so (g-1) · latency +
(g-1)/g · S / bandwidth. It is never hierarchical here; a group that spans nodes runs at its
slowest hop, as the flat ring does (NCCL posts the g-1 sends at once, so the latency term is
an upper bound; the bandwidth term is what a device's link must carry either way).

``auto`` (the default) takes the hierarchical algorithm where the group spans nodes and it is
faster than the ring, the ring otherwise; ``ring`` and ``hierarchical`` force one (a group
within one node, or one that does not split evenly into nodes, always runs the ring).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelmeter.errors import InputError
from modelmeter.hardware.links import Link, link

ALGORITHMS = ("auto", "ring", "hierarchical")


def ring_sent(kind: str, nbytes: float, devices: int) -> float:
    """Bytes each device sends in a ring ``kind`` of an ``nbytes`` buffer over ``devices``."""
    n = devices
    if kind == "send/recv":  # point to point: the whole buffer to the next stage
        return float(nbytes)
    if kind == "all-to-all":  # a slice of S/n to each of the n-1 others
        return (n - 1) * nbytes / n
    return (2 if kind == "all-reduce" else 1) * (n - 1) * nbytes / n


def ring_steps(kind: str, devices: int) -> int:
    if kind == "send/recv":
        return 1
    if kind == "all-to-all":  # pairwise exchange: one message per step
        return devices - 1
    return (2 if kind == "all-reduce" else 1) * (devices - 1)


def merged(near: Link, far: Link) -> Link:
    """The link a ring over nodes runs at: the slower bandwidth and latency of the two."""
    return Link(f"{near.name}+{far.name}", f"{near.display_name} within a node, "
                f"{far.display_name} between nodes", "inter", min(near.bandwidth, far.bandwidth),
                max(near.latency, far.latency), f"{near.source}; {far.source}")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Stage:
    """One stage of a collective: its kind, over how many devices, which link, the bytes each
    device sends, the message steps and the time (per run of the collective)."""

    kind: str
    group: int
    link: str
    sent: float
    steps: int
    time_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "group": self.group, "link": self.link, "sent": self.sent,
                "steps": self.steps, "time_s": self.time_s}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Priced:
    """A collective priced: the algorithm, bytes sent per device, time, its stages (one run)."""

    algorithm: str
    sent: float
    time_s: float
    stages: tuple[Stage, ...]

    @property
    def link(self) -> str:
        return "/".join(dict.fromkeys(s.link for s in self.stages if s.link))


def _stage(kind: str, nbytes: float, group: int, ln: Link | None) -> Stage:
    sent = ring_sent(kind, nbytes, group)
    steps = ring_steps(kind, group) if nbytes and group > 1 else 0
    time = 0.0 if ln is None else steps * ln.latency + sent / ln.bandwidth
    return Stage(kind, group, "" if ln is None else ln.name, sent, steps, time)


@dataclass(frozen=True, slots=True)
class Fabric:
    """The cluster a plan's collectives run on: the links within and between nodes (None: no
    link named, bytes only), devices per node, NICs per node (0: one per GPU) and the
    algorithm (see the module docstring)."""

    intra: Link | None = None
    inter: Link | None = None
    gpus_per_node: int = 8
    algorithm: str = "auto"
    nics_per_node: int = 0

    def span(self, group: int, stride: int = 1) -> tuple[int, int]:
        """(devices of the group per node, nodes it spans)."""
        n = self.gpus_per_node
        local = max(1, min(group, n // max(stride, 1)))
        return local, -(-group // local)

    def flat(self, group: int, stride: int = 1) -> Link | None:
        """The link a ring over the group runs at (None without links)."""
        if self.intra is None:
            return None
        local, nodes = self.span(group, stride)
        if nodes == 1:
            return self.intra
        if self.inter is None:
            raise InputError(f"{group * stride} devices over nodes of {self.gpus_per_node} "
                             "need an inter-node link: name one with --inter (e.g. ib-ndr)")  # fmt: skip
        return merged(self.intra, self.nic() or self.inter)

    def nic(self) -> Link | None:
        """The inter-node link as one GPU sees it: k NICs shared by the node's n GPUs."""
        k, n, far = self.nics_per_node, self.gpus_per_node, self.inter
        if far is None or not k or k >= n:
            return far
        return Link(far.name, far.display_name, far.scope, far.bandwidth * k / n, far.latency,
                    far.source, f"{k} NICs for {n} GPUs: {k}/{n} of a NIC each")  # fmt: skip

    def ring(self, kind: str, nbytes: int, group: int, stride: int = 1) -> Priced:
        st = _stage(kind, nbytes, group, self.flat(group, stride))
        return Priced("pairwise" if kind == "all-to-all" else "ring", st.sent, st.time_s, (st,))

    def hierarchical(self, kind: str, nbytes: int, group: int, stride: int = 1) -> Priced | None:
        """The two-level collective (None where the group is in one node, or does not split
        into nodes evenly, or has no link between nodes)."""
        local, nodes = self.span(group, stride)
        if kind not in ("all-reduce", "reduce-scatter", "all-gather") or nodes == 1 or (
            local * nodes != group or (self.intra is not None and self.inter is None)
        ):
            return None
        near, far, shard = self.intra, self.nic(), nbytes / local
        inner = "all-gather" if kind == "all-gather" else "reduce-scatter"
        stages = [_stage(inner, nbytes, local, near), _stage(kind, shard, nodes, far)]
        if kind == "all-gather":
            stages.reverse()
        elif kind == "all-reduce":
            stages.append(_stage("all-gather", nbytes, local, near))
        stages = [s for s in stages if s.group > 1]
        return Priced("hierarchical", sum(s.sent for s in stages),
                      sum(s.time_s for s in stages), tuple(stages))  # fmt: skip

    def price(self, kind: str, nbytes: int, group: int, stride: int = 1) -> Priced:
        """One run of the collective under the fabric's algorithm."""
        flat = self.ring(kind, nbytes, group, stride)
        if self.algorithm == "ring":
            return flat
        two = self.hierarchical(kind, nbytes, group, stride)
        if two is None:
            return flat
        if self.algorithm == "hierarchical" or two.time_s < flat.time_s:
            return two
        return flat


def fabric(intra: str | None, inter: str | None, gpus_per_node: int = 8,
           algorithm: str = "auto", nics_per_node: int = 0) -> Fabric:  # fmt: skip
    """The fabric of named links (an InputError names an unknown link or algorithm)."""
    if algorithm not in ALGORITHMS:
        raise InputError(f"unknown collective algorithm {algorithm!r}; use one of "
                         f"{', '.join(ALGORITHMS)}")  # fmt: skip
    if isinstance(nics_per_node, bool) or not isinstance(nics_per_node, int) or nics_per_node < 0:
        raise InputError(f"NICs per node must be a whole number >= 1 (got {nics_per_node!r})")
    try:
        near = None if intra is None else link(intra)
        far = None if inter is None else link(inter)
    except ValueError as e:
        raise InputError(str(e)) from None
    return Fabric(near, far, gpus_per_node, algorithm, nics_per_node)


__all__ = ["ALGORITHMS", "Fabric", "Priced", "Stage", "fabric", "merged", "ring_sent",
           "ring_steps"]  # fmt: skip
