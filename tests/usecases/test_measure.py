"""Measure mode on the CPU: real runs of tiny models, few repeats. Timing values are never
asserted beyond sanity (the machine is shared); structure, joins and side effects are."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import modelmeter
from modelmeter.errors import InputError, ModelmeterError
from modelmeter.frontends.torch.building import load_on_device
from modelmeter.frontends.torch.device import resolve_device
from modelmeter.hardware import spec_from_peak
from modelmeter.usecases.measure import measure


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))


def wide() -> nn.Module:
    """Children do nearly all the work, so their times should add up to the whole."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 256))


def test_tiny_model_fields_and_flops() -> None:
    # Input 4x16, exact convention (2*m*n*k for a biased linear: k multiplies, k-1 adds and
    # one bias add per output):
    #   Linear(16, 32): 4*32 outputs x 2*16 = 4096 FLOPs, 4*32*16 = 2048 MACs
    #   ReLU: 4*32 = 128 FLOPs
    #   Linear(32, 8):  4*8 outputs x 2*32 = 2048 FLOPs, 4*8*32 = 1024 MACs
    #   total 6272 FLOPs, 3072 MACs; 3 counted ops (one kernel each)
    spec = spec_from_peak(1e12, 1e11, dtype="float32", name="toy", kernel_overhead=1e-6)
    r = measure(tiny(), "4x16", warmup=1, repeats=5, hardware=spec)
    assert (r.flops, r.macs, r.kernels, r.batch) == (6272, 3072, 3, 4)
    assert r.device == "cpu" and r.dtype == "float32" and r.repeats == 5 and r.warmup == 1
    lat = r.latency
    assert 0 < lat.min <= lat.q1 <= lat.median <= lat.q3 <= lat.max < 5.0
    assert r.throughput == pytest.approx(4 / lat.median)
    assert r.achieved_flops == pytest.approx(6272 / lat.median)
    assert r.achieved_bandwidth == pytest.approx(r.bytes_moved / lat.median)
    assert r.compute_utilization == pytest.approx(r.achieved_flops / 1e12)
    # predicted vs measured: the roofline of the same report on the same spec
    report = modelmeter.analyze(tiny(), "4x16")
    roof = modelmeter.roofline(report, spec, phase="forward")
    assert r.prediction is not None
    assert r.prediction.latency_s == pytest.approx(roof.total.latency_s)
    assert r.prediction.overhead_s == pytest.approx(3e-6)
    assert r.ratio == pytest.approx(roof.total.latency_s / lat.median)
    assert r.memory.method and r.memory.peak_bytes is not None and r.memory.peak_bytes > 0
    assert any("deep copy" in n for n in r.notes)
    # minor page faults are counted over the timed calls on the CPU (any count >= 0)
    assert r.page_faults is not None and r.page_faults >= 0
    d = r.to_dict()
    for key in ("latency", "throughput_per_s", "achieved_flops_per_s", "memory", "prediction"):
        assert d[key] is not None


def test_dtype_and_batch_apply_to_run_and_analysis() -> None:
    r = measure(tiny(), "1x16", dtype="bf16", batch=3, warmup=0, repeats=2)
    # batch 3: FLOPs scale with the batch: 6272 / 4 * 3 = 4704
    assert r.batch == 3 and r.flops == 4704 and r.dtype == "bfloat16"
    assert r.inputs == [{"shape": [3, 16], "dtype": "bfloat16"}]


def test_per_module_times_add_up() -> None:
    r = measure(wide(), "64x256", warmup=1, repeats=5, per_module=True)
    assert r.hooked is not None and r.hook_overhead is not None and r.hook_overhead > 0
    mods = {m.name: m for m in r.modules}
    assert set(mods) == {"", "0", "1", "2"}
    root = mods[""].measured.median
    children = sum(mods[n].measured.median for n in ("0", "1", "2"))
    # children nest inside the root's hooked call: their sum cannot exceed it (10% for noise
    # between medians), and they do nearly all the work
    assert 0.5 * root <= children <= 1.1 * root
    assert root <= 1.1 * r.hooked.median
    assert [m.calls for m in r.modules] == [1, 1, 1, 1]


def test_per_module_predictions_pay_every_launch_where_launches_overlap() -> None:
    # A GPU-kind spec queues launches behind execution; the hooks synchronise around every
    # module, so per-module predictions use the same figures with launches in series.
    from dataclasses import replace

    gpu = replace(
        spec_from_peak(1e12, 1e11, dtype="float32", name="toy", kernel_overhead=1e-5),
        kind="gpu",
    )
    assert gpu.launches_overlap
    r = measure(tiny(), "4x16", warmup=1, repeats=2, per_module=True, hardware=gpu)
    report = modelmeter.analyze(tiny(), "4x16")
    serial = modelmeter.roofline(report, replace(gpu, overlap=False), phase="forward")
    queued = modelmeter.roofline(report, gpu, phase="forward")
    mods = {m.name: m.predicted_s for m in r.modules}
    # 3 ops busy 29, 10 and 17 ns (bytes / 100 GB/s): in series 3 x 10 us + 56 ns; queued,
    # each waits for its launch and only the last one's busy time is left: 30 us + 17 ns
    assert serial.latency_s == pytest.approx(30.056e-6, rel=1e-4)
    assert queued.latency_s == pytest.approx(30.017e-6, rel=1e-4)
    assert mods[""] == pytest.approx(serial.latency_s, rel=1e-6)
    assert r.prediction is not None and r.prediction.latency_s == pytest.approx(queued.latency_s)


