"""Operator formulas, one module per family. Importing this package registers them all."""

from modelmeter.ops import conv, matmul, views  # noqa: F401
