"""What a model source returns (:class:`LoadedModel`) and the "did you mean" hint every
source shares; the sources (tv, timm_models, hf, pyfile) import these from here."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoadedModel:
    """A model ready to analyse: ``model`` (an ``nn.Module`` or a callable), its default
    positional ``inputs`` (shapes such as ``"1x3x224x224"``, or lists of them), default
    keyword inputs and the ``label`` reports show."""

    model: Any
    inputs: Any = None
    kwargs: dict[str, Any] | None = None
    label: str = ""
    notes: list[str] = field(default_factory=list)
    # inputs the model takes but does not default, by name, with the dtype a shape given
    # without one takes (an hf: model's attention_mask is int64, not float32)
    dtypes: dict[str, str] = field(default_factory=dict)
    # the most token positions the model's config allows (max_position_embeddings), or None
    max_positions: int | None = None


def suggest(name: str, names: list[str], n: int = 3) -> str:
    """``"; did you mean a, b?"`` for the names closest to ``name`` (or ``""``)."""
    lowered = {x.lower(): x for x in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    if not close:
        close = [x for x in lowered if x.startswith(name.lower()[:4])][:n] if name else []
    return f"; did you mean {', '.join(lowered[c] for c in close)}?" if close else ""


def positions_note(limit: int | None, lengths: list[int], label: str) -> str | None:
    """A note when a token input is longer than the positions the config allows: with learned
    positions (GPT-2, BERT) a real run fails; the counts are what the run would cost."""
    longest = max(lengths, default=0)
    if limit is None or longest <= limit:
        return None
    return (f"{longest} token positions, more than the {limit:,} {label} allows "
            "(max_position_embeddings): a model with learned positions (GPT-2, BERT) cannot "
            "run it, its position table has no row for them; the counts are what it would cost")  # fmt: skip