def test_users_model_untouched() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())
    model.train()  # BN would update its running stats if the model itself ran
    model[0].weight.requires_grad_(False)
    before = copy.deepcopy(model.state_dict())
    r = measure(model, "2x3x8x8", dtype="bf16", warmup=1, repeats=2, per_module=True)
    assert r.latency.median > 0
    after = model.state_dict()
    assert all(
        torch.equal(before[k], after[k]) and after[k].dtype == before[k].dtype for k in before
    )
    assert model.training and not model[0].weight.requires_grad and model[1].weight.requires_grad
    assert all(t.device.type == "cpu" for t in model.state_dict().values())
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks
    assert any("training mode" in n for n in r.notes)


def test_named_model_with_builtin_spec() -> None:
    r = measure("torchvision:resnet18", "1x3x64x64", warmup=0, repeats=2, hardware="epyc-9654")
    assert r.model == "torchvision:resnet18"
    assert r.prediction is not None and r.prediction.hardware == "epyc-9654"
    assert r.kernels == r.prediction.kernels > 50
    assert r.ratio is not None and r.ratio > 0


def test_named_model_built_with_real_values(tmp_path) -> None:  # noqa: ANN001
    # A factory that builds on meta with a buffer computed while building: the measure
    # build must give real parameters and keep the computed buffer's values.
    f = tmp_path / "metafac.py"
    f.write_text(
        "import torch\n"
        "class M(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.lin = torch.nn.Linear(5, 5)\n"
        "        self.register_buffer('idx', torch.arange(5) * 2)\n"
        "    def forward(self, x):\n"
        "        return self.lin(x)[:, self.idx // 2]\n"
        "def make():\n"
        "    with torch.device('meta'):\n"
        "        return M(), '2x5'\n",
        encoding="utf-8",
    )
    loaded = load_on_device(f"{f}:make", torch.device("cpu"))
    m = loaded.model
    assert not any(t.is_meta for t in (*m.parameters(), *m.buffers()))
    assert m.idx.tolist() == [0, 2, 4, 6, 8]
    assert torch.isfinite(m.lin.weight).all() and m.lin.weight.abs().sum() > 0
    r = measure(f"{f}:make", warmup=0, repeats=2)
    assert r.batch == 2 and r.latency.median > 0


def test_meta_user_module_is_materialised_on_a_copy() -> None:
    with torch.device("meta"):
        model = nn.Linear(8, 8)
    r = measure(model, "2x8", warmup=0, repeats=2)
    assert model.weight.is_meta  # the user's module stays as it was
    assert any("meta device" in n for n in r.notes)


def test_plain_callable() -> None:
    r = measure(lambda x: torch.relu(x) * 2, "4x4", warmup=0, repeats=2, per_module=True)
    assert r.flops == 32  # relu 16 + mul 16
    assert r.hooked is None and any("nn.Module" in n for n in r.notes)


def test_bad_input_errors() -> None:
    with pytest.raises(InputError, match="not available"):
        resolve_device("cuda") if not torch.cuda.is_available() else resolve_device("cuda:99")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("tpu0")
    with pytest.raises(InputError):
        measure(tiny(), "4x16", repeats=0)
    with pytest.raises(InputError, match="unknown dtype"):
        measure(tiny(), "4x16", dtype="fp7")
    with pytest.raises(ModelmeterError, match="unknown hardware"):
        measure(tiny(), "4x16", hardware="no-such-chip")
    with pytest.raises(ModelmeterError, match="failed"):
        measure(tiny(), "4x17", warmup=0, repeats=1)


def test_tf32_switch_restores_either_api() -> None:
    # In a fresh process (the newer fp32_precision API, once used, makes reading the legacy
    # flags raise for the rest of the process): the legacy flags are switched and restored;
    # after fp32_precision has been set, that API is switched and restored instead.
    import subprocess
    import sys

    code = """
import torch
from modelmeter.frontends.torch.device import tf32_allowed
m, c = torch.backends.cuda.matmul, torch.backends.cudnn
m.allow_tf32, c.allow_tf32 = False, True
with tf32_allowed(True):
    assert (m.allow_tf32, c.allow_tf32) == (True, True)
assert (m.allow_tf32, c.allow_tf32) == (False, True)
m.fp32_precision = "tf32"
with tf32_allowed(False):
    assert (m.fp32_precision, c.conv.fp32_precision) == ("ieee", "ieee")
assert m.fp32_precision == "tf32"
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]


def test_a_model_in_training_mode_gets_one_note_saying_so() -> None:
    # Before: the run's "the model is in training mode (as given)" and the analysis's "the
    # model is in training mode: ...; call model.eval() to count inference", both.
    r = measure(tiny().train(), "4x16", warmup=0, repeats=1)
    assert [n for n in r.notes if "training mode" in n] == [
        "the model is in training mode (as given): train-mode layers ran"
    ]
    assert not [n for n in measure(tiny().eval(), "4x16", warmup=0, repeats=1).notes
                if "training mode" in n]  # fmt: skip
