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


def _fake_bars(monkeypatch: pytest.MonkeyPatch, command: Any, record: Any) -> list[str]:
    """``command.progress_bar`` replaced by one that yields ``record`` as its callback; the
    labels of the bars it opened, in order."""
    bars: list[str] = []

    @contextlib.contextmanager
    def bar(quiet: bool, label: str) -> Iterator[Any]:
        bars.append(label)
        yield record

    monkeypatch.setattr(command, "progress_bar", bar)
    return bars


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
    bars = _fake_bars(monkeypatch, command, record)
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


def test_train_max_batch_counts_its_traces(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from dataclasses import replace

    from torch import nn

    from modelmeter.hardware import load_spec
    from modelmeter.usecases.train import train

    # Linear(4 -> 3, no bias), SGD: peak(b) = 144 + 40b bytes; a 1,000-byte chip: batch 1
    # (184) and 2 (224) fit, the slope 40 extrapolates 1 + (1000 - 184) // 40 = 21 (984
    # fits), its neighbour 22 (1,024) does not: 4 traces, the search knows of 2 (batch 1 and
    # 2), then of 4 (the guess and its neighbour)
    chip = replace(load_spec("h100-sxm"), capacity=1000.0)
    calls, record = _recorder()
    r = train(nn.Linear(4, 3, bias=False), (1, 4), optimizer="sgd", hardware=chip,
              max_batch=True, progress=record)  # fmt: skip
    assert r.max_batch == 21
    assert calls == [("tracing micro-batch 1", 0, 2), ("tracing micro-batch 2", 1, 2),
                     ("tracing micro-batch 21", 2, 4), ("tracing micro-batch 22", 3, 4)]  # fmt: skip
    # 1,030 bytes: the guess 1 + 846 // 40 = 22 (1,024) fits, 23 (1,064) does not
    calls.clear()
    r = train(nn.Linear(4, 3, bias=False), (1, 4), optimizer="sgd", max_batch=True,
              hardware=replace(chip, capacity=1030.0), progress=record)  # fmt: skip
    assert r.max_batch == 22 and [c[0][-2:] for c in calls] == [" 1", " 2", "22", "23"]
    # 140 bytes: batch 1 (184) does not fit: one trace of the 2 it expected
    calls.clear()
    r = train(nn.Linear(4, 3, bias=False), (1, 4), optimizer="sgd", max_batch=True,
              hardware=replace(chip, capacity=140.0), progress=record)  # fmt: skip
    assert (r.max_batch, calls) == (0, [("tracing micro-batch 1", 0, 2)])
    # the command passes its bar's callback to the search
    import modelmeter.commands.train as command
    from modelmeter.cli import main

    bars = _fake_bars(monkeypatch, command, record)
    (tmp_path / "m.py").write_text("import torch.nn as nn\ndef f():\n"
                                   "    return nn.Linear(4, 3, bias=False)\n")  # fmt: skip
    monkeypatch.chdir(tmp_path)
    calls.clear()
    assert main(["train", "m.py:f", "-i", "1x4", "--optimizer", "sgd", "--hardware", "t4",
                 "--max-batch", "-f", "json"]) == 0  # fmt: skip
    # t4's 16 GB: 1 and 2 fit, the guess is capped at 2^20 samples and fits: 3 traces
    assert bars == ["training step"]
    assert [c[0] for c in calls] == ["tracing micro-batch 1", "tracing micro-batch 2",
                                     "tracing micro-batch 1048576"]  # fmt: skip
    capsys.readouterr()
