"""One device's peak under ZeRO, with the weights ZeRO-3 / FSDP gathers while a unit runs:
hand derivations from the traced timeline of a small layered model."""

from __future__ import annotations

from torch import nn

from modelmeter.analysis.device_peak import gathered_weights
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
    assert "peak per device 28.29 KB (backward, aten.mm in module layers.0) = weights, buffers " \
           "and optimizer 9.73 KB + gradients 4.35 KB + gathered weights 12.29 KB + activations and " \
           "temporaries 1.92 KB; fits h100-sxm" in text  # fmt: skip
    assert "gathered weights (ZeRO-3: two units' full weights at once" in text
    assert "forward 8.19 KB, backward 12.29 KB (layers.0, layers.1)" in text
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
