"""Names on the roofline chart, none dropped: which points are named, and a numbered key.

Named: the ``LABELLED`` slowest points and every point of identical modules collapsed into one
(``×N``), up to ``MOST`` in all (slowest first; the key says how many more go unnamed). Each
named point gets a number beside its marker, slowest first; points that sit on one another
(within ``NEAR`` decades on both axes) share one tag, ``3-5``, so no number hides another. A
key beside the chart lists every number with its full name and predicted time, so a name
never covers a marker or another name, however crowded the chart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from modelmeter.units import seconds_unit

LABELLED = 10  # the slowest points always named
MOST = 30  # names at most (the slowest ones first)
NEAR = 0.15  # decades apart on both axes below which two points share a tag
LIMIT = 64  # characters of a name shown in the key (the end of a longer one)


@dataclass
class Cluster:
    """Named points that share one tag: their numbers, labels and times (slowest first)."""

    x: float
    y: float
    numbers: list[int]
    labels: list[str]
    times: list[float]

    @property
    def tag(self) -> str:
        first, last = self.numbers[0], self.numbers[-1]
        if first == last:
            return str(first)
        # numbers of one cluster may not be consecutive: list them, or a range when they are
        if self.numbers == list(range(first, last + 1)):
            return f"{first}-{last}"
        return ",".join(map(str, self.numbers))


def short(name: str, limit: int = LIMIT) -> str:
    return name if len(name) <= limit else "…" + name[-(limit - 1) :]


def named(pts: list[Any]) -> tuple[list[Any], int]:
    """(the points to name, slowest first; how many points go unnamed): the ``LABELLED``
    slowest and every ``×N`` point, at most ``MOST``."""
    ranked = sorted(pts, key=lambda p: -p[3])
    chosen = [p for i, p in enumerate(ranked) if i < LABELLED or " ×" in p[0]][:MOST]
    return chosen, len(pts) - len(chosen)


def clusters(pts: list[Any], yscale: float) -> list[Cluster]:
    """The named points numbered 1, 2, ... slowest first, grouped where they sit on one
    another."""
    out: list[Cluster] = []
    for number, (label, x, y, time_s, _) in enumerate(named(pts)[0], start=1):
        y = y / yscale
        near = next(
            (c for c in out if abs(math.log10(x / c.x)) < NEAR and abs(math.log10(y / c.y)) < NEAR),
            None,
        )
        if near is None:
            out.append(Cluster(x, y, [number], [label], [time_s]))
        else:
            near.numbers.append(number)
            near.labels.append(label)
            near.times.append(time_s)
    return out


def draw_labels(ax: Any, key: Any, pts: list[Any], yscale: float) -> list[Cluster]:
    """Tag the named points on ``ax`` and list them in ``key`` (an axes beside it, its frame
    off); returns the clusters drawn."""
    groups = clusters(pts, yscale)
    for c in groups:
        ax.annotate(
            c.tag,
            (c.x, c.y),
            xytext=(5, 4),
            textcoords="offset points",
            fontsize=7,
            fontweight="bold",
            color="#222222",
        )
    entries = sorted(
        (n, label, t) for c in groups for n, label, t in zip(c.numbers, c.labels, c.times)
    )
    unnamed = len(pts) - len(entries)
    key.axis("off")
    key.text(0, 1, "named points, slowest first", fontsize=8, fontweight="bold", va="top")
    step = min(0.031, 0.95 / max(len(entries) + 1, 1))
    for i, (n, label, t) in enumerate(entries, start=1):
        scale, unit = seconds_unit(t)
        key.text(
            0, 1 - (i + 0.5) * step, f"{n:>2}  {short(label)}  {t / scale:.3g} {unit}",
            fontsize=6.5, va="top", gid=f"key-{n}",
        )  # fmt: skip
    if unnamed:
        key.text(0, 1 - (len(entries) + 1.5) * step, f"+ {unnamed} faster points not named",
                 fontsize=6.5, va="top", color="dimgray")  # fmt: skip
    return groups
