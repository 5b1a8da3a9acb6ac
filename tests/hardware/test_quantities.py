"""Figures as users write them: units on --peak/--bandwidth and in device files (TOPS vs B/s,
GB/s vs GiB/s, bits), impossible values, and the small roofline edge cases found in review."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelmeter.analysis.roofline import roofline
from modelmeter.analysis.utilization import utilization
from modelmeter.cli import main
from modelmeter.hardware import HardwareSpecError, load_spec, resolve_peak, spec_from_peak
from modelmeter.hardware.loader import parse_quantity
from modelmeter.report import Cost, InputSpec, ModuleNode, OpRecord, Report

GOOD = """name = "mychip"
vendor = "Me"
kind = "npu"
[memory]
bandwidth = "25.6G"
[compute]
int8 = "1.7T"
"""


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("1.7T", "rate", 1.7e12),
        ("1.7TOPS", "rate", 1.7e12),
        ("1.7 TOPS", "rate", 1.7e12),
        ("312 TFLOPS", "rate", 312e12),
        ("2TFLOP/s", "rate", 2e12),
        ("1.5P", "rate", 1.5e15),
        ("25.6G", "bandwidth", 25.6e9),
        ("25.6GB/s", "bandwidth", 25.6e9),
        ("3.35 TB/s", "bandwidth", 3.35e12),
        ("1200 GBps", "bandwidth", 1200e9),  # Google's spelling of GB/s
        ("800GiB/s", "bandwidth", 800 * 2**30),  # binary prefix: 858,993,459,200 B/s
        ("80G", "bytes", 80e9),
        ("32GiB", "bytes", 32 * 2**30),  # 34,359,738,368 B
        ("0", "rate", 0.0),  # parsed; the callers refuse it
        ("-1", "rate", -1.0),
    ],
)
def test_quantities(text: str, kind: str, value: float) -> None:
    assert parse_quantity(text, kind) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize(
    ("text", "kind", "says"),
    [
        ("abc", "rate", "not a number"),
        ("nan", "rate", "not a number"),
        ("inf", "bandwidth", "not a number"),
        ("1,7T", "rate", "not a number"),
        ("1.7TT", "rate", "unknown unit"),
        ("25.6GB/s", "rate", "looks like a bandwidth in bytes/s, not a peak"),
        ("1.7TOPS", "bandwidth", "looks like a peak in FLOP/s or OP/s, not a bandwidth"),
        ("25.6Gb/s", "bandwidth", "in bits"),  # 8x less than 25.6 GB/s: refused, not guessed
        ("100 Mbps", "bandwidth", "in bits"),
        ("32 GiB/s", "bytes", "looks like a bandwidth"),
    ],
)
def test_quantities_refused(text: str, kind: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_quantity(text, kind)


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("peak", "bandwidth", "says"),
    [
        ("0", "25.6G", "--peak: must be a positive rate"),
        ("-1", "25.6G", "--peak: must be a positive rate"),
        ("abc", "25.6G", "--peak: not a number"),
        ("1e999", "25.6G", "--peak: must be a positive rate"),
        ("25.6GB/s", "1.7T", "--peak: '25.6GB/s' looks like a bandwidth"),
        ("1.7T", "1.7TOPS", "--bandwidth: '1.7TOPS' looks like a peak"),
        ("1.7T", "25.6Gb/s", "--bandwidth: '25.6Gb/s' is in bits"),
        ("1.7T", "0", "--bandwidth: must be a positive bandwidth"),
        ("", "25.6G", "--peak: not a number"),
    ],
)
def test_peak_and_bandwidth_options_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, peak: str, bandwidth: str, says: str
) -> None:
    report = tmp_path / "r.json"
    report.write_text("{}")  # never read: the options fail first
    code, err = _cli(capsys, "utilization", str(report), "--latency", "12ms",
                     f"--peak={peak}", f"--bandwidth={bandwidth}")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and says in lines[0], err


def test_peak_with_units_equals_bare_figures() -> None:
    from argparse import Namespace

    from modelmeter.commands.options import spec_from_args

    a = spec_from_args(Namespace(hardware=None, peak="1.7TOPS", bandwidth="25.6GB/s",
                                 peak_dtype="int8"))
    b = spec_from_peak(1.7e12, 25.6e9)
    assert a is not None and (a.compute, a.bandwidth) == (b.compute, b.bandwidth)


def _write(tmp_path: Path, text: str | bytes) -> str:
    p = tmp_path / "mychip.toml"
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return str(p)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (GOOD + "[efficiency]\ncompute = 1.5\n", "efficiency.compute must be at most 1"),
        (GOOD + '[efficiency]\nmemory = "90%"\n', "efficiency.memory must be a plain number"),
        (GOOD.replace('"25.6G"', '"1.7TOPS"'), "memory.bandwidth is invalid: '1.7TOPS' looks"),
        (GOOD.replace('"1.7T"', '"25.6GB/s"'), "compute.int8 is invalid: '25.6GB/s' looks"),
        (GOOD.replace('"25.6G"', '"25.6Gb/s"'), "is in bits"),
        (GOOD.replace('"1.7T"', "nan"), "compute.int8 must be a finite number"),
        (GOOD.replace('"1.7T"', "inf"), "compute.int8 must be a finite number"),
        (GOOD.replace('"1.7T"', "1" + "0" * 400), "compute.int8 must be a finite number"),
        (GOOD.replace('"1.7T"', '"1e300T"'), "compute.int8 must be a finite number"),
        (GOOD.replace('"1.7T"', "1979-05-27"), "compute.int8 must be a number"),
        (GOOD.replace("int8 =", "fp16 ="), "compute.fp16 is not a known dtype; write its "
                                           "canonical name, float16"),
        (GOOD + '[overhead]\nkernel = "abc"\n', "overhead.kernel is not a time: 'abc'"),
        (b"name = \"\xff\"\n", "not UTF-8 text (byte 8"),
    ],
)
def test_bad_figures_in_files(tmp_path: Path, text: str | bytes, says: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(HardwareSpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert "\n" not in message and says in message, message


def test_binary_units_in_files(tmp_path: Path) -> None:
    text = GOOD.replace('"25.6G"', '"800GiB/s"\ncapacity = "32GiB"\ncache = "40MiB"')
    s = load_spec(_write(tmp_path, text))
    assert (s.bandwidth, s.capacity, s.cache) == (800 * 2**30, 32 * 2**30, 40 * 2**20)
    # memory efficiency above 1 stays allowed (unfused byte counts overstate traffic)
    s = load_spec(_write(tmp_path, GOOD + "[efficiency]\nmemory = 1.3\n"))
    assert s.efficiency_memory == 1.3


def test_unsigned_integer_macs_use_the_signed_peak() -> None:
    # uint8 MACs (QLinearConv's activations) run on the int8 tensor cores: 1,979 TOP/s on
    # H100, not a fallback to the FP32 vector units
    h100 = load_spec("h100-sxm")
    choice = resolve_peak(h100, "uint8", "matrix")
    assert (choice.value, choice.key, choice.note) == (1979e12, "compute.int8", None)


def _report(shape: tuple[int, ...]) -> Report:
    conv = OpRecord("aten.convolution", Cost(macs=10**9, flops=2 * 10**9, bytes_read=10**8),
                    dtype="float32")
    root = ModuleNode("", "Net", calls=1, ops=[conv])
    return Report("net", "onnx", "exact", "meta", [InputSpec(shape, "float32")], root)


def test_throughput_needs_a_known_batch() -> None:
    spec = load_spec("hi3519av100")
    assert roofline(_report((4, 3, 224, 224)), spec).throughput is not None
    # an ONNX input whose batch was never set is recorded as -1: no negative throughput
    assert roofline(_report((-1, 3, 224, 224)), spec).throughput is None
    assert roofline(_report((0, 3, 224, 224)), spec).throughput is None


def test_utilization_dtype_alias_and_flop_warning() -> None:
    h100 = load_spec("h100-sxm")
    u = utilization(_report((1, 3, 224, 224)), h100, 1.0, dtype="bf16")
    assert (u.dtype, u.peak_key) == ("bfloat16", "compute.bfloat16")
    with pytest.raises(HardwareSpecError, match="unknown dtype"):
        utilization(_report((1, 3, 224, 224)), h100, 1.0, dtype="bf17")
    # 2e9 FLOPs in 1 ns on a 1.7 TOP/s chip: above 100%, said
    u = utilization(_report((1, 3, 224, 224)), load_spec("hi3519av100"), 1e-9)
    assert any("above 100%" in n for n in u.notes)


@pytest.mark.parametrize(
    ("field", "value"),
    [("bandwidth", float("inf")), ("bandwidth", float("nan")), ("kernel_overhead", float("inf")),
     ("compute", {"int8": float("inf")}), ("vector", {"float32": 0.0})],
)
def test_specs_built_in_python_are_checked_too(field: str, value: object) -> None:
    # an infinite bandwidth used to give memory_s = 0 silently
    from dataclasses import replace

    with pytest.raises(HardwareSpecError, match="must be"):
        roofline(_report((1, 3, 224, 224)), replace(load_spec("hi3519av100"), **{field: value}))
