"""A real run whose tensors cannot be allocated is one error line (exit 2), and in auto mode
the meta run's error (the reason a real run was tried) is the one given."""

from __future__ import annotations

import pytest
from torch import nn

import modelmeter
from modelmeter.errors import ModelRunError

# 1024 * 1024 * 1024 * 256 = 2^38 float32 values = 1 TiB: no test machine allocates it
HUGE = "1024x1024x1024x256"


def test_real_mode_refuses_in_one_line():
    with pytest.raises(ModelRunError, match="could not allocate"):
        modelmeter.analyze(nn.Linear(4, 2), HUGE, mode="real")


def test_auto_mode_gives_the_meta_error():
    # Linear(4, 2) on [..., 256]: the meta run fails on the shapes; the real fallback cannot
    # allocate the input, so the shape error is what the user sees
    with pytest.raises(ModelRunError) as e:
        modelmeter.analyze(nn.Linear(4, 2), HUGE, mode="auto")
    assert "could not allocate" not in str(e.value)
    assert "Linear" in str(e.value)
