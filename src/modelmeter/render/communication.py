"""The communication of a sharded training step as aligned text: a pure function of a
:class:`~modelmeter.analysis.communication.Communication` (the collectives add up to the
total row; the units the plan communicates by, identical neighbours collapsed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmeter.units import format_bytes, format_rate, format_seconds

if TYPE_CHECKING:
    from modelmeter.analysis.communication import Communication, LayerTraffic


def communication_lines(c: Communication) -> list[str]:
    """The block: the plan and its link, one row per collective, the total, the units."""
    nodes, everyone = c.nodes, max(c.devices, c.total_devices)
    where = (f"1 node of up to {c.gpus_per_node}" if nodes == 1 else
             f"{nodes} nodes of {c.gpus_per_node}")  # fmt: skip
    if everyone != c.devices:
        where = f"{everyone} devices, {where}"
    lines = [f"communication per device, {c.devices} data-parallel replicas ({where}), "
             f"ZeRO-{c.zero}{_hybrid(c)}, {_algorithm(c)}"]  # fmt: skip
    head = ["collective", "of", "phase", "over", "algorithm", "buffer", "per step", "sent", "time"]
    table = [head]
    for x in c.collectives:
        table.append([x.kind, x.what, x.phase, f"{x.group} {x.link}".rstrip(), x.algorithm,
                      format_bytes(x.bytes), f"x{x.count}", format_bytes(x.sent),
                      _time(c, x.time_s)])  # fmt: skip
        if x.algorithm == "hierarchical":
            table += [[f"  {st.kind}", "", "", f"{st.group} {st.link}", "", "", "",
                       format_bytes(st.sent * x.count), _time(c, st.time_s * x.count)]
                      for st in x.stages]  # fmt: skip
    table.append(["total", "", "", "", "", "", "", format_bytes(c.sent), _time(c, c.time_s)])
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines += ["  ".join(v.ljust(w) if i < 5 else v.rjust(w) for i, (v, w) in
                        enumerate(zip(row, widths, strict=True))).rstrip() for row in table]  # fmt: skip
    if c.layers:
        lines.append("  sent per unit (FSDP's wrapping: each layer of an nn.ModuleList, the "
                     "rest as one): " + "; ".join(_units(c.layers)))  # fmt: skip
    return lines


def _hybrid(c: Communication) -> str:
    if not c.shard_group:
        return ""
    return (f" hybrid: sharded within groups of {c.shard_group} replicas, replicated over "
            f"{c.devices // c.shard_group} groups")  # fmt: skip


def _algorithm(c: Communication) -> str:
    """The algorithm and the links: 'ring collectives over LINK: ...' as before where every
    collective is a ring."""
    if c.link is None:
        return "ring collectives over no link named (--hardware or --intra): bytes only"
    on = (f"{c.link.name}: {format_rate(c.link.bandwidth, 'B/s')} per direction, latency "
          f"{c.link.latency * 1e6:g} us per ring step")  # fmt: skip
    if all(x.algorithm in ("ring", "pairwise") for x in c.collectives):  # all-to-all: pairwise
        return f"ring collectives over {on}"
    nics = c.nics_per_node or c.gpus_per_node
    return (f"hierarchical collectives where a group spans nodes (--collective {c.algorithm}; "
            f"{nics} NICs per node of {c.gpus_per_node}), a flat ring over {on}")  # fmt: skip


def _time(c: Communication, t: float) -> str:
    return "-" if c.link is None else format_seconds(t)


def _units(layers: list[LayerTraffic]) -> list[str]:
    """'name bytes', runs of equal neighbours as 'first .. last: bytes each (n)'."""
    out: list[str] = []
    i = 0
    while i < len(layers):
        j = i
        while j + 1 < len(layers) and layers[j + 1].sent == layers[i].sent and (
            layers[j + 1].params == layers[i].params
        ):
            j += 1
        sent = format_bytes(layers[i].sent)
        if j > i:
            out.append(f"{layers[i].module} .. {layers[j].module}: {sent} each ({j - i + 1})")
        else:
            out.append(f"{layers[i].module} {sent}")
        i = j + 1
    return out


__all__ = ["communication_lines"]
