"""The frontend protocol: what every frontend (PyTorch, ONNX, ...) offers the use cases.

A frontend is an adapter between one kind of model and modelmeter's core: it says which
models it accepts, traces a model into a :class:`~modelmeter.events.Trace` (counted by the
builder), and runs a model for real to time it. Frontends never import the ``modelmeter``
facade nor a use case; use cases (``modelmeter.usecases``) pick one through
:func:`modelmeter.frontends.frontend_for`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from modelmeter.events import Trace
    from modelmeter.inputs import InputRequest

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

    # The run-and-time side (``prepare_run``/``time``) is declared by the measure use case's
    # module; see modelmeter.usecases.measure.
