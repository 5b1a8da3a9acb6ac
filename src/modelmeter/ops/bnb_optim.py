"""bitsandbytes' optimizer kernels (``bitsandbytes.optimizer_update_*``): one custom op per
parameter tensor that updates the parameter and its states in place and returns nothing, so
the bytes it writes are given here (the parameter and the states), not read off outputs.

Counted for Adam (``optimizer_name`` "adam", which bitsandbytes' Adam8bit and AdamW8bit
pass); per element, with the project's rule that a multiply, add, divide, square root or
compare is 1 FLOP and a table lookup is a load:

- Adam's arithmetic: :data:`ADAM_FLOPS` = 13, as the ``torch.optim.Adam`` step counts it
  (docs/training.md), and the kernel does the same count: the gradient times its norm scale
  1, the second moment ``v·β2 + (1-β2)·g·g`` 4, the first ``m·β1 + (1-β1)·g`` 3, the update
  ``p + step_size·m/(√v + ε')`` 5 (√, +, ÷, ×, +); decoupled weight decay
  ``p·(1 - lr·wd)`` 1 more when ``weight_decay`` > 0 (AdamW: 14);
- the 8-bit blockwise kernel (:data:`BLOCKWISE_FLOPS` = 30 more) also dequantises both
  states (the code looked up, times the block's absmax: 1 each, 2), takes each state's new
  block absmax (``|x|`` and a max: 2 each, 4), and requantises both (divide by the new absmax
  1, a binary search of the 256 sorted codes 8 compares, rounding to the nearer of the two
  last codes: their midpoint, an add and a multiply, and a compare, 3: 12 each, 24). The
  guards (a gradient that is NaN or infinite skips its update; the first moment's sign kept
  through the rounding) are branches, not counted.

Bytes: every tensor argument read once (the gradient, the parameter, both states, the two
256-entry float32 code maps each kernel loads, the absmax of each state: 4 bytes per
256-element block); written: the parameter, the states and the absmax. An ``optimizer_name``
other than "adam" (Lion, momentum, RMSprop ... 8-bit) has no formula and is refused.
"""

from __future__ import annotations

from modelmeter.registry import OpCall, TensorMeta, Work, register_op, unfused_bytes

ADAM_FLOPS = 13  # per element; decoupled weight decay adds 1
BLOCKWISE_FLOPS = 2 + 4 + 24  # dequantise, new absmax, requantise: both states


def _adam(call: OpCall) -> int:
    """Adam's FLOPs per element, weight decay included where it is applied."""
    name = call.args.get("optimizer_name")
    if name != "adam":
        raise ValueError(f"{call.op}: no formula for bitsandbytes' {name!r} update (only adam)")
    return ADAM_FLOPS + (1 if call.arg("weight_decay", 0.0) > 0 else 0)


def _updated(call: OpCall, names: tuple[str, ...]) -> int:
    """Bytes written: the named tensor arguments (updated in place), each once."""
    return sum(t.nbytes for n in names if isinstance(t := call.args.get(n), TensorMeta))


@register_op("bnb_optimizer_8bit_blockwise", family="elementwise",
             aten=["bitsandbytes.optimizer_update_8bit_blockwise"])  # fmt: skip
def bnb_optimizer_8bit_blockwise(call: OpCall) -> Work:
    """bitsandbytes' 8-bit block-wise Adam step of one parameter tensor of n elements:
    (13 + 30) n FLOPs, (14 + 30) n with weight decay: Adam's 13 as torch.optim's counts
    (decay 1), dequantising both states 2, their new block absmax 4, requantising both 24
    (divide, an 8-compare binary search of the 256 codes, rounding to the nearer 3). Reads
    every tensor argument once (the gradient, the parameter, the uint8 states, 4 B of absmax
    per 256 elements each, the two 1 KB code maps); writes the parameter, both states and
    both absmax vectors."""
    n = call.args["p"].numel
    read, _, weight = unfused_bytes(call.inputs, ())
    written = _updated(call, ("p", "state1", "state2", "absmax1", "absmax2"))
    return Work(flops=(_adam(call) + BLOCKWISE_FLOPS) * n, bytes_read=read,
                bytes_written=written, weight_bytes=weight)  # fmt: skip


@register_op("bnb_optimizer_32bit", family="elementwise",
             aten=["bitsandbytes.optimizer_update_32bit"])  # fmt: skip
def bnb_optimizer_32bit(call: OpCall) -> Work:
    """bitsandbytes' 32-bit Adam step of one parameter tensor of n elements (the tensors
    under ``min_8bit_size``): 13 n FLOPs, 14 n with weight decay; reads the gradient, the
    parameter and both fp32 states, writes the parameter and the states. The update-norm
    clipping pass (``max_unorm`` > 0, which the counted optimizers leave at 0) is not
    counted."""
    n = call.args["p"].numel
    read, _, weight = unfused_bytes(call.inputs, ())
    written = _updated(call, ("p", "state1", "state2"))
    return Work(flops=_adam(call) * n, bytes_read=read, bytes_written=written,
                weight_bytes=weight)  # fmt: skip
