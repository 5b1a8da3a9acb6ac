"""``modelmeter calibrate`` on the CPU (--quick): a valid spec file, written whole, never over
an existing file without --force; bad input exits 2 with nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cli_helpers import one_error, run

from modelmeter.cli import main
from modelmeter.commands.calibrate import parse_dtypes, spec_name
from modelmeter.errors import InputError
from modelmeter.hardware import load_spec


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One quick CPU calibration for the whole module (it is the slow part)."""
    path = tmp_path_factory.mktemp("cal") / "My Box.toml"
    assert main(["calibrate", "--device", "cpu", "--quick", "--quiet", "-o", str(path)]) == 0
    return path


def test_quick_calibration_writes_a_loadable_spec(calibrated: Path) -> None:
    spec = load_spec(str(calibrated))
    assert spec.name == "my-box"  # from the file's stem, made a valid name
    assert spec.kind == "cpu" and spec.verified is False
    assert spec.source.startswith("measured by modelmeter calibrate on ")
    assert f"torch {torch.__version__}" in spec.source
    assert (spec.efficiency_compute, spec.efficiency_memory) == (1.0, 1.0)
    assert set(spec.compute) == {"float32"} and set(spec.vector) == {"float32"}
    # sanity only: any CPU does between 100 MFLOP/s and 100 TFLOP/s, 100 MB/s .. 10 TB/s
    assert 1e8 < spec.compute["float32"] < 1e14
    assert 1e7 < spec.vector["float32"] < 1e14
    assert 1e8 < spec.bandwidth < 1e13
    assert 1e-8 < spec.kernel_overhead < 1e-2
    # one dtype: no per-dtype tables (the general figures are that dtype's)
    assert not spec.dtype_overhead and not spec.dtype_kernels
    # one attainable fraction per benchmarked kernel class, within [0.01, 1]
    # (and matmul, whose compute side is the measured peak itself: 1.0)
    assert set(spec.kernel_efficiency) == {"conv", "depthwise", "pool", "norm", "matmul"}
    assert all(0.01 <= v <= 1.0 for v in spec.kernel_efficiency.values())
    assert spec.kernel_efficiency["matmul"] == 1.0
    # and the memory side of convolutions (a memory-heavy 1x1 convolution): written apart
    # unless it came out equal to the compute side (then the file holds one number for both,
    # which a busy machine makes likely: both clamp to the same floor)
    # a DRAM-sized matrix-vector product gives matmul's memory side (a decode step's linears)
    assert set(spec.kernel_memory) <= {"conv", "matmul"}
    assert 0.01 <= spec.kernel_factors("matmul")[1] <= 1.0
    conv_memory = spec.kernel_memory.get("conv", spec.kernel_efficiency["conv"])
    assert 0.01 <= conv_memory <= 1.0
    assert not list(calibrated.parent.glob(".*tmp"))  # no temporary file left behind
    # the eager host time per module call and per generation step, from two tiny Llamas
    # (transformers is installed): sanity only, any host spends under 10 ms per module call
    # and 100 ms per step
    assert spec.module_call is not None and 0 <= spec.module_call < 1e-2
    assert spec.step_overhead is not None and 0 <= spec.step_overhead < 1e-1
    assert "tiny Llama" in spec.notes
    # onnxruntime's per-node cost (onnxruntime is installed): sanity only, 10 ns .. 100 us
    assert set(spec.runtime_overhead) == {"ort"}
    assert 1e-8 < spec.runtime_overhead["ort"] < 1e-4
    assert "onnxruntime" in spec.notes
    # launches are paid in series on a CPU, inside the per-op overhead: no launch times
    assert spec.launch_overhead is None and not spec.launch_classes


