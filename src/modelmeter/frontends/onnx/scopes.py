"""Module scopes from ONNX nodes, so that the tree looks like the PyTorch one.

Two sources, in order:

- the metadata ``torch.onnx.export(dynamo=True)`` writes on every node:
  ``pkg.torch.onnx.name_scopes`` (``['', 'layer1', 'layer1.0', 'layer1.0.conv1', 'conv2d_1']``:
  the module path, then the node) and ``pkg.torch.onnx.class_hierarchy`` (the module classes);
- the node name, as the TorchScript exporter writes it: ``/layer1/layer1.0/conv1/Conv`` is op
  ``Conv`` in module ``layer1.0.conv1``. Each path component is a child's name relative to
  its parent, except that children of containers repeat the container's name
  (``features/features.0/features.0.0``); a component starting with the previous one plus
  ``.`` replaces it. A second call of a module is written ``relu_1`` beside ``relu``; such a
  scope is folded into the first one and counted as another call.

Nodes without either (other exporters) belong to the root.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any

_NAME_SCOPES = "pkg.torch.onnx.name_scopes"
_CLASSES = "pkg.torch.onnx.class_hierarchy"
_CALL_SUFFIX = re.compile(r"^(?P<base>.+)_(?P<n>\d+)$")


@dataclass
class Scope:
    """Where a node belongs: its module chain (outermost first, full names) and, when the
    exporter recorded them, the class names of those modules (and of the root)."""

    chain: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    root_class: str | None = None

    @property
    def name(self) -> str:
        return self.chain[-1] if self.chain else ""


def _metadata(node: Any) -> dict[str, str]:
    return {p.key: p.value for p in node.metadata_props}


def _literal_list(text: str | None) -> list[str] | None:
    if not text:
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else None


def _short(cls: str) -> str:
    return cls.rsplit(".", 1)[-1]


def chain_from_path(parts: list[str]) -> tuple[str, ...]:
    """Full module names along a TorchScript scope path (see the module docstring)."""
    comps: list[str] = []
    chain: list[str] = []
    for part in parts:
        if not part:
            continue
        if comps and part.startswith(comps[-1] + "."):
            comps[-1] = part
        else:
            comps.append(part)
        chain.append(".".join(comps))
    return tuple(chain)


def node_scope(node: Any) -> Scope:
    """The scope of one node (see the module docstring)."""
    md = _metadata(node) if node.metadata_props else {}
    scopes = _literal_list(md.get(_NAME_SCOPES))
    if scopes is not None:
        classes = _literal_list(md.get(_CLASSES)) or []
        chain = tuple(s for s in scopes[1:-1] if s)
        mods = tuple(_short(c) for c in classes[1 : 1 + len(chain)])
        root = _short(classes[0]) if classes else None
        return Scope(chain, mods if len(mods) == len(chain) else (), root)
    name = node.name or ""
    if "/" in name:
        return Scope(chain_from_path(name.split("/")[:-1]))
    return Scope()


@dataclass
class ModuleTree:
    """Scopes seen in a graph: every module with its class (if known), call count, and the
    mapping of repeated-call scopes onto the module they call again."""

    order: list[str] = field(default_factory=list)
    classes: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    alias: dict[str, str] = field(default_factory=dict)
    root_class: str | None = None

    def add(self, scope: Scope) -> None:
        for i, name in enumerate(scope.chain):
            if name not in self.calls:
                self.order.append(name)
                self.calls[name] = 1
            if scope.classes and name not in self.classes:
                self.classes[name] = scope.classes[i]
        if scope.root_class and self.root_class is None:
            self.root_class = scope.root_class

    def fold_repeated_calls(self) -> None:
        """``a.relu_1`` beside ``a.relu`` (no class recorded): a second call of ``a.relu``."""
        known = set(self.order)
        for name in sorted(self.order, key=lambda n: n.count(".")):
            if name in self.classes or name in self.alias:
                continue
            parent, _, last = name.rpartition(".")
            m = _CALL_SUFFIX.match(last)
            if not m:
                continue
            base = f"{parent}.{m.group('base')}" if parent else m.group("base")
            base = self.alias.get(base, base)
            if base in known and base != name:
                self.alias[name] = base
                self.calls[base] = self.calls.get(base, 1) + 1
                prefix = name + "."
                for other in self.order:  # the call's submodules are the base's submodules
                    if other.startswith(prefix):
                        target = base + "." + other[len(prefix) :]
                        self.alias[other] = target
                        if target in known:
                            self.calls[target] = self.calls.get(target, 1) + 1
        self.order = [n for n in self.order if n not in self.alias]
        for n in list(self.calls):
            if n in self.alias:
                del self.calls[n]

    def resolve(self, name: str) -> str:
        return self.alias.get(name, name)


__all__ = ["ModuleTree", "Scope", "chain_from_path", "node_scope"]
