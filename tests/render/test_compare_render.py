"""The paper table's helpers: names shortened (never numbers), LaTeX escaping."""

from __future__ import annotations

from modelmeter.analysis.comparison import Comparison, ComparisonRow
from modelmeter.render.compare import latex_escape, render_comparison, short_name


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
