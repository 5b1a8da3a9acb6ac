"""bench/gpu_check.py runs tiny on the CPU (the real run needs a GPU) and writes its files."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "bench" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_cpu_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--device",
            "cpu",
            "--quick",
            "--out",
            str(out),
            "--datasheet",
            "epyc-9654",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads((out / "gpu_check.json").read_text(encoding="utf-8"))
    assert doc["datasheet_spec"] == "epyc-9654"
    # 2 models x batches (1, 4) x dtypes (float32, bfloat16)
    assert len(doc["cases"]) == 8 and not doc["skipped"] and doc["errors"] == []
    # the CUDA-graphs check needs CUDA: not run here, and said so
    assert doc["graphs_check"] == [] and "no CUDA graphs" in doc["graphs_check_note"]
    assert {c["model"] for c in doc["cases"]} == {"resnet18", "mobilenet_v3_small"}
    for c in doc["cases"]:
        # two dtypes calibrated give per-dtype figures, so the dtype-blind variant is there
        # too; a CPU does not overlap launches, so there is no "serial" variant
        assert c["measured_s"] > 0
        assert set(c["specs"]) == {"calibrated", "dtype-blind", "built-in", "datasheet"}
        for s in c["specs"].values():
            assert s["ratio"] == pytest.approx(s["predicted_s"] / c["measured_s"])
    assert [(r["batch"], r["dtype"]) for r in doc["summary"]] == [
        (1, "bfloat16"),
        (1, "float32"),
        (4, "bfloat16"),
        (4, "float32"),
    ]
    for r in doc["summary"]:
        assert r["models"] == 2
        for key in ("err_calibrated", "err_datasheet", "err_flops_only"):
            assert r[key] is not None and r[key] >= 0
    (k,) = doc["kernel_check"]
    assert k["model"] == "resnet18" and k["op_records"] > 50 and k["kernels"] > 0
    # per-class profile at each batch: conv records and profiled conv ops agree (20 convs)
    for batch in ("1", "4"):
        conv = next(r for r in k["classes"][batch]["classes"] if r["kernel_class"] == "conv")
        assert conv["op_records"] == conv["measured_ops"] == 20 and conv["measured_s"] > 0
    md = (out / "gpu_check.md").read_text(encoding="utf-8")
    assert "err calibrated" in md and "| resnet18 |" in md
    assert "err FLOPs-only" in proc.stdout
    # the stored results re-predicted by bench/gpu_replay.py with the stored calibration and
    # the same code give the check's own predictions back
    replayed = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_replay.py"), str(out / "gpu_check.json"),
         "--show-models"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    assert "8 measurements re-predicted" in replayed.stdout
    for c in doc["cases"]:
        line = next(
            ln for ln in replayed.stdout.splitlines()
            if ln.split()[:3] == [c["model"], f"b{c['batch']}", c["dtype"]]
        )
        want = c["specs"]["calibrated"]["ratio"]
        assert f"calibrated {want:.2f}" in line


def test_summary_is_hand_checked(gpu_check: ModuleType) -> None:
    def case(model: str, measured: float, cal: float, sheet: float, fo: float) -> dict:
        return {
            "model": model,
            "batch": 64,
            "dtype": "bfloat16",
            "measured_s": measured,
            "specs": {
                "calibrated": {"predicted_s": cal, "ratio": cal / measured, "flops_only_s": fo},
                "datasheet": {"predicted_s": sheet, "ratio": sheet / measured, "flops_only_s": fo},
            },
        }

    cases = [
        case("a", 1.0, 1.2, 0.5, 0.1),
        case("b", 2.0, 1.0, 1.0, 0.2),
        case("c", 4.0, 4.0, 1.0, 0.2),
    ]
    (row,) = gpu_check.summarise(cases, ["calibrated", "datasheet"])
    # calibrated: |1.2-1| = 0.2, |0.5-1| = 0.5, 0 -> median 0.2
    # datasheet:  0.5, 0.5, 0.75 -> median 0.5
    # FLOPs-only (datasheet): 0.9, 0.9, 0.95 -> 0.9; measured / FLOPs-only: 10, 10, 20 -> 10
    assert row["err_calibrated"] == pytest.approx(0.2)
    assert row["err_datasheet"] == pytest.approx(0.5)
    assert row["err_flops_only"] == pytest.approx(0.9)
    assert row["median_measured_over_flops_only"] == pytest.approx(10.0)
    assert row["models"] == 3


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA A100-SXM4-40GB", "a100-sxm-40gb"),
        ("NVIDIA A100 80GB PCIe", "a100-pcie-80gb"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("NVIDIA L4", "l4"),
        ("Tesla T4", "t4"),
        ("Some Unknown Accelerator", None),
    ],
)
def test_guess_datasheet(gpu_check: ModuleType, name: str, expected: str | None) -> None:
    from modelmeter.hardware import builtin_names

    assert gpu_check.guess_datasheet(name, builtin_names()) == expected
