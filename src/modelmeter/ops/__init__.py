"""Operator formulas, a module per kind of op; each formula declares its family in
``register_op`` (``registry.FAMILIES``). Importing this package registers them all."""

from modelmeter.ops import (  # noqa: F401
    activation,
    attention,
    bnb_optim,
    conv,
    detection,
    einsum,
    elementwise,
    embedding,
    fft,
    foreach,
    indexing,
    interp,
    matmul,
    movement,
    norm,
    pool,
    quant,
    quant_static,
    reduce,
    rnn,
    views,
)
