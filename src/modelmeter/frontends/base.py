"""The frontend protocol: what every frontend (PyTorch, ONNX, ...) offers the use cases.

A frontend is an adapter between one kind of model and modelmeter's core: it says which
models it accepts, traces a model into a :class:`~modelmeter.events.Trace` (counted by the
builder), and runs a model for real to time it. Frontends never import the ``modelmeter``
facade nor a use case; use cases (``modelmeter.usecases``) pick one through
:func:`modelmeter.frontends.frontend_for`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from modelmeter.analysis.timings import Timings
    from modelmeter.events import Trace
    from modelmeter.inputs import InputRequest
    from modelmeter.report import Report

Progress = Callable[[str, int, int], None]  # (stage, done, total), after every call


class Frontend(Protocol):
    """One kind of model. ``name`` is the report's ``frontend`` field."""

    name: str

    def accepts(self, model: Any) -> bool:
        """Whether ``model`` (a name, a path, an object) is this frontend's; cheap, imports
        no framework the model cannot need."""
        ...

    def trace(
        self,
        model: Any,
        request: InputRequest,
        *,
        mode: str,
        convention: str,
        backward: bool,
    ) -> Trace:
        """One forward (and, with ``backward``, backward) pass as events."""
        ...

    def runner(self) -> Runner:
        """The run-and-time side (imports the framework)."""
        ...


@dataclass(frozen=True)
class RunOptions:
    """How a model is run to time it, as the measure use case was asked: ``dtype``
    canonical (or None), ``warmup`` >= 0 and ``repeats`` >= 1 already checked."""

    device: str = "cpu"
    dtype: str | None = None
    warmup: int = 3
    repeats: int = 10
    per_module: bool = False
    per_class: bool = False
    tf32: bool = False


@dataclass
class Prepared:
    """A model ready to time: what runs (``model``: the frontend's own copy, or a file) on
    ``device`` (the frontend's handle for it) with ``args``/``kwargs`` there; and what to
    analyse: ``analysis_model`` with ``request`` (named models' default inputs filled in).
    ``label`` names the report's model (None: the analysis' own); ``notes`` go to the result.
    """

    model: Any
    device: Any
    request: InputRequest
    analysis_model: Any
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str | None = None
    notes: list[str] = field(default_factory=list)


class Runner(Protocol):
    """Runs a frontend's models for real, to time them (the measure use case's side of a
    frontend). Errors are InputError (refused) or ModelRunError (the run failed)."""

    def check(self, model: Any, options: RunOptions) -> None:
        """Refuse options this frontend cannot honour, before anything is loaded."""
        ...

    def prepare(self, model: Any, request: InputRequest, options: RunOptions) -> Prepared:
        """Check the device and make the model and its inputs ready there."""
        ...

    def time(
        self,
        prepared: Prepared,
        report: Report,
        options: RunOptions,
        progress: Progress | None = None,
    ) -> Timings:
        """Warm up, then time ``options.repeats`` calls (and per module / per class where
        asked); ``report`` is the prepared model's analysis (its inputs' shapes)."""
        ...
