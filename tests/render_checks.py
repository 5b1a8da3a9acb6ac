"""The invariant "rows add up": a parent's total = its own cost + its children's totals, root = report total.

Checked on the report's tree and, by parsing the numbers back, on every rendered format: JSON
(all modules), CSV and Markdown (the rows shown at a depth: a row cut at the depth shows its
whole subtree, so it is only checked not to be below its own cost) and the text table (its
numbers are the rows' totals, and they add up within the rounding of their SI prefixes).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence

from modelmeter.render.csvfmt import COST_FIELDS, render_csv
from modelmeter.render.jsonfmt import render_json
from modelmeter.render.markdown import render_markdown
from modelmeter.render.table import COLUMNS, render_table, table_cells
from modelmeter.render.table_rows import TableView, table_rows
from modelmeter.report import Cost, Report
from modelmeter.units import parse_si


class RowsDontAddUp(AssertionError):
    """A rendered or computed row does not equal its own cost plus its children's totals."""


Row = tuple[str, int, dict[str, int], dict[str, int]]  # name, depth, total, self


def _fail(msg: str) -> None:
    raise RowsDontAddUp(msg)


def check_rows(rows: Sequence[Row], fields: Sequence[str], what: str) -> None:
    """Check parent total == self + sum(children totals) over depth-ordered rows.

    Children of a row are the following rows at depth+1 until the depth drops back. A row
    without children shown (a leaf, or cut at the depth) only needs total >= self.
    """
    if not rows:
        _fail(f"{what}: no rows")
    if rows[0][1] != 0 or any(r[1] == 0 for r in rows[1:]):
        _fail(f"{what}: the first row, and only it, must be the root (depth 0)")
    errors = []
    for i, (name, depth, total, own) in enumerate(rows):
        if i and depth > rows[i - 1][1] + 1:
            _fail(f"{what}: row {name!r} skips a level (depth {depth})")
        kids = []
        for other in rows[i + 1 :]:
            if other[1] <= depth:
                break
            if other[1] == depth + 1:
                kids.append(other)
        for f in fields:
            if kids:
                expect = own[f] + sum(k[2][f] for k in kids)
                if total[f] != expect:
                    errors.append(
                        f"{name!r} {f} total {total[f]} != self {own[f]} + children "
                        f"{expect - own[f]}"
                    )
            elif total[f] < own[f]:
                errors.append(f"{name!r} {f} total {total[f]} is below its own {own[f]}")
    if errors:
        _fail(f"{what}: " + "; ".join(errors))


def _cost_dict(c: Cost) -> dict[str, int]:
    return {f: getattr(c, f) for f in COST_FIELDS}


def check_tree(report: Report) -> None:
    """The full tree: totals from self + children, the root = ``report.total()``, the sum over
    operators = the total, and parameters add up the same way."""
    for node in report.modules():
        expect = node.self_cost() + sum((c.total_cost() for c in node.children), Cost())
        if node.total_cost() != expect:
            _fail(f"tree: {node.name!r} total {node.total_cost()} != self + children {expect}")
        params = node.own.params + sum(c.total_params().params for c in node.children)
        if node.total_params().params != params:
            _fail(f"tree: {node.name!r} params do not add up")
    total = report.total()
    if report.root.total_cost() != total.cost:
        _fail("tree: the root's total is not the report's total")
    if total.params != report.root.total_params().params:
        _fail("tree: the root's params are not the report's params")
    by_op = sum((s.cost for s in report.by_operator().values()), Cost())
    if by_op != total.cost:
        _fail(f"tree: the sum over operators {by_op} != the total {total.cost}")


def check_json(text: str) -> None:
    """Every module of a JSON report adds up, the root = ``total``, operators sum to it."""
    doc = json.loads(text)
    rows = [(m["name"], int(m["depth"]), m["total"], m["self"]) for m in doc["modules"]]
    check_rows(rows, COST_FIELDS, "json")
    for f in COST_FIELDS:
        if rows[0][2][f] != doc["total"][f]:
            _fail(f"json: root {f} {rows[0][2][f]} != total {doc['total'][f]}")
        by_op = sum(int(v[f]) for v in doc["by_operator"].values())
        if by_op != doc["total"][f]:
            _fail(f"json: operators' {f} sum to {by_op}, not the total {doc['total'][f]}")
    if doc["modules"][0]["params"] != doc["total"]["params"]:
        _fail("json: root params != total params")


