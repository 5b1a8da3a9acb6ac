"""bitsandbytes' 8-bit optimizers (``Adam8bit``, ``AdamW8bit``) on meta tensors: the real
classes, imported only when asked for, built like the ``torch.optim`` ones.

Their step runs on meta: a parameter's first step makes its states (two uint8 tensors of the
parameter's shape, a float32 absmax per 256-element block of each, and the two shared
256-entry quantile maps), every step then calls one custom op per parameter tensor,
``bitsandbytes.optimizer_update_8bit_blockwise`` (``ops/bnb_optim.py`` counts it). A tensor
of fewer than 4,096 elements (bitsandbytes' ``min_8bit_size``) keeps fp32 states and calls
``bitsandbytes.optimizer_update_32bit`` instead.

The paged variants (``PagedAdamW8bit``) allocate their states in CUDA unified memory, which
the CPU-only bitsandbytes cannot do, on meta or anywhere: they are not offered.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from typing import Any

import torch

from modelmeter.errors import InputError
from modelmeter.events import EIGHT_BIT, StepSetup

_CLASSES = dict(zip(EIGHT_BIT, ("Adam8bit", "AdamW8bit"), strict=True))
INSTALL = "pip install modelmeter[train8bit]"
MIN_8BIT_SIZE = 4096  # bitsandbytes' default: smaller tensors keep 32-bit states


def load_optim() -> Any:
    """``bitsandbytes.optim``, imported quietly (its import logs a warning about an optional
    CPU kernel package and may print); one line (InputError) when it is not installed."""
    try:
        with _quiet():
            import bitsandbytes.optim as optim
    except ImportError as e:
        raise InputError(f"the 8-bit optimizers need bitsandbytes, which is not installed "
                         f"({e.name or e}): {INSTALL}") from None  # fmt: skip
    except (OSError, RuntimeError) as e:  # a broken install: its native library
        raise InputError(f"bitsandbytes could not be loaded ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}): {INSTALL}") from None  # fmt: skip
    if not hasattr(torch.ops.bitsandbytes, "optimizer_update_8bit_blockwise"):
        version = getattr(sys.modules.get("bitsandbytes"), "__version__", "?")
        raise InputError(f"bitsandbytes {version} runs its optimizers outside PyTorch's "
                         "dispatcher, so they cannot be traced: 0.50 or newer is needed "
                         f"({INSTALL})")  # fmt: skip
    return optim


@contextlib.contextmanager
def _quiet() -> Any:
    """bitsandbytes' import without its warnings, log records or prints reaching the user;
    the logging level and the warning filters are put back afterwards."""
    logger = logging.getLogger("bitsandbytes")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with (warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()),
              contextlib.redirect_stderr(io.StringIO())):  # fmt: skip
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def build_8bit(setup: StepSetup, params: list[torch.Tensor]) -> tuple[Any, list[str]]:
    """The bitsandbytes optimizer of ``setup.optimizer`` over ``params`` (not yet warmed) and
    the notes on what is counted."""
    cls = getattr(load_optim(), _CLASSES[setup.optimizer])
    kw: dict[str, Any] = {"lr": setup.lr}
    if setup.weight_decay is not None:
        kw["weight_decay"] = setup.weight_decay
    notes = [
        f"bitsandbytes' {cls.__name__} has one implementation, a kernel per parameter tensor "
        "that reads and writes each tensor once (--variant does not apply): its states are "
        "uint8, block-wise quantised (a float32 absmax per 256 elements)"
    ]
    small = [p for p in params if p.numel() < MIN_8BIT_SIZE]
    if small:
        n = sum(p.numel() for p in small)
        notes.append(
            f"{len(small)} parameter tensors of fewer than {MIN_8BIT_SIZE:,} elements "
            f"({n:,} parameters) keep fp32 states, as bitsandbytes does (min_8bit_size)"
        )
    return cls(params, **kw), notes
