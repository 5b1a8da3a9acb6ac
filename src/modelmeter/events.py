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


# ---- a training step (frontends/torch/training.py traces it) ---------------------------------

EIGHT_BIT = ("adam8bit", "adamw8bit")  # bitsandbytes' (frontends/torch/bnb_optimizers.py)
OPTIMIZERS = ("sgd", "adam", "adamw", "adafactor", *EIGHT_BIT)
VARIANTS = ("foreach", "for-loop", "fused")
PRECISIONS = ("fp32", "bf16", "fp16", "bf16-mixed", "fp16-mixed")


@dataclass(frozen=True, slots=True)
class StepSetup:
    """How a training step runs: the optimizer (``torch.optim`` SGD with momentum, Adam,
    AdamW, Adafactor: factored second moments; bitsandbytes' 8-bit Adam and AdamW) and its
    implementation, the precision and the hyper-parameters that change the
    counts (a weight decay of 0 skips its op; SGD's momentum adds a buffer)."""

    optimizer: str = "adamw"
    variant: str = "foreach"
    precision: str = "fp32"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float | None = None  # None: the optimizer's default (AdamW 0.01, else 0)
    checkpointing: bool = False  # activation checkpointing of the repeated blocks

    @property
    def mixed(self) -> bool:
        """Half-precision weights and gradients, fp32 master weights in the optimizer."""
        return self.precision.endswith("-mixed")

    @property
    def model_dtype(self) -> str:
        """The dtype the model's weights, activations and gradients are in."""
        half = self.precision.removesuffix("-mixed")
        return {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[half]


@dataclass(frozen=True, slots=True)
class StepMemory:
    """Device bytes of one traced training step by category, and its peak.

    ``weights``/``buffers``: the model's tensors in the dtype they run in; ``master``: fp32
    copies of the trainable weights (mixed precision); ``gradients``: the trainable
    parameters' ``.grad`` after the backward; ``states``: the optimizer's state tensors on the
    device by name (``exp_avg`` ...), ``host_states`` those it keeps on the host (Adam's
    ``step`` counters); ``inputs``: the batch; ``activations``: what the forward leaves alive
    for the backward (live at its end, the inputs apart). The timeline is the live bytes of
    non-static tensors after each op (``timeline[i]`` after event i); ``grad_born`` the event
    index at which each gradient's storage was made, with its bytes. ``saved_by_scope``
    splits ``activations`` by the innermost module (``OpEvent.scope``) whose op made each
    storage (the per-module attribution a tensor/pipeline split of activations needs)."""

    weights: int
    buffers: int
    master: int
    gradients: int
    states: dict[str, int]
    host_states: int
    inputs: int
    activations: int
    timeline: list[int] = field(default_factory=list, repr=False)
    grad_born: list[tuple[int, int]] = field(default_factory=list, repr=False)
    saved_by_scope: dict[str, int] = field(default_factory=dict, repr=False)
    # (event index at which it was made, bytes, inside the tensor-parallel region) of each
    # saved storage, in the order made (frontends/torch/tp_region.py: the split under --tp)
    saved_storages: list[tuple[int, int, bool]] = field(default_factory=list, repr=False)
    # the linear modules the tensor-parallel split replicates because a norm over their
    # output features follows (multi-head latent attention's down-projections: tp_region)
    replicated_linears: tuple[str, ...] = ()

    @property
    def static(self) -> int:
        """Bytes alive through the whole step: weights, buffers, master copies, states."""
        return self.weights + self.buffers + self.master + sum(self.states.values())
