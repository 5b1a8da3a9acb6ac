"""What ``torch.utils.flop_counter.FlopCounterMode`` counts, read off a Report (2mac)."""

from __future__ import annotations

import modelmeter
from modelmeter.registry import family_of


def product_flops(report: modelmeter.Report) -> int:
    """FLOPs of the report's matrix products, as FlopCounterMode counts them: every MAC op's
    FLOPs, except that a fused attention op counts only its two products (2 x MACs under
    2mac): FlopCounterMode does not count its scaling and softmax, which modelmeter's
    attention formula includes."""
    total = 0
    for node in report.modules():
        for op in node.ops:
            if not op.cost.macs:
                continue
            total += 2 * op.cost.macs if family_of(op.op) == "attention" else op.cost.flops
    return total
