"""The peak of a step on one device of a plan: the traced timeline re-weighted op by op
(static bytes and gradients as the plan shards them, the rest as the device's saved
activations, the optimizer's temporaries as its optimizer states), plus the weights ZeRO-3 /
FSDP gathers while a unit runs: hand derivations from small models' traced timelines."""

from __future__ import annotations

from gpt_layers import GPT
from torch import nn

from modelmeter.analysis.device_peak import gathered_weights, stage_gathered
from modelmeter.hardware import load_spec
from modelmeter.render.training import render_training
from modelmeter.usecases.train import train


class Layers(nn.Module):
    """inp 16 -> 32 (512 parameters), 4 layers 32 -> 32 in an nn.ModuleList (1,024 each), head
    32 -> 8 (256): 4,864 parameters; fp32: 19,456 bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(16, 32, bias=False)
        self.layers = nn.ModuleList(nn.Linear(32, 32, bias=False) for _ in range(4))
        self.head = nn.Linear(32, 8, bias=False)

    def forward(self, x):  # noqa: ANN001, ANN201
        x = self.inp(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def test_gathered_weights_are_two_units_and_a_gradient() -> None:
    # FSDP units: the rest (inp + head: 768 parameters, 3,072 B in fp32) and layers.0 .. 3
    # (1,024 parameters, 4,096 B each); the two largest: two layers. Forward: 2 x 4,096 =
    # 8,192 B; backward also one unit's full fp32 gradient: 8,192 + 4,096 = 12,288 B
    r = train(Layers(), (4, 16), optimizer="sgd")
    g = gathered_weights(r.report, r.categories)
    assert (g.units, g.forward, g.backward) == (("layers.0", "layers.1"), 8192, 12288)
    # bf16-mixed: the weights and gradients in bf16, 2,048 B a layer: 4,096 and 6,144
    r = train(Layers(), (4, 16), optimizer="sgd", precision="bf16-mixed")
    g = gathered_weights(r.report, r.categories)
    assert (g.forward, g.backward) == (4096, 6144)


class Uneven(nn.Module):
    """inp 8 -> 8 (64 parameters), layers 8 -> 32 (256), 32 -> 3 (96), 3 -> 32 (96), 32 -> 8
    (256) in an nn.ModuleList, head 8 -> 8 (64): the rest of the model 128 parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(8, 8, bias=False)
        dims = [(8, 32), (32, 3), (3, 32), (32, 8)]
        self.layers = nn.ModuleList(nn.Linear(a, b, bias=False) for a, b in dims)
        self.head = nn.Linear(8, 8, bias=False)

    def forward(self, x):  # noqa: ANN001, ANN201
        x = self.inp(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)


def test_a_pipeline_stage_gathers_its_own_units() -> None:
    # fp32 SGD; the whole model's two largest units are layers.0 and layers.3 (256 each):
    # forward 2 x 256 x 4 B = 2,048, backward + one 1,024-byte gradient = 3,072
    r = train(Uneven(), (4, 8), optimizer="sgd")
    g = gathered_weights(r.report, r.categories)
    assert (g.units, g.forward, g.backward) == (("layers.0", "layers.3"), 2048, 3072)
    # 2 stages: stage 0 holds the rest (128) and layers.0 (256), layers.1 (96); stage 1
    # layers.2 (96) and layers.3 (256). Stage 0's two largest: 256 + 128 = 384 parameters,
    # 1,536 B forward, + layers.0's 1,024-byte gradient = 2,560 B backward; stage 1's:
    # 352 parameters, 1,408 and 2,432: the worst stage is stage 0
    g = gathered_weights(r.report, r.categories, pipeline=2)
    assert (g.units, g.forward, g.backward) == (("layers.0", "(outside the layers)"), 1536,
                                                2560)  # fmt: skip
    # interleaved, 2 virtual stages: chunks of one layer, stage 0 runs layers.0 and layers.2
    # (and the rest): 256 + 128 again; stage 1 layers.1 and layers.3: 96 + 256
    g = gathered_weights(r.report, r.categories, pipeline=2, virtual=2)
    assert (g.forward, g.backward) == (1536, 2560)
    # without places the rest is on stage 0 (above); placed by where they run: inp (64) runs
    # before the first layer, on stage 0, head (64) after the last, on stage 1. Stage 0: inp,
    # layers.0, layers.1; two largest 256 + 96 = 352 parameters, 1,408 B forward, + layers.0's
    # 1,024-byte gradient = 2,432; stage 1: layers.2, layers.3, head: 256 + 96, 1,408, 2,432
    gs = stage_gathered(r.report, r.categories, pipeline=2, rest_places=(64, 64))
    assert [(g.units, g.forward, g.backward) for g in gs] == [
        (("layers.0", "layers.1"), 1408, 2432), (("layers.3", "layers.2"), 1408, 2432)]
    # the device's peak under ZeRO-3 x pipeline 2 carries its stage's gathered weights
    r = train(Uneven(), (4, 8), optimizer="sgd", devices=4, pipeline=2, micro_batches=2,
              zero=3)  # fmt: skip
    # its model states are that stage's too: 64 + 256 + 96 = 416 of the 832 parameters on
    # either stage, fp32 416 x 4 = 1,664 B of weights, ZeRO-3 over the 2 replicas: 832 B
    assert (r.sharded.weights, r.sharded.gradients, r.sharded.optimizer) == (832, 832, 832)
    p = r.device_peak
    assert (p.phase, p.gathered, p.gathered_units) == ("backward", 2432, gs[p.stage])


