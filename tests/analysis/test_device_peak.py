"""The peak of a step on one device of a plan: the traced timeline re-weighted op by op
(static bytes and gradients as the plan shards them, the rest as the device's saved
activations, the optimizer's temporaries as its optimizer states)."""

from __future__ import annotations

from gpt_layers import GPT
from torch import nn

from modelmeter.hardware import load_spec
from modelmeter.usecases.train import train


def _linear(**kw):  # noqa: ANN003, ANN202
    return train(nn.Linear(4, 3, bias=False), (1, 4), optimizer="sgd", **kw)


def test_one_device_of_plain_data_parallelism_peaks_as_the_trace() -> None:
    for k in (1, 3):  # with accumulation the peak falls in a later micro-batch
        one = train(GPT(32, 4, 2), "2x16:int64", optimizer="adamw", accumulate=k)
        r = train(GPT(32, 4, 2), "2x16:int64", optimizer="adamw", accumulate=k, devices=2)
        p, d = one.peak, r.device_peak
        assert (d.bytes, d.phase, d.op, d.module, d.later) == (
            p.bytes, p.phase, p.op, p.module, p.later)  # fmt: skip
        assert d.later == (k > 1)


def test_the_peak_of_a_linear_layer_under_zero() -> None:
    # Linear(4, 3) fp32, SGD, batch 1: weights 48 B and momentum 48 B (static 96); after the
    # backward's mm the step holds the input 16, the output 12, its gradient (ones) 12 and the
    # weight's gradient 48: 88 live, peak 96 + 88 = 184
    assert _linear().peak.bytes == 184
    # ZeRO-1 over 2: weights 48 + momentum 48 / 2 = 72 static, the gradient whole (48), the
    # rest (88 - 48 = 40: not split, one micro-batch) whole: 72 + 48 + 40 = 160
    assert _linear(devices=2, zero=1).device_peak.bytes == 160
    # ZeRO-3: weights 24 + momentum 24, the gradient made so far 48 x 24/48 = 24, the rest 40
    assert _linear(devices=2, zero=3).device_peak.bytes == 24 + 24 + 24 + 40 == 112


def test_tensor_and_pipeline_devices_peak_lower_and_hold_their_activations() -> None:
    kw = {"optimizer": "sgd", "precision": "bf16"}
    whole = train(GPT(32, 4, 4), "2x16:int64", **kw)
    for plan in ({"devices": 2, "tensor": 2}, {"devices": 4, "tensor": 4},
                 {"devices": 4, "tensor": 4, "sequence_parallel": True},
                 {"devices": 2, "pipeline": 2, "micro_batches": 4},
                 {"devices": 4, "tensor": 2, "pipeline": 2, "micro_batches": 4}):  # fmt: skip
        r = train(GPT(32, 4, 4), "2x16:int64", **kw, **plan)
        z, a, p = r.sharded, r.device_activations, r.device_peak
        # no more than one device holding everything (a pipeline's 2 micro-batches in flight
        # hold half the layers each: no more than the whole), no less than the device's
        # model states and the activations it holds at once
        assert z.weights + z.optimizer + a.held <= p.bytes < whole.peak.bytes


def test_fits_and_the_largest_batch_use_the_devices_peak() -> None:
    h100 = load_spec("h100-sxm")
    r = _linear(devices=2, zero=3, hardware=h100)
    assert r.peak_bytes == r.device_peak.bytes == 112 and r.fits
    assert r.to_dict()["memory"]["per_device_peak"]["bytes"] == 112


def test_the_largest_batch_that_fits_one_device_of_the_plan() -> None:
    from dataclasses import replace

    chip = replace(load_spec("h100-sxm"), capacity=1000.0)
    # one device holding all: 144 + 40b <= 1,000 -> b = 21 (tests/frontends/torch)
    assert _linear(hardware=chip, max_batch=True).max_batch == 21
    # ZeRO-3 over 2: weights 24 + momentum 24 + the weight's gradient 48 / 2 = 24, and the
    # rest after the backward's mm (input 16b, output 12b, its gradient 12b) = 72 + 40b
    # <= 1,000 -> b = 23
    r = _linear(hardware=chip, max_batch=True, devices=2, zero=3)
    assert (r.max_batch, r.device_peak.bytes) == (23, 72 + 40 * 23)
