"""Progress bars count steps where the work has them: the models of a multi-model analyze,
the traces of generate's fit (the prefill, then each decode context), and the device counts
of train's sweep. Each is checked by recording the ``progress(stage, done, total)`` calls."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelmeter.analysis.generation import fit_contexts, fit_piece

Calls = list[tuple[str, int, Any]]


def _recorder() -> tuple[Calls, Any]:
    calls: Calls = []
    return calls, lambda stage, done, total: calls.append((stage, done, total))


def test_fit_contexts_are_the_contexts_the_fit_traces() -> None:
    for start, end in ((5, 5), (5, 6), (5, 7), (5, 8), (16, 55)):
        _, evaluated = fit_piece(lambda c: [3 * c + 1, 7], start, end)
        assert fit_contexts(start, end) == evaluated
    # linear (degree 1): its first 3 points, then the end: 16, 17, 18 and 55
    assert fit_contexts(16, 55) == [16, 17, 18, 55]


def test_analyze_several_models_counts_the_models(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import modelmeter.commands.analyze as command
    from modelmeter.cli import main

    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.py").write_text(
            "from torch import nn\ndef make():\n    return nn.Sequential(nn.Linear(4, 2))\n"
        )
    calls, record = _recorder()
    bars: list[str] = []

    @contextlib.contextmanager
    def bar(quiet: bool, label: str) -> Iterator[Any]:
        bars.append(label)
        yield record

    monkeypatch.setattr(command, "progress_bar", bar)
    models = [f"{tmp_path / n}.py:make" for n in ("a", "b", "c")]
    assert main(["analyze", *models, "--input", "1x4", "-f", "csv"]) == 0
    assert bars == ["analysing"]  # one bar for all, not one per model
    assert calls == [(f"analysing {m}", i, 3) for i, m in enumerate(models)]
    assert len(capsys.readouterr().out.splitlines()) >= 4  # a header and a row per model


def test_generate_counts_its_traces(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from modelmeter.models import load
    from modelmeter.models.hf import preset_config
    from modelmeter.usecases.generate import generate

    config = {**preset_config("llama-2-7b"), "num_hidden_layers": 1, "hidden_size": 64,
              "intermediate_size": 128, "num_attention_heads": 4, "num_key_value_heads": 4,
              "vocab_size": 128}  # fmt: skip
    path = tmp_path / "tiny-llama.json"
    path.write_text(json.dumps(config))
    calls, record = _recorder()
    result = generate(load(f"hf:{path}").model, prompt=8, new=10, progress=record)
    # decode contexts 8 .. 17, one linear piece: traced at 8, 9, 10 and checked at 17; with
    # the prefill, 5 traces, the prefill's total unknown until it shows the layers
    assert result.curve.traced == (8, 9, 10, 17)
    assert calls == [
        ("tracing the prefill (8 tokens)", 0, None),
        ("tracing a decode step at context 8", 1, 5),
        ("tracing a decode step at context 9", 2, 5),
        ("tracing a decode step at context 10", 3, 5),
        ("tracing a decode step at context 17", 4, 5),
    ]


def test_train_device_sweep_counts_the_device_counts() -> None:
    from torch import nn

    from modelmeter.usecases.train import train_and_devices

    calls, record = _recorder()
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    _, sweep = train_and_devices(model, "4x16", counts=(1, 2, 4), progress=record)
    assert [p.devices for p in sweep.points] == [1, 2, 4]
    assert calls == [
        ("tracing the training step", 0, None),
        ("planning 1 device(s)", 0, 3),
        ("planning 2 device(s)", 1, 3),
        ("planning 4 device(s)", 2, 3),
    ]
