"""Activation checkpointing for a traced step, without enabling anything on the user's model:
while the step runs (inside :class:`~modelmeter.frontends.torch.isolation.Isolated`, which
puts every module's attributes back), each repeated block — every child of an
``nn.ModuleList``, the layers of a transformer — runs through
``torch.utils.checkpoint.checkpoint`` (non-reentrant, PyTorch's default since 2.4): its
forward saves only the block's inputs, and the backward runs the block's forward again before
differentiating it. The ops of that second run are traced under the phase ``recompute``;
PyTorch stops a recomputation as soon as it has remade the tensors the backward needs (its
"early stop"), so a block's last ops may not run again, as on a real run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from modelmeter.errors import InputError


def repeated_blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The children of every ``nn.ModuleList`` that is not inside another such block."""
    blocks: list[torch.nn.Module] = []
    inside: set[int] = set()
    for m in model.modules():
        if id(m) in inside or not isinstance(m, torch.nn.ModuleList):
            continue
        for child in m:
            blocks.append(child)
            inside.update(id(c) for c in child.modules())
    if not blocks:
        raise InputError("activation checkpointing wraps the repeated blocks of the model (the "
                         "children of an nn.ModuleList); this model has none")  # fmt: skip
    return blocks


@contextmanager
def checkpointed(
    model: torch.nn.Module, tracer: Any, scopes: Any, policy: Any = nullcontext
) -> Iterator[int]:
    """Run every repeated block through ``checkpoint`` while the block is entered; its second
    run (in the backward) is traced as phase ``recompute``, its ops in the block's scope,
    without the module hooks that follow a forward into the backward (a recomputed graph is
    differentiated at once), under ``policy()`` (autocast, as the forward ran: PyTorch's
    checkpoint restores it for the recomputation). Yields the number of blocks."""
    blocks = repeated_blocks(model)
    for block in blocks:
        name = scopes.names.get(id(block), "")
        # Isolated removes it too
        block.forward = _wrapped(block.forward, tracer, scopes, name, policy)
    try:
        yield len(blocks)
    finally:
        for block in blocks:
            block.__dict__.pop("forward", None)


def _wrapped(forward: Any, tracer: Any, scopes: Any, name: str, policy: Any) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        if tracer.phase != "backward":
            return forward(*args, **kwargs)
        tracer.phase, scopes.backward, scopes.in_backward = "recompute", False, False
        scopes.stack.append(name)  # the block's own ops in its scope
        try:
            with policy():
                return forward(*args, **kwargs)
        finally:
            scopes.stack.pop()
            tracer.phase, scopes.backward, scopes.in_backward = "backward", True, True
            # PyTorch stops a recomputation by raising an error it catches: the blame of a
            # module it went through would keep its frames, and their tensors, alive
            scopes.blame.failure = None

    def block(*args: Any, **kwargs: Any) -> Any:
        return checkpoint(run, *args, use_reentrant=False, preserve_rng_state=False, **kwargs)

    return block