def _check_root(what: str, root: dict[str, int], report: Report | None, params: int) -> None:
    if report is None:
        return
    total = report.total()
    for f, v in _cost_dict(total.cost).items():
        if f in root and root[f] != v:
            _fail(f"{what}: root {f} {root[f]} != report total {v}")
    if params != total.params:
        _fail(f"{what}: root params {params} != report params {total.params}")


def check_csv(text: str, report: Report | None = None) -> None:
    """Parse a rendered CSV and check the rows shown add up (costs and params)."""
    records = list(csv.DictReader(io.StringIO(text)))
    fields = (*COST_FIELDS, "params")
    rows = [
        (
            r["name"],
            int(r["depth"]),
            {f: int(r[f]) for f in fields},
            {f: int(r[f"self_{f}"]) for f in fields},
        )
        for r in records
    ]
    check_rows(rows, fields, "csv")
    _check_root("csv", rows[0][2], report, rows[0][2]["params"])


_PIPE = re.compile(r"(?<!\\)\|")


def _md_table(lines: list[str], start: int) -> list[list[str]]:
    out = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        out.append([c.strip().replace("\\|", "|") for c in _PIPE.split(line)[1:-1]])
    return out


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def check_markdown(text: str, report: Report | None = None) -> None:
    """Parse a rendered Markdown report: module rows add up (MACs and FLOPs, from the Self
    columns) and the root row equals the totals section."""
    lines = text.splitlines()
    try:
        start = next(i for i, s in enumerate(lines) if s.startswith("| Module |"))
        tstart = next(i for i, s in enumerate(lines) if s.startswith("| Quantity |"))
    except StopIteration:
        _fail("markdown: module or totals table not found")
    header = [c.strip() for c in _PIPE.split(lines[start])[1:-1]]
    col = {h: i for i, h in enumerate(header)}
    rows = []
    for cells in _md_table(lines, start):
        total = {"macs": _int(cells[col["MACs"]]), "flops": _int(cells[col["FLOPs"]])}
        own = {"macs": _int(cells[col["Self MACs"]]), "flops": _int(cells[col["Self FLOPs"]])}
        total["bytes_read"] = _int(cells[col["Bytes read"]])
        total["bytes_written"] = _int(cells[col["Bytes written"]])
        rows.append((cells[col["Module"]], _int(cells[col["Depth"]]), total, own))
    check_rows(rows, ("macs", "flops"), "markdown")
    totals = {cells[0]: cells[1] for cells in _md_table(lines, tstart)}
    root = rows[0][2]
    for f, label in (
        ("macs", "MACs"),
        ("flops", "FLOPs"),
        ("bytes_read", "bytes read"),
        ("bytes_written", "bytes written"),
    ):
        if root[f] != _int(totals[label]):
            _fail(f"markdown: root {f} {root[f]} != totals section {totals[label]}")
    root_params = _int(_md_table(lines, start)[0][col["Params"]])
    if root_params != _int(totals["params"]):
        _fail("markdown: root params != totals section params")
    _check_root("markdown", root, report, root_params)


def _half_ulp(text: str) -> float:
    """Half the rounding step of an SI-formatted number (``516.26K`` -> 5.0)."""
    number = re.match(r"[-\d.]+", text.strip())
    if not number:
        raise RowsDontAddUp(f"table: not a number: {text!r}")
    mantissa = float(number.group())
    decimals = len(number.group().partition(".")[2])
    scale = parse_si(text) / mantissa if mantissa else 1.0
    return 0.5 * 10.0**-decimals * scale


