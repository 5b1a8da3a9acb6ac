"""Interconnects: the links a device talks to the others over, with each figure's source.

A :class:`Link`'s ``bandwidth`` is bytes/s **per direction, per device** (what one GPU can
send while it receives as much): the datasheets' NVLink figures are totals of both directions
("900 GB/s" for an H100 = 450 GB/s each way), the NICs' are per direction per port (400 Gb/s
= 50 GB/s), PCIe x16 per direction after the line code (gen3 8 GT/s x 16 lanes x 128/130 / 8
= 15.75 GB/s). ``latency`` is the time one message step of a collective costs before its
bytes flow (the alpha of the alpha-beta model): an estimate, stated as such. ``scope`` says
where the link is used: ``intra`` between the GPUs of one node, ``inter`` between nodes (one
NIC per GPU, as in NVIDIA's DGX/HGX nodes).

A chip's file names its usual links in ``[interconnect]`` (``intra``, ``inter``); a plan may
name others (``modelmeter train --intra pcie4 --inter eth-100g``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Link:
    """One kind of link: bytes/s per direction per device, latency per message step (s)."""

    name: str
    display_name: str
    scope: str  # "intra" (within a node) or "inter" (between nodes)
    bandwidth: float
    latency: float
    source: str
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "display_name": self.display_name, "scope": self.scope,
                "bandwidth_per_direction": self.bandwidth, "latency_s": self.latency,
                "source": self.source, "notes": self.notes}  # fmt: skip


_NVL = "total of both directions per GPU in the datasheet; the figure here is half of it"
_PCIE = ("PCI-SIG base specification: {gt} GT/s per lane, 128b/130b line code, x16: "
         "{gt} x 16 x 128/130 / 8 = {bw} GB/s per direction")  # fmt: skip
_NIC = "per direction per port (one NIC per GPU, as in NVIDIA DGX nodes): {gb} Gb/s / 8 = {bw} GB/s"
_LAT_NVL = "latency 2 us per step: an estimate (NCCL's small-message all-reduce on one node)"
_LAT_NET = "latency {us} us per step: an estimate (port-to-port plus software, small messages)"

LINKS: dict[str, Link] = {
    link.name: link
    for link in (
        Link("nvlink2", "NVLink 2 (V100 SXM2)", "intra", 150e9, 2e-6,
             "NVIDIA Tesla V100 datasheet: NVLink 300 GB/s", f"{_NVL}; {_LAT_NVL}"),
        Link("nvlink3", "NVLink 3 (A100 SXM)", "intra", 300e9, 2e-6,
             "NVIDIA A100 datasheet: NVLink 600 GB/s", f"{_NVL}; {_LAT_NVL}"),
        Link("nvlink4", "NVLink 4 (H100/H200 SXM)", "intra", 450e9, 2e-6,
             "NVIDIA H100 and H200 datasheets: NVLink 900 GB/s", f"{_NVL}; {_LAT_NVL}"),
        Link("pcie3", "PCIe gen3 x16", "intra", 15.75e9, 5e-6,
             _PCIE.format(gt=8, bw=15.75), "through the host: latency 5 us, an estimate"),
        Link("pcie4", "PCIe gen4 x16", "intra", 31.5e9, 5e-6,
             _PCIE.format(gt=16, bw=31.5), "through the host: latency 5 us, an estimate"),
        Link("pcie5", "PCIe gen5 x16", "intra", 63e9, 5e-6,
             _PCIE.format(gt=32, bw=63), "through the host: latency 5 us, an estimate"),
        Link("ib-ndr", "InfiniBand NDR 400 Gb/s", "inter", 50e9, 5e-6,
             "NVIDIA ConnectX-7 / Quantum-2 NDR: 400 Gb/s per port",
             f"{_NIC.format(gb=400, bw=50)}; {_LAT_NET.format(us=5)}"),
        Link("ib-hdr", "InfiniBand HDR 200 Gb/s", "inter", 25e9, 5e-6,
             "NVIDIA ConnectX-6 / Quantum HDR: 200 Gb/s per port",
             f"{_NIC.format(gb=200, bw=25)}; {_LAT_NET.format(us=5)}"),
        Link("eth-400g", "Ethernet 400 Gb/s (RoCE)", "inter", 50e9, 10e-6,
             "IEEE 802.3bs 400GBASE: 400 Gb/s",
             f"{_NIC.format(gb=400, bw=50)}; {_LAT_NET.format(us=10)}"),
        Link("eth-200g", "Ethernet 200 Gb/s (RoCE)", "inter", 25e9, 10e-6,
             "IEEE 802.3bs 200GBASE: 200 Gb/s",
             f"{_NIC.format(gb=200, bw=25)}; {_LAT_NET.format(us=10)}"),
        Link("eth-100g", "Ethernet 100 Gb/s (RoCE)", "inter", 12.5e9, 10e-6,
             "IEEE 802.3ba/802.3bj 100GBASE: 100 Gb/s",
             f"{_NIC.format(gb=100, bw=12.5)}; {_LAT_NET.format(us=10)}"),
    )
}  # fmt: skip
LINK_NAMES = tuple(LINKS)


def link(name: str) -> Link:
    """The link called ``name``; a ValueError names the known ones."""
    try:
        return LINKS[name]
    except KeyError:
        raise ValueError(f"unknown link {name!r}; use one of {', '.join(LINK_NAMES)}") from None


__all__ = ["LINKS", "LINK_NAMES", "Link", "link"]
