"""Reading the HTML report back (with the standard library's parser, no browser) and the
"rows add up" check on it: the module tree's rows (exact integers in ``data-v`` and the
``data-self-*`` attributes) add up, the root equals the totals table, and both equal the
report's totals; the operators add up to the totals too."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

from render_checks import RowsDontAddUp, check_rows

from modelmeter.report import Report


@dataclass
class Cell:
    attrs: dict[str, str]
    text: str = ""


@dataclass
class Row:
    attrs: dict[str, str]
    cells: list[Cell] = field(default_factory=list)


@dataclass
class Table:
    attrs: dict[str, str]
    head: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)

    def column(self, name: str) -> int:
        return self.head.index(name)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[Table] = []
        self._stack: list[Table] = []
        self._in_head = False
        self._cell: Cell | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._stack.append(Table(a))
        elif not self._stack:
            return
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr" and not self._in_head:
            self._stack[-1].rows.append(Row(a))
        elif tag in ("td", "th"):
            self._cell = Cell(a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._stack:
            self.tables.append(self._stack.pop())
        elif tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None and self._stack:
            table, cell = self._stack[-1], self._cell
            cell.text = cell.text.strip()
            if self._in_head:
                table.head.append(cell.text)
            elif table.rows:
                table.rows[-1].cells.append(cell)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.text += data


def parse_tables(html: str) -> dict[str, Table]:
    """The page's tables by their first class (``mm-tree``, ``mm-ops``, ``mm-totals-table``)."""
    p = _Parser()
    p.feed(html)
    p.close()
    return {t.attrs.get("class", "").split(" ")[0]: t for t in p.tables}


TREE_FIELDS = {"MACs": "macs", "FLOPs": "flops", "Bytes moved": "bytes", "Params": "params"}
TOTALS = {"params": "params", "MACs": "macs", "FLOPs": "flops", "bytes read": "bytes_read",
          "bytes written": "bytes_written"}  # fmt: skip


def tree_rows(html: str) -> list[tuple[str, int, dict[str, int], dict[str, int]]]:
    """(name, depth, totals, own) of every tree row, in the page's order."""
    tree = parse_tables(html)["mm-tree"]
    cols = {f: tree.column(h) for h, f in TREE_FIELDS.items()}
    out = []
    for r in tree.rows:
        total = {f: int(r.cells[i].attrs["data-v"]) for f, i in cols.items()}
        own = {f: int(r.attrs[f"data-self-{f}"]) for f in cols}
        out.append((r.attrs["data-name"], int(r.attrs["data-depth"]), total, own))
    return out


def totals_table(html: str) -> dict[str, int]:
    """The exact figures of the totals table, keyed as the JSON's ``total``."""
    rows = {r.attrs["data-key"]: r for r in parse_tables(html)["mm-totals-table"].rows}
    return {key: int(rows[label].cells[1].attrs["data-v"]) for label, key in TOTALS.items()}


def check_html(html: str, report: Report) -> None:
    """The tree's rows add up, the root row = the report's totals (and = the totals table,
    where the page has one), and the operator rows add up to the totals."""
    rows = tree_rows(html)
    check_rows(rows, tuple(TREE_FIELDS.values()), "html")
    t = report.total()
    root = rows[0][2]
    want = {f: getattr(t, f) for f in TOTALS.values()}
    tables = parse_tables(html)
    if "mm-totals-table" in tables and totals_table(html) != want:
        raise RowsDontAddUp(f"html: totals table {totals_table(html)} != the report's {want}")
    for f in ("macs", "flops", "params"):
        if root[f] != want[f]:
            raise RowsDontAddUp(f"html: root {f} {root[f]} != total {want[f]}")
    if root["bytes"] != t.bytes_read + t.bytes_written:
        raise RowsDontAddUp("html: root bytes moved != bytes read + written")
    ops = tables["mm-ops"]
    for name, f in (("MACs", "macs"), ("FLOPs", "flops"), ("Bytes read", "bytes_read"),
                    ("Bytes written", "bytes_written")):  # fmt: skip
        k = ops.column(name)
        got = sum(int(r.cells[k].attrs["data-v"]) for r in ops.rows)
        if got != want[f]:
            raise RowsDontAddUp(f"html: operators' {f} sum to {got}, not {want[f]}")


class _Outline(HTMLParser):
    """One line per element (indented, with its attributes) and per text run; the inline
    style and script stand as one line each (their text is not structure)."""

    VOID = {"meta", "input", "br", "link", "img", "line", "polyline", "circle", "path"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.depth = 0
        self.raw = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        text = " ".join(f'{k}="{v}"' if v is not None else k for k, v in attrs)
        self.lines.append("  " * self.depth + f"<{tag}{' ' + text if text else ''}>")
        if tag in ("style", "script"):
            self.raw = tag
        if tag not in self.VOID:
            self.depth += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.depth -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID:
            self.depth -= 1
        self.raw = ""

    def handle_data(self, data: str) -> None:
        if self.raw:
            self.lines.append("  " * self.depth + f"({self.raw}: {len(data.splitlines())} lines)")
        elif data.strip():
            self.lines.append("  " * self.depth + repr(data.strip()))


def outline(html: str) -> str:
    """The page's structure as indented text (for a gold file that pixels do not churn)."""
    p = _Outline()
    p.feed(html)
    p.close()
    return "\n".join(p.lines) + "\n"
