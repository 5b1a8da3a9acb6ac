"""Two hand-built reports that differ, for the diff's tests (analysis, renderer)."""

from __future__ import annotations

from modelmeter.report import Cost, ModuleNode, OpRecord, ParamStats, Report


def make_extended(r: Report) -> Report:
    """``r``, the hand-made report (tests/conftest.py), with a module added and one changed:

    - ``tail`` (new, Linear, 2 params, 8 B): aten.mm macs 4 flops 8 read 24 written 4 weight 8;
    - ``body.1`` (ReLU) loses its op: flops -10, read -40, written -40.
    """
    tail = ModuleNode("tail", "Linear", depth=1, calls=1,
                      own=ParamStats(params=2, trainable=2, param_bytes=8),
                      ops=[OpRecord("aten.mm", Cost(4, 8, 24, 4, 8))])  # fmt: skip
    r.root.children.append(tail)
    r.root.children[0].children[1].ops = []
    return r
