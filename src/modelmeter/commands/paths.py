"""The files a command reads, for emit's rule that no output is an input or another output:
the model (``file.onnx`` and every external data file it names, ``file.py`` of
``file.py:FACTORY``, ``hf:`` config file or every file of its folder, a report ``.json``), and
a hardware file given with ``--hardware``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from modelmeter.render.emit import check_outputs


def model_files(spec: str | None) -> list[str]:
    """The files a model spec reads (those that exist; a missing one fails later)."""
    if not spec:
        return []
    text = spec[3:] if spec.startswith("hf:") else spec
    out = [c for c in (text, text.rpartition(":")[0]) if c and os.path.isfile(c)]
    if spec.startswith("hf:") and os.path.isdir(text):
        out.extend(e.path for e in os.scandir(text) if e.is_file())
    if text.lower().endswith(".onnx") and os.path.isfile(text):
        from modelmeter.frontends.onnx.external import data_files

        out.extend(data_files(text))
    return out


def input_files(args: argparse.Namespace) -> list[str]:
    """Every file the command's arguments make it read."""
    out = model_files(getattr(args, "model", None))
    hardware = getattr(args, "hardware", None)
    if hardware and os.path.isfile(hardware):
        out.append(hardware)
    return out


def check_command_outputs(
    args: argparse.Namespace, outputs: Sequence[tuple[str, str | None]], *extra: str
) -> None:
    """Refuse, before any work, an output that is an input of the command (its arguments'
    files and ``extra``) or another output (see :func:`modelmeter.render.emit.check_outputs`)."""
    check_outputs(outputs, [*input_files(args), *extra])
