"""Interconnects: the link table's figures and the chips' [interconnect] tables."""

from __future__ import annotations

import pytest

from modelmeter.hardware import load_spec
from modelmeter.hardware.links import LINKS, link
from modelmeter.hardware.schema import HardwareSpecError
from modelmeter.hardware.schema_toml import to_toml
from modelmeter.hardware.spec import HardwareSpec


def test_link_figures_per_direction() -> None:
    # NVLink: the datasheets' totals of both directions, halved
    assert link("nvlink2").bandwidth == 300e9 / 2  # V100: 300 GB/s -> 150 GB/s each way
    assert link("nvlink3").bandwidth == 600e9 / 2  # A100: 600 GB/s -> 300 GB/s
    assert link("nvlink4").bandwidth == 900e9 / 2  # H100/H200: 900 GB/s -> 450 GB/s
    # PCIe x16: GT/s x 16 lanes x 128/130 / 8 bits, rounded as the spec quotes it
    assert link("pcie3").bandwidth == pytest.approx(8e9 * 16 * 128 / 130 / 8, rel=1e-3)  # 15.75
    assert link("pcie4").bandwidth == pytest.approx(16e9 * 16 * 128 / 130 / 8, rel=1e-3)  # 31.5
    assert link("pcie5").bandwidth == pytest.approx(32e9 * 16 * 128 / 130 / 8, rel=1e-3)  # 63
    # NICs: Gb/s / 8
    assert link("ib-ndr").bandwidth == 400e9 / 8 == 50e9
    assert link("ib-hdr").bandwidth == 200e9 / 8 == 25e9
    assert link("eth-100g").bandwidth == 100e9 / 8 == 12.5e9
    for ln in LINKS.values():
        assert ln.source and ln.scope in ("intra", "inter") and ln.latency > 0
    with pytest.raises(ValueError, match="unknown link 'nvlink9'"):
        link("nvlink9")


def test_chips_name_their_links_and_old_files_load() -> None:
    h = load_spec("h100-sxm")
    assert (h.intra_link, h.inter_link) == ("nvlink4", "ib-ndr")
    assert h.to_dict()["interconnect"] == {"intra": "nvlink4", "inter": "ib-ndr"}
    assert '[interconnect]\nintra = "nvlink4"\ninter = "ib-ndr"' in to_toml(h)
    t4 = load_spec("t4")  # a file without [interconnect] loads, and writes none
    assert t4.intra_link is None and "interconnect" not in t4.to_dict()
    with pytest.raises(HardwareSpecError, match="interconnect.intra must be one of"):
        HardwareSpec(name="x", vendor="v", kind="gpu", bandwidth=1e9, compute={"float32": 1e12},
                     display_name="x", intra_link="nvlink9")  # fmt: skip
