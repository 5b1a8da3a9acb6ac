"""Whether the weights alone fit a chip's memory: the check, its note in the roofline and the
JSON, the CLI warning; sizes in GB or GiB (--units) and parameter counts with B, not G."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cli_helpers import run
from torch import nn

import modelmeter
from modelmeter.analysis.memory import WeightsFit, weights_fit
from modelmeter.analysis.roofline import roofline
from modelmeter.hardware.spec import HardwareSpec
from modelmeter.render import render_report
from modelmeter.units import byte_units, format_bytes, format_count, format_params


def _chip(capacity: float | None) -> HardwareSpec:
    return HardwareSpec(name="toy", display_name="toy", vendor="-", kind="gpu", bandwidth=1e11,
                        compute={"float32": 1e13}, capacity=capacity)  # fmt: skip


@pytest.fixture(scope="module")
def big() -> modelmeter.Report:
    with torch.device("meta"):
        model = nn.Linear(20_000, 15_000, bias=False).eval()  # 20,000 x 15,000 = 300M params
    return modelmeter.analyze(model, (1, 20_000))


def test_300m_fp32_params_do_not_fit_1gb(big) -> None:
    fit = weights_fit(big, _chip(1e9))
    # 300,000,000 params x 4 bytes = 1,200,000,000 bytes = 1.2 GB > 1 GB
    assert fit == WeightsFit("toy", 1_200_000_000, 1e9)
    assert fit.fits is False
    assert fit.note() == (
        "the weights alone (1.20 GB) do not fit in the 1.00 GB of memory of toy: the prediction "
        "assumes they do (they need a smaller dtype, offloading or several devices)"
    )


def test_they_fit_2gb_and_an_unknown_capacity_says_nothing(big) -> None:
    assert weights_fit(big, _chip(2e9)).fits is True  # 1.2 GB <= 2 GB
    assert weights_fit(big, _chip(2e9)).note() is None
    assert weights_fit(big, _chip(None)).fits is None
    assert weights_fit(big, _chip(None)).note() is None


def test_the_roofline_and_its_json_carry_the_note(big) -> None:
    roof = roofline(big, _chip(1e9))
    assert roof.weights is not None and roof.weights.fits is False
    assert roof.weights.note() in roof.notes
    data = json.loads(render_report(big, "json", roofline=roof))
    assert data["roofline"]["memory"] == {
        "weight_bytes": 1_200_000_000, "capacity_bytes": 1e9, "weights_fit": False
    }  # fmt: skip
    assert roof.weights.note() in data["roofline"]["notes"]
    assert roof.weights.note() in render_report(big, "md", roofline=roof)
    assert not any("do not fit" in n for n in roofline(big, _chip(2e9)).notes)


def test_utilization_carries_the_note(big) -> None:
    u = modelmeter.utilization(big, _chip(1e9), latency_s=1.0)
    assert any(n.startswith("the weights alone (1.20 GB) do not fit") for n in u.notes)


def test_cli_warns_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "big.py").write_text(
        "import torch\nfrom torch import nn\n\n\ndef make():\n"
        "    with torch.device('meta'):\n        return nn.Linear(20_000, 15_000, bias=False)\n\n\n"
        "def example_inputs():\n    return (1, 20_000)\n"
    )
    chip = tmp_path / "toy.toml"
    chip.write_text('name = "toy"\nvendor = "-"\nkind = "gpu"\n[memory]\nbandwidth = "100G"\n'
                    'capacity = "1G"\n[compute]\nfloat32 = "10T"\n')  # fmt: skip
    model = f"{tmp_path / 'big.py'}:make"
    code, out, err = run(capsys, "analyze", model, "--input", "1x20000", "--hardware", str(chip),
                         "-f", "json")  # fmt: skip
    assert code == 0, err
    assert "modelmeter: warning: the weights alone (1.20 GB) do not fit in the 1.00 GB" in err
    assert json.loads(out)["roofline"]["memory"]["weights_fit"] is False
    code, out, err = run(capsys, "analyze", model, "--input", "1x20000", "--hardware", str(chip),
                         "-f", "md", "--units", "iec")  # fmt: skip
    # 1.2e9 B / 2^30 = 1.1176 GiB; 1e9 / 2^30 = 0.9313 GiB = 953.67 MiB
    assert "the weights alone (1.12 GiB) do not fit in the 953.67 MiB" in err
    assert "| 1,200,000,000 | 1.12 GiB |" in out  # model size fp32
    assert "| params | 300,000,000 | 300.00M |" in out


def test_units_option_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "analyze", "x.py:f", "--units", "gb")
    assert code == 2 and "--units" in err


def test_sizes_in_si_or_iec() -> None:
    assert format_bytes(26_953_662_464) == "26.95 GB"  # 6,738,415,616 params x 4 B
    assert format_bytes(26_953_662_464, units="iec") == "25.10 GiB"  # / 2^30 = 25.102
    assert format_bytes(24e9, units="iec") == "22.35 GiB"  # 24e9 / 2^30 = 22.352
    assert (
        format_bytes(1536, units="iec") == "1.50 KiB"
        and format_bytes(1000, units="iec") == "1000 B"
    )
    with byte_units("iec"):
        assert format_bytes(2**20) == "1.00 MiB"
    assert format_bytes(2**20) == "1.05 MB"  # back to SI after the block: 1,048,576 B
    with pytest.raises(ValueError, match="unknown units"):
        with byte_units("gb"):
            pass


def test_parameter_counts_use_the_fields_suffixes() -> None:
    assert format_params(6_738_415_616) == "6.74B"  # Llama-2-7B: B, not G
    assert format_params(1.5e12) == "1.50T"
    assert format_params(25_557_032) == "25.56M"  # values under 1e9 read as before
    assert format_params(25_557_032) == format_count(25_557_032)
    assert format_params(1_500) == "1.50K" and format_params(999) == "999"
    assert format_count(6_738_415_616) == "6.74G"  # MACs and FLOPs keep SI


def test_peak_live_under_backward_says_what_it_includes() -> None:
    model = nn.Linear(1000, 1000, bias=False).eval()
    fwd = modelmeter.analyze(model, (1, 1000))
    both = modelmeter.analyze(model, (1, 1000), backward=True)
    # forward: the 1x1000 fp32 input and output, 4,000 B each
    assert fwd.total().peak_activation_bytes == 8_000
    # backward adds the weight's gradient, 1000 x 1000 x 4 B = 4,000,000 B
    assert both.total().peak_activation_bytes >= 4_008_000
    scope = "inputs, activations kept for the backward pass, and the gradients of activations"
    for fmt in ("table", "md"):
        assert scope in render_report(both, fmt, width=400)
        assert scope not in render_report(fwd, fmt, width=400)


def test_the_table_counts_billions_of_params_with_b() -> None:
    with torch.device("meta"):
        model = nn.Linear(40_000, 30_000, bias=False).eval()  # 40,000 x 30,000 = 1.2B params
    r = modelmeter.analyze(model, (1, 40_000))
    text = render_report(r, "table", width=200)
    assert "params                1.20B (1,200,000,000)" in text
    assert "│  1.20B │ 1.20G │" in text  # the row: params in B; MACs 1 x 40,000 x 30,000 in G
    assert "| params | 1,200,000,000 | 1.20B |" in render_report(r, "md")
    assert "MACs                  1.20G (1,200,000,000)" in text
