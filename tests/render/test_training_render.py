"""The training step's renderers: gold files, rows that add up, the chip's verdict."""

from __future__ import annotations

import json
from dataclasses import replace as swap

import pytest
import torch
from render_checks import check_training_json, check_training_table
from torch import nn

from modelmeter.hardware import load_spec
from modelmeter.render.training import render_training
from modelmeter.usecases.train import train


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 32))


@pytest.fixture(scope="module")
def result():  # noqa: ANN201
    return train(_mlp(), (8, 64), optimizer="adamw", precision="bf16-mixed", accumulate=4)


def test_training_table_and_json_gold(result, gold) -> None:  # noqa: ANN001
    table, js = render_training(result), render_training(result, "json")
    gold("train_mlp.txt", table)
    gold("train_mlp.json", js)
    check_training_table(table)
    check_training_json(js)
    d = json.loads(js)
    assert d["schema"] == "modelmeter.training/1"
    # 16 B per trainable parameter (bf16-mixed Adam family), 12,448 parameters
    assert d["memory"]["model_states"] == 16 * 12_448
    assert "model states" in table and "16.00" in table


def test_a_plan_leads_with_one_device_then_the_trace(gold) -> None:  # noqa: ANN001
    r = train(_mlp(), (8, 64), optimizer="adamw", precision="bf16-mixed", accumulate=4,
              devices=4, zero=3, hardware=load_spec("h100-sxm"))  # fmt: skip
    table = render_training(r)
    gold("train_mlp_zero3.txt", table)
    check_training_table(table)
    lines = table.splitlines()
    i = lines.index("one device of the plan: 4 devices, ZeRO-3")
    j = lines.index("one device holding everything (the trace):")
    assert i < j and lines[i + 1].startswith("model states per device")
    # ZeRO-3 over 4, 12,448 parameters: weights 24,896 / 4 = 6,224 B, gradients the same,
    # master weights and m, v 3 x 49,792 / 4 = 37,344 B: 49,792 B in all
    z = r.sharded
    assert (z.weights, z.gradients, z.optimizer, z.total) == (6224, 6224, 37_344, 49_792)
    assert lines[i + 1].split()[4:] == ["49.79", "KB", "weights", "6.22", "KB,", "gradients",
                                        "6.22", "KB,", "optimizer", "37.34", "KB"]  # fmt: skip
    # the chip's capacity once, against the device's peak
    assert [x.split()[0] for x in lines if x.startswith("capacity (")] == ["capacity"]


def test_with_a_chip_the_step_time_adds_up_and_the_verdict_shows() -> None:
    spec = load_spec("h100-sxm")
    r = train(_mlp(), (8, 64), hardware=spec)
    assert r.time is not None
    assert r.time.step_s == pytest.approx(sum(r.time.phases.values()))
    assert r.fits is True
    text = render_training(r)
    check_training_table(text)
    check_training_json(render_training(r, "json"))
    assert "fits," in text and "to spare" in text and "MFU" in text
    # a chip far too small: the peak (bytes) over a capacity of 1 kB does not fit
    from dataclasses import replace

    tiny = replace(spec, capacity=1000.0)
    r2 = train(_mlp(), (8, 64), hardware=tiny)
    assert r2.fits is False
    assert "does NOT fit" in render_training(r2)


def test_unknown_format_is_refused(result) -> None:  # noqa: ANN001
    with pytest.raises(ValueError, match="unknown format 'csv'"):
        render_training(result, "csv")


def test_the_checks_catch_rows_that_do_not_add_up(result) -> None:  # noqa: ANN001
    from render_checks import RowsDontAddUp

    table = render_training(result)
    with pytest.raises(RowsDontAddUp, match="column 1"):
        check_training_table(table.replace("917.50K", "990.00K"))
    with pytest.raises(RowsDontAddUp, match="model-state rows"):
        check_training_table(table.replace("199.17 KB", "250.00 KB"))
    d = json.loads(render_training(result, "json"))
    d["total"]["flops"] += 1
    with pytest.raises(RowsDontAddUp, match="flops"):
        check_training_json(json.dumps(d))


def test_the_per_device_rows_and_their_verdict() -> None:
    chip = swap(load_spec("h100-sxm"), capacity=1000.0)
    # nn.Linear(4, 3), SGD, batch 1, ZeRO-3 over 2: the device's peak 208 bytes (static 48,
    # gradient 24, the rest 40, and the backward's gathered unit, the whole model: weight 48 +
    # its full gradient 48 = 96; tests/analysis/test_device_peak.py) fits 1,000 with 792 to
    # spare; the whole step's 184 too
    r = train(nn.Linear(4, 3, bias=False), (1, 4), optimizer="sgd", devices=2, zero=3,
              hardware=chip)  # fmt: skip
    text = render_training(r)
    rows = {line.split("  ")[0]: line for line in text.splitlines()}
    assert "208 B" in rows["peak per device"] and "792 B to spare" in text
    assert "gathered weights 96 B" in rows["peak per device"]
    assert "activations per device" in rows and "one micro-batch, whole" in text
    small = swap(chip, capacity=200.0)  # 208 - 200 = 8 over
    text = render_training(train(nn.Linear(4, 3, bias=False), (1, 4), optimizer="sgd",
                                 devices=2, zero=3, hardware=small))  # fmt: skip
    assert "does NOT fit: 8 B over" in text.split("peak per device")[1]


def test_the_tensor_parallel_traffic_per_layer() -> None:
    from parallel_models import Tiny

    r = train(Tiny(), "2x16:int64", optimizer="sgd", devices=2, tensor=2,
              sequence_parallel=True)  # fmt: skip
    # per layer and micro-batch, 5 rows x 2 collectives of the 1,024-byte layer output over 2
    # devices, each sending (2-1)/2 x 1,024 = 512: 5 x 2 x 512 = 5,120 bytes
    line = [x for x in render_training(r).splitlines() if "per layer and micro-batch" in x]
    assert len(line) == 1 and "over the 2 tensor devices" in line[0]
    assert line[0].endswith("5.12 KB sent per device")
