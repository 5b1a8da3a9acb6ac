"""The analyze use case: ``analyze(model, inputs) -> Report``.

What the caller gave is turned into one :class:`~modelmeter.inputs.InputRequest` here; a
named model is built by :func:`modelmeter.models.load` (its default inputs apply when none
were given); the frontend that accepts the model traces it, and the builder counts the trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelmeter.builder import build
from modelmeter.errors import InputError, NeedsData, first_line
from modelmeter.frontends import frontend_for
from modelmeter.host import collector_paused
from modelmeter.inputs import InputRequest, ShapeInput
from modelmeter.models.loaded import positions_note
from modelmeter.registry import CONVENTIONS
from modelmeter.storage import KVFormat, Pricing, WeightFormat

if TYPE_CHECKING:
    from modelmeter.report import Report


@collector_paused()
def analyze(
    model: Any,
    inputs: Any = None,
    *,
    kwargs: Mapping[str, Any] | None = None,
    mode: str = "auto",
    convention: str = "exact",
    dtype: str | None = None,
    batch: int | None = None,
    backward: bool = False,
    dims: Mapping[str, int] | None = None,
    weights: str | WeightFormat | None = None,
    kv: str | KVFormat | None = None,
) -> Report:
    """Analyse ``model`` and return its Report.

    ``model``: an ``nn.Module``, any callable on tensors, a name (``torchvision:resnet50``,
    ``hf:gpt2``, ``timm:NAME``, ``path/to/file.py:FACTORY``) or an ONNX model (a ``.onnx`` path
    or an ``onnx.ModelProto``). ``inputs``: a tensor, a tuple of tensors, shapes such as
    ``(1, 3, 224, 224)``, ``"1x3x224x224"`` or ``"1x128:int64"``, a list of those, or an
    :class:`~modelmeter.inputs.InputRequest` (then ``kwargs``, ``dtype``, ``batch`` and
    ``dims`` are given in it); named models bring a default. ``mode``: ``auto`` (meta, falling
    back to real CPU tensors when the model needs data), ``meta`` or ``real``. ``convention``:
    ``exact`` or ``2mac``. ``dtype``: analyse as if weights and floating activations were this
    dtype (bytes change, counts do not). ``batch``: the first dimension of every input, however
    given (a given tensor's rows are repeated in a real run; the tensor itself is unchanged).
    ``backward``: also run and count the backward pass (phase ``backward``), as one training
    step would. ``dims``: values of symbolic input dimensions (ONNX models), e.g.
    ``{"batch": 8}``. ``weights``: store the weights of matrix products in this format
    (``int4`` = int4 in groups of 128 with fp16 scales and int4 zero points, ``int4:g64``,
    ``int8`` per channel, ``fp8``, ``fp16`` ...; weight-only: compute stays in the activation
    dtype); ``kv``: store KV-cache tensors in this dtype (fp16, bf16, fp8, int8, int4).
    Bytes change, counts do not; the report's ``storage`` says what it assumed.
    """
    if convention not in CONVENTIONS:
        raise InputError(f"unknown convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
    pricing = Pricing.of(weights, kv)  # a bad format fails before the model loads
    request = InputRequest.from_api(inputs, kwargs, batch=batch, dims=dims, dtype=dtype)
    frontend = frontend_for(model)
    label = name = limit = None
    if isinstance(model, str) and frontend.name == "torch":  # a name, not a file to read
        name = model
        model, request, label, limit = _load_named(frontend, model, request, real=mode == "real")
    try:
        trace = frontend.trace(
            model, request, mode=mode, convention=convention, backward=backward
        )
    except NeedsData as e:  # a named model built on meta: rebuild it with real weights
        if name is None or mode != "auto" or e.weight_bytes > REAL_FALLBACK_BYTES:
            raise
        real = frontend.load(name, real=True).model
        trace = frontend.trace(real, request, mode="real", convention=convention,
                               backward=backward)  # fmt: skip
        trace.notes.append(
            "ran on real CPU tensors with random weights (seeded): a meta-device run failed "
            f"({type(e.__cause__).__name__}: {first_line(e.__cause__, '')})"
        )
    if label:
        trace.model = label
        note = positions_note(limit, token_lengths(request), name)
        trace.notes.extend([note] if note else [])
    return build(trace, pricing=pricing)


REAL_FALLBACK_BYTES = 4 * 10**9
"""In ``auto`` mode a named model built on meta whose forward needs data (``.item()``, a
data-dependent shape: transformers' check of an ``attention_mask``) is rebuilt with real random
weights on the CPU and run for real when its weights take at most this many bytes; a larger
one is refused with the hint to ask for ``mode='real'``."""


def _load_named(
    frontend: Any, name: str, request: InputRequest, *, real: bool
) -> tuple[Any, InputRequest, str, int | None]:
    """The model a name builds (with real random weights for a ``real`` run), the request with
    its default inputs where none were given, its label and the token positions its config
    allows (None: no limit known)."""
    if request.dims:  # refused before the model is built (as the frontend would after)
        raise InputError("--dim/dims only applies to ONNX models (named dimensions)")
    loaded = frontend.load(name, real=real)
    request = request.with_defaults(loaded.inputs, loaded.kwargs, loaded.dtypes)
    return loaded.model, request, loaded.label, loaded.max_positions


def token_lengths(request: InputRequest) -> list[int]:
    """The lengths (second dimension) of the integer inputs of rank 2 or more given by shape."""
    items = (*request.args, *request.kwargs.values())
    return [i.shape[1] for i in items if isinstance(i, ShapeInput) and len(i.shape) >= 2
            and (i.dtype or "").startswith(("int", "uint"))]  # fmt: skip


__all__ = ["analyze", "token_lengths"]
