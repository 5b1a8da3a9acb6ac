"""Operator formulas, one module per family. Importing this package registers them all."""

from modelmeter.ops import (  # noqa: F401
    activation,
    attention,
    conv,
    detection,
    einsum,
    elementwise,
    embedding,
    fft,
    indexing,
    interp,
    matmul,
    movement,
    norm,
    pool,
    quant,
    reduce,
    rnn,
    views,
)
