"""The paper table's helpers: names shortened (never numbers), LaTeX escaping."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelmeter.analysis.comparison import Comparison, ComparisonRow
from modelmeter.render.compare import latex_escape, render_comparison, short_name
from modelmeter.report import InputSpec


def test_short_name_drops_the_source_then_cuts_the_middle() -> None:
    assert short_name("torchvision:resnet50", 30) == "torchvision:resnet50"
    assert short_name("torchvision:resnet50", 12) == "resnet50"
    assert short_name("dir/sub/file.py:FACTORY", 15) == "file.py:FACTORY"
    cut = short_name("torchvision:mobilenet_v3_large", 12)
    assert len(cut) == 12 and cut == "mobile…large"


def test_latex_escape() -> None:
    assert latex_escape("a_b & 5% #1 {x} $ ~ ^ \\") == (
        r"a\_b \& 5\% \#1 \{x\} \$ \textasciitilde{} \textasciicircum{} \textbackslash{}"
    )


def test_no_chip_no_latency_columns() -> None:
    row = ComparisonRow("m", [], 1, 2, 3, 4, 5, 6)
    text = render_comparison(Comparison([row], "2mac"), "md")
    # 2 + ... bytes: 4 read + 5 written = 9 B
    assert text.splitlines()[2] == "| m | 1 | 2 | 3 | 9 B | 6 B |"
    assert "Latency" not in text and "2mac" in text


def _five() -> Comparison:
    """Figures of the size of torchvision's resnet50 / mobilenet_v3_large on a GPU."""
    x = [InputSpec((1, 3, 224, 224), "float32")]
    rows = [
        ComparisonRow("torchvision:resnet50", x, 25557032, 4089184256, 8206427904,
                      300_000_000, 127_600_000, 11_040_000, 700.03e-6, "compute"),
        ComparisonRow("torchvision:mobilenet_v3_large", x, 5483032, 216_590_000, 449_190_000,
                      100_000_000, 36_020_000, 7_830_000, 742.52e-6, "overhead"),
    ]
    return Comparison(rows, "exact", "a100-sxm-80gb")


def test_wide_table_keeps_full_names_and_two_decimals() -> None:
    rows = render_comparison(_five(), "table", width=200).splitlines()[2:4]
    assert rows[0].split() == ["torchvision:resnet50", "25.56M", "4.09G", "8.21G", "427.60",
                               "MB", "11.04", "MB", "700.03", "us", "compute"]
    assert rows[1].startswith("torchvision:mobilenet_v3_large ")


def test_80_columns_drop_the_source_then_a_decimal_never_a_number() -> None:
    text = render_comparison(_five(), "table", width=80)
    assert max(len(line) for line in text.splitlines()) <= 80
    rows = text.splitlines()[2:4]
    # resnet50: 25557032 params = 25.6M, 4089184256 MACs = 4.1G, 427.6 MB moved
    assert rows[0].split() == ["resnet50", "25.6M", "4.1G", "8.2G", "427.6", "MB", "11.0", "MB",
                               "700.0", "us", "compute"]
    assert rows[1].split()[0] in ("mobilenet_v3_large", "mobilen…3_large")
    assert "torchvision:mobilenet_v3_large: 1x3x224x224 float32" in " ".join(text.split())


def test_too_narrow_columns_go_then_the_lines_grow_but_numbers_stay_whole() -> None:
    text = render_comparison(_five(), "table", width=40)
    rows = text.splitlines()[2:4]
    # Bound, Act. peak and Bytes dropped (and said so); the rest still needs 46 columns
    assert rows[0].split() == ["resnet50", "25.6M", "4.1G", "8.2G", "700.0", "us"]
    assert rows[1].split()[0] == "mobile…large"  # cut from the middle, to the minimum of 12
    assert "Not shown at 40 columns: Bound, Act. peak, Bytes" in " ".join(text.split())


def _whole_cells(c: Comparison) -> dict[str, set[str]]:
    """Every way a figure may be shown: 2 or 1 decimals (abbreviated, never cut)."""
    from modelmeter.render.compare import _cells

    return {r.model: set(_cells(c, r, 2)) | set(_cells(c, r, 1)) for r in c.rows}


def _shown_numbers(line: str) -> list[str]:
    """The cells of a table line after the name (a number and its unit are one cell)."""
    return [p.strip() for p in line.split("  ")[1:] if p.strip()]


@pytest.mark.parametrize("width", [60, 80, 120, 200])
@pytest.mark.parametrize("chip", [True, False])
def test_the_paper_table_fits_and_never_cuts_a_number(width: int, chip: bool) -> None:
    five = _five()
    c = five if chip else Comparison([replace(r, latency_s=None, bound=None) for r in five.rows],
                                     "exact")  # fmt: skip
    text = render_comparison(c, "table", width=width)
    lines = text.splitlines()
    assert max(len(x) for x in lines) <= width
    whole = _whole_cells(c)
    header = lines[0].split("  ")
    for line, row in zip(lines[2:4], c.rows):
        cells = _shown_numbers(line)
        assert not any("…" in x for x in cells)
        assert len(cells) == len([h for h in header if h.strip()]) - 1
        assert set(cells) <= whole[row.model], (cells, whole[row.model])
    # Params, MACs, FLOPs (and the predicted latency) are kept at every width
    for col in ("Params", "MACs", "FLOPs", *(("Latency",) if chip else ())):
        assert col in lines[0]
    # 60 columns with a chip: Bound and Act. peak go (named); otherwise every column fits
    assert ("Not shown at" in text) == (chip and width == 60), text
