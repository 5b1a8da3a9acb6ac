"""What the charts draw, checked as data (not pixels): the breakdown's bars grouped by block,
type or module, each labelled, adding up to the predicted latency; the roofline's identical
modules as one point ×N at their summed figures."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import modelmeter
from modelmeter.analysis.roofline import roofline
from modelmeter.hardware import load_spec, spec_from_peak
from modelmeter.render import plots
from modelmeter.render.plot_data import breakdown_bars, roofline_points, span
from modelmeter.report import Report


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(x))


class Net(nn.Module):
    """Four identical blocks, then a head of another shape."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(Block() for _ in range(4)))
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


@pytest.fixture(scope="module")
def net() -> Report:
    return modelmeter.analyze(Net().eval(), "1x8", mode="meta")


# 1 TFLOP/s and 10 GB/s, no launch overhead, no queue: identical ops take identical times
SPEC = spec_from_peak(1e12, 1e10, dtype="fp32")


def test_block_bars_sum_identical_blocks(net: Report) -> None:
    roof = roofline(net, SPEC)
    bars, count = breakdown_bars(net, roof, group="block")
    by_label = {b.label: b for b in bars}
    fc = by_label["blocks.0..3.fc (Linear) ×4"]
    one = roof.own["blocks.0.fc"].latency_s
    # 4 identical Linear(8, 8): the bar is 4 x one block's fc time, and says ×4
    assert fc.count == 4 and fc.total_s == pytest.approx(4 * one)
    assert "blocks.0..3.act (ReLU) ×4" in by_label and "head (Linear)" in by_label
    assert count == len(bars) == 3  # fc ×4, act ×4, head
    assert sum(b.total_s for b in bars) == pytest.approx(roof.latency_s)  # adds up
    assert [b.total_s for b in bars] == sorted((b.total_s for b in bars), reverse=True)


def test_type_bars_sum_every_module_of_a_type(net: Report) -> None:
    roof = roofline(net, SPEC)
    bars, _ = breakdown_bars(net, roof, group="type")
    by_label = {b.label: b for b in bars}
    # the 4 fc layers and the head are the 5 Linear modules
    linear = by_label["Linear ×5"]
    lin_names = [f"blocks.{i}.fc" for i in range(4)] + ["head"]
    assert linear.total_s == pytest.approx(sum(roof.own[n].latency_s for n in lin_names))
    assert by_label["ReLU ×4"].count == 4
    assert sum(b.total_s for b in bars) == pytest.approx(roof.latency_s)


def test_module_bars_one_per_module_and_top(net: Report) -> None:
    roof = roofline(net, SPEC)
    bars, count = breakdown_bars(net, roof, group="module")
    assert count == 9  # 4 fc + 4 relu + head have ops
    assert all(b.count == 1 and "×" not in b.label for b in bars)
    assert sum(b.total_s for b in bars) == pytest.approx(roof.latency_s)
    top, count2 = breakdown_bars(net, roof, top=2, group="module")
    assert top == bars[:2] and count2 == 9
    with pytest.raises(ValueError, match="unknown grouping"):
        breakdown_bars(net, roof, group="layer")


def test_each_part_goes_to_the_larger_of_compute_and_memory(net: Report) -> None:
    roof = roofline(net, SPEC)
    bars, _ = breakdown_bars(net, roof, group="module")
    for b in bars:  # at 1e12 / 1e10 a Linear(8, 8) on 1 row is memory-limited
        assert b.compute_s == 0 and b.memory_s > 0 and b.overhead_s == 0


