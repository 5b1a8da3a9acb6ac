"""``--columns`` beyond the rich table: the table's column names choose the same figures in
CSV and Markdown.

A name stands for the figures of its table column in each format (``COLUMN_KEYS`` of
``render.table_layout`` holds the names). The row's identity always stays: the module's name
(with Markdown's depth; with CSV's depth and ``blocks``, how many identical modules the row
sums). ``self_macs`` is the row's own cost: Markdown's Self MACs and Self FLOPs, and CSV's
``self_*`` fields. ``pct`` and ``time`` are shares the CSV has no column for unless asked:
``flops_share`` and ``time_share``, fractions of the model's FLOPs and predicted latency.
A name whose column needs a chip (latency, bound, time) shows nothing without one, as in the
table.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelmeter.render.table_layout import COLUMN_KEYS

# CSV field -> the --columns name that shows it ("module": always shown)
CSV_OWNER: dict[str, str] = {
    "name": "module",
    "type": "type",
    "depth": "module",
    "calls": "calls",
    "params": "params",
    "macs": "macs",
    "flops": "flops",
    "bytes_read": "read",
    "bytes_written": "written",
    "weight_bytes": "read",
    "output_shapes": "shape",
    "self_params": "self_macs",
    "self_macs": "self_macs",
    "self_flops": "self_macs",
    "self_bytes_read": "self_macs",
    "self_bytes_written": "self_macs",
    "self_weight_bytes": "self_macs",
    "latency_s": "latency",
    "compute_s": "latency",
    "memory_s": "latency",
    "overhead_s": "latency",
    "bound": "bound",
    "arithmetic_intensity": "bound",
    "utilization": "bound",
    "flops_share": "pct",
    "time_share": "time",
    "blocks": "module",
}
# Markdown header -> the --columns name (the table's headers by COLUMN_KEYS, and these)
MD_OWNER: dict[str, str] = {
    **{head: key for head, (key, _) in COLUMN_KEYS.items()},
    "Depth": "module",
    "Self FLOPs": "self_macs",
}
ALWAYS = "module"


def shown(header: Sequence[str], owner: dict[str, str], chosen: Sequence[str] | None) -> list[int]:
    """The indices of ``header`` to show: all without a choice, else the columns whose owner
    name is chosen, and the row's identity."""
    if chosen is None:
        return list(range(len(header)))
    keep = {ALWAYS, *chosen}
    return [i for i, h in enumerate(header) if owner[h] in keep]


def pick(cells: Sequence[object], idx: Sequence[int]) -> tuple[object, ...]:
    """The cells at ``idx``, in order."""
    return tuple(cells[i] for i in idx)
