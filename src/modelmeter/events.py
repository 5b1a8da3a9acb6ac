"""What a frontend hands the builder: op events, the module tree and the parameters.

Frontends fill these from their framework; the builder turns them into a Report. Nothing
here imports a framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelmeter.registry import OpCall, Work
from modelmeter.report import InputSpec


@dataclass(frozen=True, slots=True)
class OpEvent:
    """One op as it ran: the innermost module's name (``scope``), the phase, and the call.

    ``work`` is its formula's result where the frontend already applied the formula (the
    ONNX walker does, to name the node when a graph's shapes do not fit its op): the builder
    uses it rather than applying the formula a second time."""

    scope: str
    frontend: str
    target: str
    call: OpCall
    phase: str = "forward"
    work: Work | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """The operator key used in reports, e.g. ``aten.convolution``; ops of other
        libraries keep their namespace (``torchvision.nms``). ONNX keys always start with
        ``onnx.``, also for ops of other domains (``onnx.com.microsoft.QGemm``)."""
        if "." in self.target and self.frontend != "onnx":
            return self.target
        return f"{self.frontend}.{self.target}"


@dataclass(frozen=True, slots=True)
class ModuleInfo:
    name: str
    type: str
    calls: int = 0
    output_shapes: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class ParamInfo:
    """A parameter or buffer, listed once under the first module that owns it."""

    name: str
    owner: str
    numel: int
    nbytes: int
    sid: int
    trainable: bool = False
    buffer: bool = False


@dataclass(slots=True)
class Trace:
    """Everything one frontend run produced."""

    model: str
    frontend: str
    mode: str
    convention: str
    inputs: list[InputSpec]
    modules: list[ModuleInfo]
    params: list[ParamInfo]
    events: list[OpEvent]
    activation_bytes: int = 0
    peak_activation_bytes: int = 0
    notes: list[str] = field(default_factory=list)
    # live activation bytes after each new storage, in run order (its maximum is the peak);
    # empty where the frontend does not record it
    live_timeline: list[int] = field(default_factory=list)