def test_roofline_points_collapse_identical_modules(net: Report) -> None:
    roof = roofline(net, SPEC)
    points = {p.label: p for p in roofline_points(net, roof)}
    fc = points["blocks.0..3.fc (Linear) ×4"]
    one = roof.own["blocks.0.fc"]
    # 4 identical: the intensity of one, FLOPs summed over time summed (= one's), 4x the time
    assert fc.count == 4
    assert fc.intensity == pytest.approx(one.flops / one.bytes)
    assert fc.achieved == pytest.approx(one.achieved)
    assert fc.latency_s == pytest.approx(4 * one.latency_s)
    assert fc.bound == one.bound
    assert len(points) == 3  # fc ×4, relu ×4, head
    assert len(roofline_points(net, roof, collapse=False)) == 9


def test_roofline_points_per_op_collapse(net: Report) -> None:
    roof = roofline(net, SPEC)
    per_op = roofline_points(net, roof, per_op=True)
    every = roofline_points(net, roof, per_op=True, collapse=False)
    with_flops = [t for t in roof.ops if t.flops and t.bytes and t.latency_s]
    assert len(every) == len(with_flops)
    assert sum(p.count for p in per_op) == len(with_flops)
    assert sum(p.latency_s for p in per_op) == pytest.approx(sum(p.latency_s for p in every))
    assert any(p.label.startswith("blocks.0..3.fc: ") and p.label.endswith("×4") for p in per_op)


def test_span() -> None:
    assert span(["a.0.fc", "a.1.fc", "a.11.fc"]) == "a.0..11.fc"
    assert span(["layer_0.ln_1", "layer_11.ln_2"]) == "layer_0..11.ln_1..2"
    assert span(["enc.layers.l0.ln", "enc.ln"]) == "enc.…"
    assert span(["head"]) == "head"


def test_the_breakdown_chart_labels_every_bar_and_says_predicted(net: Report) -> None:
    roof = roofline(net, load_spec("t4"))
    for group in ("block", "type", "module"):
        fig = plots.breakdown_figure(net, roof, group=group)
        ax = fig.axes[0]
        bars, _ = breakdown_bars(net, roof, group=group)
        labels = [t.get_text() for t in ax.texts]
        assert len(labels) == len(bars)  # one value label per bar: time and share
        for text, bar in zip(labels, bars):
            assert f"({100 * bar.total_s / roof.latency_s:.1f}%)" in text
        title = fig._suptitle.get_text()
        assert title.startswith("Predicted time by") and "predicted" in ax.get_xlabel()
        assert all(t.get_text().startswith("predicted ") for t in ax.get_legend().get_texts())


def test_the_roofline_chart_says_predicted_and_names_xn(net: Report) -> None:
    roof = roofline(net, load_spec("t4"))
    ax = plots.roofline_figure(net, roof).axes[0]
    assert ax.get_title().startswith("Predicted roofline")
    assert ax.get_ylabel().startswith("predicted performance")
    names = [t.get_text() for t in ax.texts]
    key = [t.get_text() for t in plots.roofline_figure(net, roof).axes[1].texts]
    assert any("blocks.0..3.fc (Linear) ×4" in n for n in key)
    assert any("×N: N identical ones, summed" in n for n in names)


