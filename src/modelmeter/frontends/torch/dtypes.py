"""Dtype mixes a meta run lets through but every real PyTorch kernel refuses.

Meta kernels check shapes, not whether the operands' dtypes can be computed together, so a
meta run happily multiplies an fp8 input with fp32 weights. Two rules of PyTorch itself (the
same on CPU and CUDA) are checked on the traced ops after a meta run, so that meta mode refuses
what a real run refuses:

- **contractions take one dtype.** ``mm``, ``addmm``, ``bmm``, ``convolution`` ... (the
  ``matmul`` and ``conv`` formula families) need every operand in the same dtype ("mat1 and
  mat2 must have the same dtype"); only the scaled fp8 matmuls (``_scaled_mm``) take their
  scales in another dtype by design, and the grouped matmul (``_grouped_mm``) its int32
  group offsets.
- **normalisations keep their input's dtype.** ``native_layer_norm``, ``native_batch_norm``,
  ``native_group_norm`` ... (the ``norm`` family) take their parameters and statistics in the
  input's dtype, or in float32 for a float16 or bfloat16 input ("mixed dtype (CPU)").
- **float8 is never promoted.** An op whose tensors mix a float8 dtype with another floating
  dtype fails ("Promotion for Float8 Types is not supported"); copies and casts are the way
  between them.

0-dimensional tensors are left out: they take part in type promotion as scalars do.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelmeter.events import OpEvent
from modelmeter.registry import Formula, lookup

_ONE_DTYPE_FAMILIES = frozenset({"matmul", "conv"})
_CASTS = ("copy", "_copy", "_to_copy", "to", "_scaled_", "clone", "lift_fresh")


def _floating(dtype: str) -> bool:
    return dtype.startswith(("float", "bfloat"))


def _norm_dtypes_fit(event: OpEvent) -> bool:
    first, *rest = [t.dtype for t in event.call.inputs if t.shape]
    allowed = {first, "float32"} if first in ("float16", "bfloat16") else {first}
    return all(d in allowed for d in rest)


def mixed_dtypes(events: Iterable[OpEvent]) -> str | None:
    """One line naming the first op a real run would refuse for its operands' dtypes, or
    None when every op's dtypes go together."""
    for event in events:
        if event.target.startswith(_CASTS):
            continue
        offs = event.call.args.get("offs")  # a grouped matmul's int32 group ends
        dtypes = sorted({t.dtype for t in event.call.inputs if t.shape and t is not offs})
        if len(dtypes) < 2:
            continue
        entry = lookup("aten", event.target)
        family = entry.family if isinstance(entry, Formula) else None
        floating = [d for d in dtypes if _floating(d)]
        if family in _ONE_DTYPE_FAMILIES:
            why = "PyTorch's kernels take one dtype for all operands"
        elif family == "norm" and not _norm_dtypes_fit(event):
            why = "a normalisation takes its parameters in its input's dtype or float32"
        elif len(floating) > 1 and any(d.startswith("float8") for d in floating):
            why = "PyTorch does not promote float8 types"
        else:
            continue
        where = f"module '{event.scope or '<root>'}'"
        return (
            f"{where}: {event.target} mixes {' and '.join(dtypes)} inputs, which a real run "
            f"refuses ({why}); give the inputs the weights' dtype, or --dtype/dtype= to "
            "analyse weights and inputs in one"
        )
    return None
