"""Ops that cost nothing: views, metadata, allocation without initialisation.

This is the one place where zero cost is declared; anything not here and without a formula
is reported unsupported.
"""

from modelmeter.registry import register_zero_cost

register_zero_cost(
    "view",
    aten=[
        "view",
        "_unsafe_view",
        "reshape",
        "_reshape_alias",
        "as_strided",
        "as_strided_",
        "t",
        "transpose",
        "permute",
        "expand",
        "expand_as",
        "squeeze",
        "unsqueeze",
        "select",
        "slice",
        "narrow",
        "split",
        "split_with_sizes",
        "unbind",
        "chunk",
        "alias",
        "detach",
        "diagonal",
        "unfold",
        "view_as_real",
        "view_as_complex",
        "unflatten",
        "flatten",
        "lift_fresh",
        "_conj",
        "_neg_view",
        "movedim",
        "squeeze_",
        "unsqueeze_",
        "transpose_",
        "t_",
        "tensor_split",
        "indices",
        "values",
        "broadcast_in_dim",
        "_indices",
        "_values",
        "real",
        "imag",
        "view_as",
        "numpy_T",
        "mT",
        "mH",
        "adjoint",
    ],
)

register_zero_cost(
    "allocation",
    aten=[
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "new_empty_strided",
        "_local_scalar_dense",
        "scalar_tensor",
        "resize_",
        "set_",
        "_assert_async",
        "_assert_tensor_metadata",
        "_linalg_check_errors",
        "_efficientzerotensor",
        "sym_constrain_range",
        "sym_constrain_range_for_size",
        "_functional_assert_async",
        "record_stream",
    ],
)

# The profiler's record_function markers (an optimizer's step is wrapped in one): no data.
register_zero_cost(
    "profiler", aten=["profiler._record_function_enter_new", "profiler._record_function_exit"]
)

# ONNX: ops an ONNX runtime runs without moving data -- aliases of their first input
# (Reshape, Squeeze ..., Identity, Dropout at inference, an element of a sequence) -- and
# metadata. Transpose, Slice, Split, Expand, Concat, Gather and Cast copy data in ONNX
# runtimes and are counted as data movement (ops/movement.py).
register_zero_cost(
    "view",
    onnx=["Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Dropout", "SequenceAt"],
)
register_zero_cost(
    "metadata", onnx=["Shape", "Size", "Constant", "SequenceConstruct", "SequenceEmpty"]
)