class Twins(nn.Module):
    """Three Linear(64, 64) and two Linear(64, 65) on one input: two ×N points whose markers
    sit on one another (intensity 8,192 / 16,896 B vs 8,320 / 17,412 B, both ~0.48)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.ModuleList(nn.Linear(64, 64) for _ in range(3))
        self.b = nn.ModuleList(nn.Linear(64, 65) for _ in range(2))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [m(x) for m in self.a] + [m(x) for m in self.b]


def test_every_collapsed_marker_is_named_even_on_another() -> None:
    from modelmeter.render.plot_labels import clusters

    report = modelmeter.analyze(Twins().eval(), "1x64", mode="meta")
    roof = roofline(report, SPEC)
    points = roofline_points(report, roof)
    collapsed = [p.label for p in points if p.count > 1]
    assert sorted(collapsed) == ["a.0..2 (Linear) ×3", "b.0..1 (Linear) ×2"]
    fig = plots.roofline_figure(report, roof)
    ax, key = fig.axes[0], fig.axes[1]
    listed = {t.get_gid(): t.get_text() for t in key.texts if t.get_gid()}
    for label in collapsed:  # each named in the key, with its number
        [entry] = [(gid, text) for gid, text in listed.items() if label in text]
        number = entry[0].removeprefix("key-")
        assert entry[1].split()[0] == number
        # ... and that number tags a marker on the chart, at the point's own place
        point = next(p for p in points if p.label == label)
        tags = [t for t in ax.texts if int(number) in _numbers(t.get_text())]
        assert len(tags) == 1
        x, y = tags[0].xy
        assert x == pytest.approx(point.intensity, rel=0.5)
    # the two markers sit on one another: one tag "1-2" names both, none is dropped
    groups = clusters([(p.label, p.intensity, p.achieved, p.latency_s, p.bound) for p in points],
                      1.0)  # fmt: skip
    twin = [g for g in groups if len(g.labels) > 1]
    assert len(twin) == 1 and sorted(twin[0].labels) == sorted(collapsed)
    assert twin[0].tag in [t.get_text() for t in ax.texts]


def _numbers(tag: str) -> list[int]:
    """A chart tag's numbers: "3" -> [3], "1-3" -> [1, 2, 3], "2,5" -> [2, 5]; [] for text."""
    if "-" in tag and tag.replace("-", "").isdigit():
        lo, hi = map(int, tag.split("-"))
        return list(range(lo, hi + 1))
    parts = tag.split(",")
    return [int(p) for p in parts] if all(p.isdigit() for p in parts) else []


def test_the_key_names_the_slowest_and_counts_the_rest() -> None:
    from modelmeter.render.plot_labels import LABELLED, MOST, named

    # 14 points, none ×N: the 10 slowest named, 4 not; with 40 ×N points: the first 30
    pts = [(f"m{i}", 1.0 + i, 1.0, 1.0 / (i + 1), "memory") for i in range(14)]
    chosen, unnamed = named(pts)
    assert [p[0] for p in chosen] == [f"m{i}" for i in range(LABELLED)] and unnamed == 4
    many = [(f"m{i} ×2", 1.0 + i, 1.0, 1.0 / (i + 1), "memory") for i in range(40)]
    chosen, unnamed = named(many)
    assert len(chosen) == MOST == 30 and unnamed == 10


@pytest.mark.parametrize(
    ("argv", "group", "collapse"),
    [
        ([], "block", True),
        (["--plot-group", "type"], "type", True),
        (["--no-collapse"], "module", False),  # one bar and one marker per module
        (["--no-collapse", "--plot-group", "type"], "type", False),
    ],
)
def test_the_command_passes_the_grouping(
    monkeypatch: pytest.MonkeyPatch, tmp_path, net: Report, argv, group, collapse
) -> None:
    import modelmeter.usecases.analyze
    from modelmeter.cli import main

    seen: dict[str, object] = {}
    monkeypatch.setattr(modelmeter.usecases.analyze, "analyze", lambda *a, **k: net)
    monkeypatch.setattr(plots, "save_breakdown", lambda *a, **k: seen.update(k))
    monkeypatch.setattr(plots, "save_roofline", lambda *a, **k: seen.update(roof=k))
    code = main(["analyze", "m", "--hardware", "t4", "-f", "json", "-o", str(tmp_path / "r.json"),
                 "--plot", str(tmp_path / "r.png"), "--plot-breakdown", str(tmp_path / "b.png"),
                 *argv])  # fmt: skip
    assert code == 0
    assert seen["group"] == group and seen["roof"] == {"per_op": False, "collapse": collapse}


def test_an_unknown_grouping_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from modelmeter.cli import main

    assert main(["analyze", "m", "--hardware", "t4", "--plot-group", "layer"]) == 2
    err = capsys.readouterr().err
    assert "--plot-group: invalid choice: 'layer'" in err and len(err.splitlines()) == 1