def check_table(
    text: str, report: Report, depth: int | None = None, collapse: bool = True
) -> None:
    """The text table shows, row by row, the subtree totals of ``table_rows(report, depth)``
    (identical blocks collapsed, their figures summed), and its MACs and FLOPs parsed back add
    up (self from the report) within their rounding."""
    lines = text.splitlines()
    top = next((s for s in lines if s.startswith("╭")), None)
    if top is None:
        _fail("table: no table found")
    cuts = [i for i, ch in enumerate(top) if ch in "╭┬╮"]
    body = [s for s in lines if s.startswith("│")]
    cells = [[s[a + 1 : b].strip() for a, b in zip(cuts, cuts[1:])] for s in body]
    if cells[0][: len(COLUMNS)] != list(COLUMNS):
        _fail(f"table: unexpected header {cells[0]}")
    shown, expect = cells[1:], table_cells(report, depth, collapse=collapse)
    if len(shown) != len(expect):
        _fail(f"table: {len(shown)} rows shown, {len(expect)} expected")
    for got, want in zip(shown, expect):
        for g, w, col in zip(got, want, COLUMNS):
            w = w.strip()  # the cells are read back stripped (tree guides may lead with spaces)
            if g != w and not (g.endswith("…") and w.startswith(g[:-1])):
                _fail(f"table: row {want[0]!r} column {col!r} shows {g!r}, expected {w!r}")
    rows = table_rows(report, depth, collapse=collapse)
    for col, f in (("MACs", "macs"), ("FLOPs", "flops")):
        k = COLUMNS.index(col)
        values = [(parse_si(c[k]), _half_ulp(c[k])) for c in shown]
        for i, row in enumerate(rows):
            kids = []
            for j in range(i + 1, len(rows)):
                if rows[j].depth <= row.depth:
                    break
                if rows[j].depth == row.depth + 1:
                    kids.append(j)
            if not kids:
                continue
            own = getattr(row.self_cost, f)
            got = own + sum(values[j][0] for j in kids)
            slack = values[i][1] + sum(values[j][1] for j in kids)
            if abs(values[i][0] - got) > slack + 1e-9 * max(1.0, abs(got)):
                _fail(f"table: {row.name!r} {col} {shown[i][k]} != self + children ({got:g})")
    root_total = rows[0].total_cost
    if root_total != report.total().cost:
        _fail("table: the root row is not the report total")


def check_rows_add_up(report: Report, depth: int | None = None) -> None:
    """Check the invariant on the tree and on every rendered format at ``depth``.

    Raises :class:`RowsDontAddUp` (an AssertionError) naming the first row that does not.
    """
    check_tree(report)
    check_json(render_json(report))
    for view in (TableView(), TableView(collapse=False)):  # blocks collapsed and one by one
        check_csv(render_csv(report, depth, view=view), report)
        check_markdown(render_markdown(report, depth, view=view), report)
    check_table(render_table(report, depth), report, depth)
    flat = render_table(report, depth, view=TableView(collapse=False))
    check_table(flat, report, depth, collapse=False)
    from html_checks import check_html  # it reads rows with this module's check_rows

    from modelmeter.render.html_report import render_html_report

    check_html(render_html_report(report), report)


def check_diff(text: str, old: Report, new: Report) -> None:
    """A diff's JSON (rendered with every row) against the two reports it compares: the
    totals are each report's, each module's figures are its subtree's in its report, and the
    operator rows add up to the totals (old, new and change)."""
    d = json.loads(text)
    fields = ("macs", "flops", "bytes_read", "bytes_written")
    for side, report in (("old", old), ("new", new)):
        t = report.total()
        for f in fields:
            if d["totals"][f][side] != getattr(t, f):
                _fail(f"diff: {side} total {f} {d['totals'][f][side]} != {getattr(t, f)}")
            ops = sum((o[side] or {}).get(f, 0) for o in d["operators"])
            if ops != getattr(t, f):
                _fail(f"diff: {side} operators' {f} add up to {ops}, not {getattr(t, f)}")
        for m in d["modules"]:
            if m[side] is None:
                continue
            row = report[m["name"]]
            for f in fields:
                if m[side][f] != getattr(row, f):
                    _fail(f"diff: {side} {m['name']!r} {f} {m[side][f]} != {getattr(row, f)}")
    for f in fields:
        change = sum(o["change"][f] for o in d["operators"])
        if change != d["totals"][f]["change"]:
            _fail(f"diff: the operators' {f} changes add up to {change}, not the total's")
# ---- a training step (render/training.py) ---------------------------------------------------

_TRAIN_STATES = ("weights", "buffers", "master weights", "gradients", "optimizer states")