def test_zero_3_device_peak_by_hand() -> None:
    # SGD (momentum) fp32 over 4 devices, ZeRO-3: weights, gradients and momentum 19,456 B
    # each, a quarter each per device: 4,864; static (weights + momentum) 9,728
    r = train(Layers(), (4, 16), optimizer="sgd", devices=4, zero=3)
    p = r.device_peak
    # the traced step's event 15 (the backward of layers.0's weight gradient): 19,328 live
    # bytes, of which 17,408 are gradients (head 1,024, layers.3 .. 0 4 x 4,096); a device
    # holds the 1,920 other bytes, a quarter of the gradients (4,352) and the backward's
    # gathered 12,288: 18,560, plus the static 9,728 = 28,288
    assert r.memory.timeline[15] == 19_328
    assert (p.bytes, p.phase, p.module) == (28_288, "backward", "layers.0")
    assert (p.states, p.gradients, p.gathered, p.other) == (9728, 4352, 12_288, 1920)
    # the single device's peak is the traced one: 38,912 static + 20,352 at event 16
    assert r.peak.bytes == 59_264
    d = r.to_dict()["memory"]["per_device_peak"]
    assert (d["bytes"], d["gathered_weights"], d["gathered"]["backward"]) == (28_288, 12_288,
                                                                             12_288)  # fmt: skip


def test_without_sharding_the_device_peak_is_the_traced_peak() -> None:
    for zero, devices in ((0, 4), (1, 1), (2, 1)):
        r = train(Layers(), (4, 16), optimizer="adamw", devices=devices, zero=zero,
                  accumulate=2)  # fmt: skip
        assert r.device_peak.bytes == r.peak.bytes
        assert (r.device_peak.later, r.device_peak.gathered) == (r.peak.later, 0)


def test_zero_2_shards_the_gradients_not_the_weights() -> None:
    # ZeRO-2 over 4: static = weights 19,456 + momentum 4,864 = 24,320; at event 16 (the
    # last backward op): 20,352 live, all 19,456 gradient bytes made: 896 + 4,864 = 5,760;
    # event 15: 1,920 + 17,408 / 4 = 6,272, the larger: 24,320 + 6,272 = 30,592
    r = train(Layers(), (4, 16), optimizer="sgd", devices=4, zero=2)
    assert (r.device_peak.bytes, r.device_peak.gathered) == (30_592, 0)


def test_the_table_shows_the_device_peak_against_the_chip() -> None:
    r = train(Layers(), (4, 16), optimizer="sgd", devices=4, zero=3,
              hardware=load_spec("h100-sxm"))  # fmt: skip
    text = render_training(r)
    # one section of per-device rows: the peak's parts add up to it (9.73 + 4.35 + 12.29 +
    # 1.92 = 28.29 KB, test_zero_3_device_peak_by_hand), then the capacity's verdict
    assert "peak per device          28.29 KB  backward, aten.mm in module layers.0 = weights, " \
           "buffers and optimizer 9.73 KB + gradients 4.35 KB + gathered weights 12.29 KB + " \
           "activations and temporaries 1.92 KB\ncapacity (h100-sxm)      80.00 GB  fits" in text  # fmt: skip
    assert "gathered weights         12.29 KB  ZeRO-3: two units' full weights at once" in text
    assert "forward 8.19 KB, backward 12.29 KB; units layers.0, layers.1" in text
    assert text.count("peak per device") == 1
    assert r.to_dict()["memory"]["per_device_peak"]["fits"] is True


