"""Helpers for formula tests: hand-built calls through the registry, and whole traces."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

import modelmeter
from modelmeter.builder import cost_of
from modelmeter.registry import Formula, OpCall, TensorMeta, lookup
from modelmeter.report import Cost

_SIDS = itertools.count(1)


class OpKit:
    """``t`` makes tensor metadata (each with its own storage unless ``sid`` is given);
    ``cost`` applies a registered formula to a hand-built call (tensor arguments, in order,
    are the call's inputs, as the tracer does); ``run`` analyses a function or module and
    checks that nothing was unsupported."""

    @staticmethod
    def t(*shape: int, dtype: str = "float32", weight: bool = False, sid: int = 0) -> TensorMeta:
        return TensorMeta(tuple(shape), dtype, sid or next(_SIDS), weight)

    @staticmethod
    def cost(
        op: str,
        args: dict[str, Any],
        out: TensorMeta | tuple[TensorMeta, ...],
        *,
        frontend: str = "aten",
        convention: str = "exact",
    ) -> Cost:
        entry = lookup(frontend, op)
        assert isinstance(entry, Formula), f"{frontend}.{op} has no formula"
        inputs: list[TensorMeta] = []
        for value in args.values():
            if isinstance(value, TensorMeta):
                inputs.append(value)
            elif isinstance(value, (list, tuple)):
                inputs.extend(v for v in value if isinstance(v, TensorMeta))
        outputs = out if isinstance(out, tuple) else (out,)
        return cost_of(entry, OpCall(op, args, tuple(inputs), outputs, convention))

    @staticmethod
    def run(fn: Callable[..., Any], *inputs: Any, **kw: Any) -> modelmeter.Report:
        kw.setdefault("mode", "meta")
        r = modelmeter.analyze(fn, inputs if len(inputs) != 1 else inputs[0], **kw)
        assert not r.unsupported, r.unsupported
        return r

    @staticmethod
    def ops(report: modelmeter.Report) -> dict[str, int]:
        """Calls per operator key."""
        return {k: v.calls for k, v in report.by_operator().items()}


@pytest.fixture
def kit() -> OpKit:
    return OpKit()
