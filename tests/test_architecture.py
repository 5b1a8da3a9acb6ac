"""The shape of the source tree (docs/architecture.md): no import cycles, nothing below the
facade imports it, modules and functions stay small. Read from the source text with ``ast``:
function-level imports count (they run too); imports under ``if TYPE_CHECKING:`` do not."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "modelmeter"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _targets(module: str, path: Path) -> set[str]:
    """The modelmeter modules ``module`` imports (a ``from X import y`` names ``X.y`` where
    that is a module, else ``X``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        out.update(n for n in names if n == PACKAGE or n.startswith(PACKAGE + "."))
    out.discard(module)
    return {n for n in out if n in MODULES}


GRAPH = {m: _targets(m, p) for m, p in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_the_cycle_finder_finds_a_cycle() -> None:
    # a -> b -> c -> a is one component; d -> a is outside it
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_imports_are_read_with_function_level_ones() -> None:
    # the command line's own module imports the package's error types
    assert "modelmeter.errors" in GRAPH["modelmeter.cli"]
    assert len(MODULES) > 50


def test_no_import_cycle_in_src() -> None:
    assert _cycles(GRAPH) == []


def test_nothing_inside_imports_the_facade() -> None:
    # ``import modelmeter`` from inside the package would tie every layer to the top one
    importers = sorted(m for m, targets in GRAPH.items() if PACKAGE in targets)
    assert importers == [f"{PACKAGE}.__main__"] or importers == []


# Bottom to top (docs/architecture.md): a module may import its own layer and those below.
LAYERS = [
    "units", "errors", "storage", "shapes", "inputs", "costs", "report_tree", "report",
    "registry", "events",
    "files",
    "host", "ops", "builder", "models", "frontends", "hardware", "analysis", "usecases",
    "render", "commands", "cli", "__main__",
]  # fmt: skip
# The deliberate exceptions: frontends use the plain data of what a run measured and the one
# kernel-class rule; calibrate is a use case that lives beside the chips it writes. (A Report's
# Jupyter view is drawn by the renderer the facade registers in ``report.DISPLAY``.)
UPWARD = {
    ("frontends", "analysis.timings"),
    ("frontends", "analysis.classes"),
    ("frontends", "analysis.kernels"),
    ("hardware.calibrate", "analysis"),
    ("hardware.calibrate", "usecases.analyze"),
    ("hardware.calibrate_host", "usecases.generate"),  # predicts the tiny Llamas it times
}


def _layer(module: str) -> int:
    parts = module.split(".")[1:]
    return LAYERS.index(parts[0]) if parts else len(LAYERS)  # the facade sits on top


def _allowed(module: str, target: str) -> bool:
    m, t = module.removeprefix(PACKAGE + "."), target.removeprefix(PACKAGE + ".")
    return any(m.startswith(a) and (t == b or t.startswith(b + ".")) for a, b in UPWARD)


def test_every_module_has_a_layer() -> None:
    tops = {m.split(".")[1] for m in MODULES if "." in m}
    assert tops <= set(LAYERS)


def test_the_layer_check_tells_up_from_down() -> None:
    # ops (layer 10) importing render (17) goes up; render importing ops goes down
    assert _layer("modelmeter.render.table") > _layer("modelmeter.ops.conv")
    assert not _allowed("modelmeter.ops.conv", "modelmeter.render.table")
    assert _allowed("modelmeter.frontends.torch.timing", "modelmeter.analysis.timings")
    assert not _allowed("modelmeter.frontends.torch.timing", "modelmeter.analysis.roofline")


def test_imports_go_down_the_layers() -> None:
    upward = sorted(
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        for t in targets
        if _layer(t) > _layer(m) and not _allowed(m, t)
    )
    assert upward == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_and_function_sizes(module: str) -> None:
    path = MODULES[module]
    text = path.read_text(encoding="utf-8")
    assert text.count("\n") <= MAX_MODULE_LINES, f"{module}: {text.count(chr(10))} lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{module}: {', '.join(long)}"