def check_training_json(text: str) -> None:
    """The phases add up to the step's total; the model-state categories to the model
    states; the optimizer states by name to their category."""
    d = json.loads(text)
    phases, total = d["phases"], d["total"]
    for f in COST_FIELDS:
        if sum(p[f] for p in phases.values()) != total[f]:
            _fail(f"training json: the phases' {f} do not add up to the total")
    mem = d["memory"]
    if sum(mem["categories"][k] for k in _TRAIN_STATES) != mem["model_states"]:
        _fail("training json: the categories do not add up to the model states")
    if sum(mem["optimizer_states"].values()) != mem["categories"]["optimizer states"]:
        _fail("training json: the optimizer states by name do not add up")


def check_training_table(text: str) -> None:
    """The text: the phases' MACs, FLOPs and bytes add up to the step row, and the model-state
    rows to 'model states', within the rounding of the numbers shown."""
    lines = text.splitlines()
    start = next(i for i, s in enumerate(lines) if s.startswith("phase "))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("step "))
    rows = [s.split("  ") for s in lines[start + 1 : end + 1]]  # the phases, then the step
    rows = [[c.strip() for c in r if c.strip()] for r in rows]
    for col in range(1, 5):
        parts = [(parse_si(r[col]), _half_ulp(r[col])) for r in rows[:-1]]
        step = parse_si(rows[-1][col])
        slack = _half_ulp(rows[-1][col]) + sum(h for _, h in parts)
        if abs(sum(v for v, _ in parts) - step) > slack:
            _fail(f"training table: column {col} does not add up to the step row")
    mem = {}
    begin = next(i for i, s in enumerate(lines) if s.startswith("memory "))
    for s in lines[begin + 1 :]:
        if not s.strip():
            break
        cells = re.split(r"\s{2,}", s.strip())
        label = cells[0].split(" (")[0]
        if label in (*_TRAIN_STATES, "model states"):
            mem[label] = cells[1]
    parts = [(parse_si(v), _half_ulp(v)) for k, v in mem.items() if k != "model states"]
    total = mem["model states"]
    if abs(sum(v for v, _ in parts) - parse_si(total)) > _half_ulp(total) + sum(
        h for _, h in parts
    ):
        _fail("training table: the model-state rows do not add up to 'model states'")
def check_generation_table(text: str) -> None:
    """The phase block of ``modelmeter generate``'s table adds up: total = prefill + all
    decode steps, and decode steps = new x mean, every column within its printed rounding;
    the memory block's total = weights + KV cache + activations."""
    rows = {}
    for line in text.splitlines():
        for label in ("prefill (", "decode step, mean", "decode, ", "total  "):
            if line.startswith(label):
                rows[label] = line
    cells = {k: [_cell(c) for c in re.split(r"\s{2,}", v.strip())[1:]] for k, v in rows.items()}
    steps = int(re.search(r"decode, (\d+) steps", rows["decode, "])[1])
    for i in range(len(cells["total  "])):
        (pre, ps), (dec, ds), (tot, ts) = (cells[k][i] for k in ("prefill (", "decode, ", "total  "))
        if abs(pre + dec - tot) > ps + ds + ts:
            _fail(f"generation table column {i}: {pre:g} + {dec:g} != {tot:g}")
        mean, ms = cells["decode step, mean"][i]
        if abs(steps * mean - dec) > steps * ms + ds:
            _fail(f"generation table column {i}: {steps} x {mean:g} != {dec:g}")
    mem = {m[1]: _cell(m[2]) for m in re.finditer(r"^  (weights|KV cache|activations \(peak\)|"
                                                   r"total)\s+(\S+ \S+)", text, re.M)}  # fmt: skip
    parts = [mem[k] for k in ("weights", "KV cache", "activations (peak)")]
    if abs(sum(v for v, _ in parts) - mem["total"][0]) > sum(s for _, s in parts) + mem["total"][1]:
        _fail("generation table: memory total != weights + KV cache + activations")


def _cell(text: str) -> tuple[float, float]:
    """A printed figure (``1.2G``, ``3.40 GB``) and half a unit of its last digit."""
    t = text.replace(" ", "")
    value = parse_si(t)
    digits = re.search(r"\.(\d+)", t)
    number = float(re.match(r"[\d.]+", t)[0])
    step = 10 ** -(len(digits[1]) if digits else 0)
    return value, (value / number if number else 1.0) * step / 2