def test_two_dtypes_give_per_dtype_overheads_and_kernel_tables(tmp_path: Path) -> None:
    path = tmp_path / "two.toml"
    argv = ["calibrate", "--device", "cpu", "--quick", "-q", "--dtypes", "fp32,bf16"]
    assert main([*argv, "-o", str(path)]) == 0
    spec = load_spec(str(path))
    assert set(spec.dtype_overhead) == {"float32", "bfloat16"}
    # the general overhead is the first dtype's (float32's)
    assert spec.kernel_overhead == spec.dtype_overhead["float32"]
    assert set(spec.dtype_kernels) == {"float32", "bfloat16"}
    for table in spec.dtype_kernels.values():
        assert set(table) == {"conv", "depthwise", "pool", "norm", "matmul"}
    # the general table is the geometric mean of the two dtypes' fractions
    for cls in ("conv", "depthwise", "pool", "norm"):
        (f32, _), (b16, _) = spec.dtype_kernels["float32"][cls], spec.dtype_kernels["bfloat16"][cls]
        assert spec.kernel_efficiency[cls] == pytest.approx((f32 * b16) ** 0.5)
    assert spec.kernel_factors("conv", "bfloat16") == spec.dtype_kernels["bfloat16"]["conv"]


def test_spec_is_usable_for_prediction(calibrated: Path) -> None:
    import modelmeter

    report = modelmeter.analyze(torch.nn.Linear(8, 8), "2x8")
    roof = modelmeter.roofline(report, load_spec(str(calibrated)))
    assert roof.total.latency_s > 0 and roof.total.kernels == 1


def test_refuses_to_overwrite_without_force(
    calibrated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = calibrated.read_bytes()
    code, _, err = run(capsys, "calibrate", "--quick", "-q", "-o", str(calibrated))
    assert code == 2 and "--force" in one_error(err)
    assert calibrated.read_bytes() == before


def test_force_overwrites_and_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "old.toml"
    path.write_text("not a spec", encoding="utf-8")
    code, out, _ = run(
        capsys, "calibrate", "--quick", "-q", "--force", "--name", "lab-cpu", "-o", str(path)
    )
    assert code == 0 and "matmul" in out and str(path) in out
    assert load_spec(str(path)).name == "lab-cpu"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--dtypes", "fp7"], "unknown dtype"),
        (["--dtypes", "int8"], "cannot calibrate"),
        (["--dtypes", "tf32"], "CUDA"),
        (["--dtypes", " , "], "empty"),
        (["--name", "Bad Name"], "invalid --name"),
        (["--device", "tpu"], "invalid device"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    path = tmp_path / "x.toml"
    code, _, err = run(capsys, "calibrate", "--quick", "-q", "-o", str(path), *argv)
    assert code == 2 and needle in one_error(err)
    assert not path.exists() and not list(tmp_path.iterdir())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_unavailable_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "g.toml"
    code, _, err = run(capsys, "calibrate", "--device", "cuda", "-q", "-o", str(path))
    assert code == 2 and "not available" in one_error(err)
    assert not path.exists()


def test_output_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "calibrate", "-q", "-o", str(tmp_path / "no" / "x.toml"))
    assert code == 2 and "does not exist" in one_error(err)
    code, _, err = run(capsys, "calibrate", "-q", "-o", "-")
    assert code == 2 and "-o FILE" in one_error(err)


def test_helpers() -> None:
    assert spec_name("dir/My GPU #2.toml", None) == "my-gpu-2"
    assert spec_name("x/___.toml", None) == "calibrated"
    assert spec_name("a.toml", "given.name") == "given.name"
    with pytest.raises(InputError):
        spec_name("a.toml", "UPPER")
    assert parse_dtypes(None) is None
    assert parse_dtypes("fp32, bf16,") == ["fp32", "bf16"]


def test_calibrating_leaves_the_callers_rng_as_it_was() -> None:
    from modelmeter.hardware.calibrate import calibrate

    torch.manual_seed(1234)
    expected = torch.rand(3)  # the caller's next draws
    torch.manual_seed(1234)
    calibrate("cpu", quick=True)  # its benchmarks draw operands, the tiny Llamas reseed
    assert torch.equal(torch.rand(3), expected)
