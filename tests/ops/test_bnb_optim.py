"""bitsandbytes' optimizer kernels (``ops/bnb_optim.py``) on hand-built calls: FLOPs and bytes
per element derived from the kernels' arithmetic; bitsandbytes need not be installed."""

from __future__ import annotations

import pytest

from modelmeter.report import Cost

OP8 = "bitsandbytes.optimizer_update_8bit_blockwise"
OP32 = "bitsandbytes.optimizer_update_32bit"


def _blockwise_args(kit, n: int, dtype: str, wd: float) -> dict:  # noqa: ANN001
    """The op's arguments as bitsandbytes' Adam8bit passes them for a tensor of n elements."""
    blocks = -(-n // 256)
    return {
        "optimizer_name": "adam", "g": kit.t(n, dtype=dtype), "p": kit.t(n, dtype=dtype,
        weight=True), "state1": kit.t(n, dtype="uint8"), "state2": kit.t(n, dtype="uint8"),
        "beta1": 0.9, "beta2": 0.999, "beta3": 0.0, "alpha": 0.0, "eps": 1e-8, "step": 2,
        "lr": 1e-3, "qmap1": kit.t(256), "qmap2": kit.t(256), "absmax1": kit.t(blocks),
        "absmax2": kit.t(blocks), "weight_decay": wd, "gnorm_scale": 1.0,
    }  # fmt: skip


def test_8bit_blockwise_adamw_of_a_4096_square_fp32_weight(kit) -> None:  # noqa: ANN001
    n = 4096 * 4096  # 16,777,216 elements, 65,536 blocks of 256
    c = kit.cost(OP8, _blockwise_args(kit, n, "float32", 0.01), ())
    # FLOPs per element: gnorm scale 1 + v·b2 + (1-b2)·g·g 4 + m·b1 + (1-b1)·g 3
    # + p + step·m/(sqrt(v) + eps') 5 = 13 (torch's Adam count), decay p·(1 - lr·wd) 1 = 14;
    # dequantise 2 states x 1 (code·absmax) = 2; new absmax 2 x (abs, max) = 4;
    # requantise 2 x (divide 1 + 8 compares of the binary search + midpoint add, multiply
    # and a compare 3) = 24: 14 + 2 + 4 + 24 = 44 per element -> 44 x 16,777,216
    assert c.flops == 44 * n == 738_197_504
    # read: g 4n + p 4n + state1 n + state2 n = 10n = 167,772,160; absmax 2 x 65,536 x 4
    # = 524,288; the two code maps 2 x 256 x 4 = 2,048 -> 168,298,496
    # written: p 4n + states 2n = 100,663,296 + absmax 524,288 = 101,187,584
    # weight bytes: p, 4n = 67,108,864
    assert c == Cost(flops=44 * n, bytes_read=168_298_496, bytes_written=101_187_584,
                     weight_bytes=67_108_864)  # fmt: skip


def test_8bit_blockwise_adam_bf16_and_a_partial_block(kit) -> None:  # noqa: ANN001
    n = 4096 + 100  # 17 blocks: 16 full, one of 100 elements (the absmax is per block)
    c = kit.cost(OP8, _blockwise_args(kit, n, "bfloat16", 0.0), ())
    # Adam (no decay): 13 + 30 = 43 per element: 43 x 4,196 = 180,428
    assert c.flops == 43 * n == 180_428
    # read: g 2n + p 2n + states 2n = 6 x 4,196 = 25,176; absmax 2 x 17 x 4 = 136;
    # code maps 2,048 -> 27,360. written: p 2n + states 2n = 16,784 + 136 = 16,920
    assert (c.bytes_read, c.bytes_written) == (27_360, 16_920)


def test_32bit_adam_of_a_small_tensor(kit) -> None:  # noqa: ANN001
    # tensors under 4,096 elements: fp32 states, bitsandbytes' 32-bit kernel; its arguments
    # as the optimizer passes them (no update-norm vector)
    n = 1024
    args = {"optimizer_name": "adam", "g": kit.t(n, dtype="bfloat16"),
            "p": kit.t(n, dtype="bfloat16", weight=True), "state1": kit.t(n), "state2": kit.t(n),
            "unorm_vec": None, "max_unorm": 0.0, "param_norm": 0.0, "beta1": 0.9,
            "beta2": 0.999, "beta3": 0.0, "alpha": 0.0, "eps": 1e-8, "weight_decay": 0.01,
            "step": 2, "lr": 1e-3, "gnorm_scale": 1.0}  # fmt: skip
    c = kit.cost(OP32, args, ())
    # AdamW's 14 per element: 14,336. read g 2n + p 2n + m 4n + v 4n = 12n = 12,288;
    # written p 2n + m 4n + v 4n = 10n = 10,240; weight bytes p 2n = 2,048
    assert c == Cost(flops=14 * n, bytes_read=12_288, bytes_written=10_240, weight_bytes=2_048)


def test_other_bitsandbytes_updates_have_no_formula(kit) -> None:  # noqa: ANN001
    args = _blockwise_args(kit, 4096, "float32", 0.0) | {"optimizer_name": "lion"}
    with pytest.raises(ValueError, match="lion"):
        kit.cost(OP8, args, ())


def test_bitsandbytes_ops_without_a_formula_are_unsupported() -> None:
    from modelmeter.registry import lookup

    assert lookup("aten", "bitsandbytes.dequantize_blockwise") is None
    assert lookup("aten", "bitsandbytes.int8_linear_matmul") is None
