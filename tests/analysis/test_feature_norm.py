"""``ops.feature_norm.normalises_features``: the ops the tensor-parallel split reads as a norm
over a tensor's last axis (its features)."""

from __future__ import annotations

import pytest

from modelmeter.ops.feature_norm import normalises_features


@pytest.mark.parametrize(("op", "dims", "ndim", "expected"), [
    ("mean", [-1], 3, True),  # DeepSeek's RMSNorm: x.pow(2).mean(-1, keepdim=True)
    ("mean", [2], 3, True),  # the last of 3 dimensions, written positively
    ("mean", [1], 3, False),  # over the tokens: not the features
    ("mean", [1, 2], 3, False),  # over more than the features
    ("mean", None, 3, False),  # a full mean (a loss)
    ("var", -1, 2, True),
    ("native_layer_norm", None, 3, True),
    ("rms_norm", None, 3, True),
    ("sum", [-1], 3, False),  # a router's normalisation of its top-k weights is no norm
    ("_softmax", -1, 4, False),  # attention's softmax over the keys
])  # fmt: skip
def test_normalises_features(op: str, dims: object, ndim: int, expected: bool) -> None:
    assert normalises_features(op, dims, ndim) is expected


def test_feature_rows_are_the_tokens_before_the_feature_axis() -> None:
    from modelmeter.ops.feature_norm import feature_rows

    # batch 2 x 16 tokens x 512 features: 2 * 16 = 32 rows; a 1-D tensor is one row
    assert feature_rows((2, 16, 512)) == 32 and feature_rows((512,)) == 1