def test_the_largest_batch_under_zero_3_fits_one_device_s_peak() -> None:
    from dataclasses import replace

    # Linear(4 -> 3, no bias), SGD, ZeRO-3 over 4: static = weight 48 / 4 + momentum 48 / 4 =
    # 24; the one unit is the whole model, gathered in the backward: weight 48 + its gradient
    # 48 = 96; at the backward's mm: input 16b + output 12b + seed 12b = 40b, and a quarter of
    # the 48-byte gradient: 12. Peak per device 24 + 40b + 12 + 96 = 132 + 40b (one device
    # holding everything: 144 + 40b). A 1,020-byte chip: 132 + 40b <= 1020 -> b = 22 (21
    # without sharding: 144 + 40 x 22 = 1,024 > 1,020)
    chip = replace(load_spec("h100-sxm"), capacity=1020.0)
    r = train(nn.Linear(4, 3, bias=False), (1, 4), optimizer="sgd", hardware=chip,
              max_batch=True, devices=4, zero=3)  # fmt: skip
    assert (r.max_batch, r.device_peak.bytes, r.peak.bytes) == (22, 132 + 40 * 22, 144 + 40 * 22)
    assert r.device_peak.gathered == 96
    alone = train(nn.Linear(4, 3, bias=False), (1, 4), optimizer="sgd", hardware=chip,
                  max_batch=True)  # fmt: skip
    assert alone.max_batch == 21


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
    # ZeRO-3: weights 24 + momentum 24, the gradient made so far 48 x 24/48 = 24, the rest 40,
    # and the backward's gathered weights: the one FSDP unit (the whole model) in full, weight
    # 48 + its full gradient 48 = 96: 24 + 24 + 24 + 40 + 96 = 208 (more than the one device
    # holding everything: a single unit gathers all of its weights beside the shard)
    p = _linear(devices=2, zero=3).device_peak
    assert p.bytes == 24 + 24 + 24 + 40 + 96 == 208
    assert (p.states, p.gradients, p.gathered, p.other) == (48, 24, 96, 40)


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
    # 208: test_the_peak_of_a_linear_layer_under_zero
    assert r.peak_bytes == r.device_peak.bytes == 208 and r.fits
    assert r.to_dict()["memory"]["per_device_peak"]["bytes"] == 208


def test_the_largest_batch_that_fits_one_device_of_the_plan() -> None:
    from dataclasses import replace

    chip = replace(load_spec("h100-sxm"), capacity=1000.0)
    # one device holding all: 144 + 40b <= 1,000 -> b = 21 (tests/frontends/torch)
    assert _linear(hardware=chip, max_batch=True).max_batch == 21
    # ZeRO-3 over 2: weights 24 + momentum 24 + the weight's gradient 48 / 2 = 24, the
    # backward's gathered weight 48 and its full gradient 48 (96, not scaled by b), and the
    # rest after the backward's mm (input 16b, output 12b, its gradient 12b) = 168 + 40b
    # <= 1,000 -> b = 20 (168 + 800 = 968; b = 21: 1,008); ZeRO-1 over 2 (no gathering):
    # weights 48 + momentum 24 + gradient 48 + 40b = 120 + 40b <= 1,000 -> b = 22
    r = _linear(hardware=chip, max_batch=True, devices=2, zero=3)
    assert (r.max_batch, r.device_peak.bytes) == (20, 168 + 40 * 20)
    r = _linear(hardware=chip, max_batch=True, devices=2, zero=1)
    assert (r.max_batch, r.device_peak.bytes) == (22, 120 + 40 * 22)


def test_every_part_of_the_device_s_value_after_an_op() -> None:
    from types import SimpleNamespace

    from modelmeter.analysis.device_peak import DeviceShares, Gathered, device_peak

    # a timeline of four ops: (event, phase, gradients made before it, made by it, the rest)
    rows = [(0, "forward", 0, 0, 400), (1, "forward", 0, 0, 600), (2, "backward", 0, 100, 500),
            (3, "optimizer", 100, 100, 300)]  # fmt: skip
    where = {i: ("m", "aten.mm", phase) for i, phase, *_ in rows}
    memory = SimpleNamespace(grad_born=[(2, 100)])  # 100 gradient bytes, born at event 2
    # static 1,000; gradients 50 of 100 (g = 1/2); activations x 1/4; optimizer x 1/2; 80
    # bytes of other micro-batches in flight; gathered 40 in the forward, 70 in the backward
    shares = DeviceShares(1000, 50, 0.25, 0.5, 80, Gathered(("a", "b"), 40, 70))
    # static + g·made + a·rest + held_extra + gathered(phase); the optimizer: g·made + o·rest
    # event 0: 0 + 100 + 80 + 40 = 220; event 1: 0 + 150 + 80 + 40 = 270;
    # event 2: 50 + 125 + 80 + 70 = 325; event 3: 50 + 150 = 200 -> 1,000 + 325 at event 2
    p = device_peak(None, memory, 1, shares, (rows, where))
    assert (p.bytes, p.phase, p.later) == (1325, "backward", False)
    assert (p.states, p.gradients, p.gathered, p.other) == (1000, 50, 70, 125 + 80)
    # accumulating 2: a later micro-batch's op also holds the gradients not made yet
    # (100 - made before + made by it), times g: event 2: (100 - 0 + 100) / 2 + 125 + 80 + 70
    # = 375, above event 1's 50 + 150 + 80 + 40 = 320 -> 1,375
    p = device_peak(None, memory, 2, shares, (rows, where))
    assert (p.bytes, p.later, p.gradients, p.gathered) == (1375, True, 100, 70)
