"""The hardware database: every shipped device loads, figures are dense and sourced, bad files
give one clear error naming the file and the field, and the fallback rules pick the peak."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from modelmeter.errors import ModelmeterError
from modelmeter.hardware import (
    HardwareSpec,
    HardwareSpecError,
    did_you_mean,
    dump_toml,
    list_specs,
    load_file,
    load_spec,
    parse_seconds,
    resolve_peak,
    spec_from_dict,
    spec_from_peak,
)
from modelmeter.render.hardware import render_hardware_list as render_list
from modelmeter.render.hardware import render_hardware_show as render_show
from modelmeter.render.hardware import show_lines

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "src" / "modelmeter" / "hardware" / "specs"
DOC = REPO / "docs" / "hardware.md"
START, END = "<!-- hardware-table:start -->\n", "<!-- hardware-table:end -->"

REQUIRED = {
    "h100-sxm", "h100-pcie", "h200", "a100-sxm-40gb", "a100-sxm-80gb", "v100-sxm2", "t4", "l4",
    "a10", "rtx-3090", "rtx-4090", "jetson-agx-orin", "jetson-orin-nx", "jetson-orin-nano",
    "jetson-xavier-nx", "jetson-nano", "apple-m1", "apple-m2", "tpu-v4", "tpu-v5e",
    "hi3519av100", "rk3588", "raspberry-pi-4", "raspberry-pi-5",
}  # fmt: skip


# ---- the shipped database --------------------------------------------------------------------


def test_at_least_twenty_devices_each_sourced_and_named_after_its_file() -> None:
    specs = list_specs()
    assert len(specs) >= 20
    assert REQUIRED <= {s.name for s in specs}
    for s in specs:
        assert s.path is not None and Path(s.path).stem == s.name
        assert s.source and s.vendor and s.display_name
        assert s.bandwidth > 0 and s.compute
        assert all(v > 0 for v in (*s.compute.values(), *s.vector.values()))
        assert s.efficiency_compute == 1.0 and s.efficiency_memory == 1.0
        assert 0 < s.kernel_overhead <= 20e-6  # estimates, 1-10 us
    assert len({s.name for s in specs}) == len(specs)
    assert sorted(p.stem for p in SPECS.glob("*.toml")) == [s.name for s in specs]


def test_dense_figures_not_sparse() -> None:
    # NVIDIA lists 2:4-sparse tensor figures; the database holds half of them
    assert load_spec("h100-sxm").compute["bfloat16"] == 989.5e12  # 1,979 sparse / 2
    assert load_spec("h100-sxm").compute["int8"] == 1979e12  # 3,958 sparse / 2
    assert load_spec("h100-pcie").compute["float16"] == 756.5e12  # 1,513 sparse / 2
    assert load_spec("a100-sxm-80gb").compute["int8"] == 624e12  # 1,248 sparse / 2
    assert load_spec("l4").compute["int8"] == 242.5e12  # 485 sparse / 2
    assert load_spec("jetson-agx-orin").compute["int8"] == 137.5e12  # 275 sparse / 2
    assert load_spec("jetson-orin-nano").compute["int8"] == 33.5e12  # 67 sparse (Super) / 2
    assert load_spec("tpu-v4").compute["bfloat16"] == 275e12
    assert load_spec("hi3519av100").compute == {"int8": 1.7e12}  # the source document's example
    assert load_spec("h100-sxm").bandwidth == 3.35e12
    assert load_spec("a100-sxm-40gb").bandwidth == 1555e9


def test_verified_marks_follow_the_sources() -> None:
    verified = {s.name for s in list_specs() if s.verified}
    for name in ("h100-sxm", "h100-pcie", "a100-sxm-40gb", "a100-sxm-80gb", "tpu-v4", "apple-m2"):
        assert name in verified
    # unverified figures in the sources: H200 compute assumed, L4 FP16/FP8, A10 tensor, 3090,
    # 4090 FP8, Orin bandwidth, Hi3519AV100 (no source), RK3588 bandwidth, derived CPU peaks
    for name in ("h200", "l4", "a10", "rtx-3090", "rtx-4090", "jetson-agx-orin",
                 "hi3519av100", "rk3588", "raspberry-pi-4", "a100-pcie-80gb"):  # fmt: skip
        assert name not in verified


def test_load_by_name_is_case_insensitive_and_suggests() -> None:
    assert load_spec("H100-SXM") is load_spec("h100-sxm")
    with pytest.raises(HardwareSpecError, match="did you mean.*h100-sxm"):
        load_spec("h100-sx")
    with pytest.raises(ModelmeterError, match="unknown hardware 'nothing-like-it'"):
        load_spec("nothing-like-it")


def test_did_you_mean_offers_the_entries_a_family_name_starts_or_is_in_first() -> None:
    # "a100" is no entry but starts three: all three come first, before the close "a10"
    with pytest.raises(HardwareSpecError) as e:
        load_spec("a100")
    assert "did you mean a100-pcie-80gb, a100-sxm-40gb, a100-sxm-80gb, a10?" in str(e.value)
    # "4090" is inside "rtx-4090" (a substring, not a prefix)
    with pytest.raises(HardwareSpecError, match="did you mean rtx-4090"):
        load_spec("4090")
    assert did_you_mean("", ["a", "b"]) == []


def test_dump_and_load_round_trip(tmp_path: Path) -> None:
    for spec in list_specs():
        p = tmp_path / f"{spec.name}.toml"
        p.write_text(dump_toml(spec), encoding="utf-8")
        assert _close(load_spec(str(p)), spec)


def _close(a: HardwareSpec, b: HardwareSpec) -> bool:
    da, db = a.to_dict(), b.to_dict()
    for key in ("memory", "compute", "vector"):
        assert da.pop(key) == pytest.approx(db.pop(key))
    assert da.pop("overhead")["kernel"] == pytest.approx(db.pop("overhead")["kernel"])
    assert da == db
    return True


def test_spec_from_peak() -> None:
    s = spec_from_peak(1.7e12, 25.6e9, "int8")
    assert s.compute == {"int8": 1.7e12} and s.bandwidth == 25.6e9 and not s.verified
    assert s.ridge_point("float32") == pytest.approx(1.7e12 / 25.6e9)  # 66.4 OP/B
    with pytest.raises(HardwareSpecError, match="--peak-dtype"):
        spec_from_peak(1e12, 1e9, "int9")
    with pytest.raises(HardwareSpecError, match="bandwidth must be a positive"):
        spec_from_peak(1e12, 0.0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("4us", 4e-6), ("10us", 1e-5), ("0.5 ms", 5e-4), ("2e-6", 2e-6), ("3µs", 3e-6), (0, 0.0)],
)
def test_parse_seconds(text: str, seconds: float) -> None:
    assert parse_seconds(text) == pytest.approx(seconds)
    assert parse_seconds("10us") == 1e-05  # exact: divided, not multiplied by 1e-6


# ---- the fallback rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "dtype", "unit", "tf32", "key", "value", "note"),
    [
        # step 1: the table has the dtype
        ("h100-sxm", "bfloat16", "matrix", False, "compute.bfloat16", 989.5e12, None),
        ("h100-sxm", "int8", "matrix", False, "compute.int8", 1979e12, None),
        ("h100-sxm", "float64", "vector", False, "vector.float64", 34e12, None),
        ("jetson-nano", "float16", "vector", False, "vector.float16", 472e9, None),
        # float32 MACs: the FP32 vector units unless TF32 is allowed
        ("h100-sxm", "float32", "matrix", False, "vector.float32", 67e12, "no TF32"),
        ("h100-sxm", "float32", "matrix", True, "compute.tfloat32", 494.7e12, "TF32"),
        # no bf16 tensor cores (T4): the FP32 vector rate
        ("t4", "bfloat16", "matrix", False, "vector.float32", 8.1e12, "vector.float32 rate"),
        # elementwise bf16 on H100 SXM: its non-Tensor bf16 peak (whitepaper, 2 x 66.9)
        ("h100-sxm", "bfloat16", "vector", False, "vector.bfloat16", 133.8e12, None),
        # ... on H100 PCIe none is sourced: vector.float32, said so
        ("h100-pcie", "bfloat16", "vector", False, "vector.float32", 51e12, "vector.float32"),
        ("h100-sxm", "int64", "vector", False, "vector.float32", 67e12, "vector.float32"),
        # TPU: no vector peaks at all
        ("tpu-v4", "bfloat16", "vector", False, "compute.bfloat16", 275e12, "no vector peak"),
        ("tpu-v4", "float32", "matrix", False, "compute.bfloat16", 275e12, "assumed bfloat16"),
        # int8-only NPU: everything at the int8 peak, said so
        ("hi3519av100", "float32", "matrix", False, "compute.int8", 1.7e12, "quantised to int8"),
        ("hi3519av100", "float16", "vector", False, "compute.int8", 1.7e12, "quantised to int8"),
        ("rk3588", "int8", "matrix", False, "compute.int8", 6e12, None),
    ],
)
def test_fallback_rules(
    device: str, dtype: str, unit: str, tf32: bool, key: str, value: float, note: str | None
) -> None:
    choice = resolve_peak(load_spec(device), dtype, unit, tf32=tf32)
    assert choice.key == key and choice.value == pytest.approx(value, rel=1e-12)
    if note is None:
        assert choice.note is None
    else:
        assert choice.note is not None and note in choice.note


def test_ridge_point_uses_efficiency() -> None:
    h = load_spec("h100-sxm")
    assert h.ridge_point("bfloat16") == pytest.approx(989.5e12 / 3.35e12)  # 295.37 FLOP/B
    # 0.5 x 989.5e12 / (0.8 x 3.35e12) = 184.61 FLOP/B
    assert h.with_efficiency(0.5, 0.8).ridge_point("bfloat16") == pytest.approx(184.608, rel=1e-5)
    assert h.with_efficiency(0.5, 0.8).ridge_point("bfloat16", effective=False) == pytest.approx(
        295.373, rel=1e-5
    )


# ---- bad files ----------------------------------------------------------------------------------

GOOD = """name = "mychip"
vendor = "Me"
kind = "npu"
[memory]
bandwidth = "25.6G"
[compute]
int8 = "1.7T"
"""


def _write(tmp_path: Path, text: str | bytes, name: str = "mychip.toml") -> str:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return str(p)


def test_a_minimal_good_file(tmp_path: Path) -> None:
    s = load_spec(_write(tmp_path, GOOD))
    assert (s.name, s.display_name, s.bandwidth, dict(s.compute)) == (
        "mychip", "mychip", 25.6e9, {"int8": 1.7e12},
    )  # fmt: skip
    assert not s.verified and s.kernel_overhead == 0 and s.vector == {}


@pytest.mark.parametrize(
    ("text", "field", "says"),
    [
        ("this is = = not toml", None, "is not valid TOML"),
        (b'name = "\xff"', None, "is not valid TOML"),
        (GOOD.replace('bandwidth = "25.6G"', ""), "memory.bandwidth", "is missing"),
        (GOOD.replace('name = "mychip"\n', ""), "name", "is missing"),
        (GOOD.replace('vendor = "Me"\n', ""), "vendor", "is missing"),
        (GOOD.replace('"25.6G"', '"-25.6G"'), "memory.bandwidth", "must be > 0"),
        (GOOD.replace('"25.6G"', "0"), "memory.bandwidth", "must be > 0"),
        (GOOD.replace('"25.6G"', '"fast"'), "memory.bandwidth", "is not a number"),
        (GOOD.replace('"25.6G"', "true"), "memory.bandwidth", "must be a number"),
        (GOOD.replace("int8 =", "int9 ="), "compute.int9", "is not a known dtype"),
        (GOOD + '[vector]\nfp32 = "1T"\n', "vector.fp32", "is not a known dtype"),
        (GOOD.replace('int8 = "1.7T"', ""), "[compute]", "needs at least one"),
        (GOOD.replace('"npu"', '"fpga"'), "kind", "must be one of"),
        (GOOD.replace('name = "mychip"', 'name = "My Chip"'), "name", "must be lowercase"),
        ('verified = "yes"\n' + GOOD, "verified", "must be true or false"),
        ('speed = "1T"\n' + GOOD, "speed", "is not a known field"),
        (GOOD + '[overhead]\nkernel = "4 parsecs"\n', "overhead.kernel", "is not a time"),
        (GOOD + '[overhead]\nkernel = "-4us"\n', "overhead.kernel", "must be >= 0"),
        (GOOD + '[overhead]\noverlap = "yes"\n', "overhead.overlap", "must be true or false"),
        (GOOD + "[efficiency]\ncompute = 0\n", "efficiency.compute", "must be > 0"),
        (GOOD + "[efficiency]\nspeed = 1\n", "efficiency.speed", "is not a known field"),
        (GOOD + "[efficiency]\nkernels = 1\n", "efficiency.kernels", "must be a table"),
        (GOOD + "[efficiency.kernels]\nwarp = 0.5\n", "efficiency.kernels.warp", "kernel class"),
        (GOOD + "[efficiency.kernels]\npool = 1.5\n", "efficiency.kernels.pool", "at most 1"),
        (GOOD + "[efficiency.kernels]\npool = 0\n", "efficiency.kernels.pool", "must be > 0"),
        (
            GOOD + "[efficiency.kernels]\nconv = { memory = 2 }\n",
            "efficiency.kernels.conv.memory",
            "at most 1",
        ),
        (
            GOOD + "[efficiency.kernels]\nconv = { cache = 0.5 }\n",
            "efficiency.kernels.conv.cache",
            "not a known field",
        ),
        (GOOD.replace('[memory]\nbandwidth = "25.6G"', "memory = 3"), "memory", "be a table"),
    ],
)
def test_bad_files_give_one_clear_error(
    tmp_path: Path, text: str | bytes, field: str | None, says: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(HardwareSpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"hardware file {path}")
    assert says in message
    if field is not None:
        assert f": {field} " in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HardwareSpecError, match="does not exist"):
        load_file(tmp_path / "nope.toml")
    with pytest.raises(HardwareSpecError, match="does not exist"):
        load_spec(str(tmp_path / "nope.toml"))


# ---- listing and the docs ---------------------------------------------------------------------


def test_list_shows_every_device_with_source() -> None:
    md = render_list(list_specs(), "md")
    rows = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) - 1 == len(list_specs())  # header + one row per device
    h100 = next(r for r in rows if r.startswith("| h100-sxm |"))
    for cell in ("989.5T", "1.979P", "3.35T", "4 us", "yes", "NVIDIA H100 datasheet"):
        assert cell in h100
    assert "| NO |" in next(r for r in rows if r.startswith("| hi3519av100 |"))
    table = render_list(list_specs(), "table")
    for s in list_specs():
        assert re.search(rf"│ {re.escape(s.name)}\s", table)


def test_show_has_every_field() -> None:
    text = render_show(load_spec("hi3519av100"))
    for field in ("display_name", "vendor", "kind", "verified", "source", "notes",
                  "memory.bandwidth", "compute.int8", "overhead.kernel", "efficiency.compute"):  # fmt: skip
        assert field in text
    assert "NO: some figures are unverified" in text


def test_show_lists_kernel_class_factors(tmp_path: Path) -> None:
    text = GOOD + "[efficiency.kernels]\nconv = { compute = 0.9, memory = 0.3 }\npool = 0.25\n"
    shown = dict(show_lines(load_spec(_write(tmp_path, text))))
    assert shown["efficiency.kernels.conv"] == "compute 0.9 · memory 0.3 of the roofline"
    assert shown["efficiency.kernels.pool"] == "0.25 of the roofline"
    assert shown["file"] == str(tmp_path / "mychip.toml")


def test_docs_device_table_is_up_to_date(request: pytest.FixtureRequest) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert START in text and END in text
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    want = render_list(list_specs(), "md")
    if request.config.getoption("--update-gold"):
        DOC.write_text(head + START + want + END + tail, encoding="utf-8")
        return
    assert rest.split(END, 1)[0] == want, "docs/hardware.md is stale: pytest --update-gold"


def test_kernel_efficiency_reads_and_round_trips(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD + "[efficiency.kernels]\npool = 0.25\ndepthwise = 0.5\n")
    spec = load_spec(str(path))
    assert dict(spec.kernel_efficiency) == {"pool": 0.25, "depthwise": 0.5}
    # a class the spec does not name attains its whole roofline
    assert (spec.kernel_factors("pool"), spec.kernel_factors("conv")) == ((0.25, 0.25), (1, 1))
    assert spec.to_dict()["efficiency"]["kernels"] == {"pool": 0.25, "depthwise": 0.5}
    again = tmp_path / "again.toml"
    again.write_text(dump_toml(spec), encoding="utf-8")
    assert load_spec(str(again)).kernel_efficiency == spec.kernel_efficiency


def test_kernel_efficiency_per_ceiling(tmp_path: Path) -> None:
    text = GOOD + "[efficiency.kernels]\nconv = { compute = 0.9, memory = 0.3 }\n"
    text += "norm = { memory = 0.5 }\npool = 0.25\n"
    spec = load_spec(_write(tmp_path, text))
    assert spec.path == str(tmp_path / "mychip.toml")
    # (compute, memory); a side not given is 1.0, a plain number is both
    assert spec.kernel_factors("conv") == (0.9, 0.3)
    assert spec.kernel_factors("norm") == (1.0, 0.5)
    assert spec.kernel_factors("pool") == (0.25, 0.25)
    assert spec.to_dict()["efficiency"]["kernels"] == {
        "conv": {"compute": 0.9, "memory": 0.3},
        "norm": {"compute": 1.0, "memory": 0.5},
        "pool": 0.25,
    }
    again = tmp_path / "again.toml"
    again.write_text(dump_toml(spec), encoding="utf-8")
    back = load_spec(str(again))
    assert [back.kernel_factors(k) for k in ("conv", "norm", "pool", "matmul")] == [
        (0.9, 0.3), (1.0, 0.5), (0.25, 0.25), (1.0, 1.0),
    ]  # fmt: skip


def test_per_dtype_overhead_and_kernels_read_and_round_trip(tmp_path: Path) -> None:
    text = GOOD + '[overhead.dtypes]\nbfloat16 = "27us"\n'
    text += "[efficiency.kernels]\nconv = 0.6\n"
    text += "[efficiency.dtypes.bfloat16]\nconv = { compute = 0.4, memory = 0.8 }\nnorm = 0.5\n"
    spec = load_spec(_write(tmp_path, text))
    assert spec.overhead_for("bfloat16") == pytest.approx(27e-6)
    assert spec.overhead_for("float32") == spec.kernel_overhead
    assert spec.kernel_factors("conv", "bfloat16") == (0.4, 0.8)
    assert spec.kernel_factors("norm", "bfloat16") == (0.5, 0.5)
    assert spec.kernel_factors("conv", "float16") == (0.6, 0.6)
    assert spec.to_dict()["overhead"]["dtypes"] == {"bfloat16": pytest.approx(27e-6)}
    again = tmp_path / "again.toml"
    again.write_text(dump_toml(spec), encoding="utf-8")
    back = load_spec(str(again))
    assert back.dtype_overhead == spec.dtype_overhead
    assert back.dtype_kernels == spec.dtype_kernels
    shown = dict(show_lines(back))
    assert shown["overhead.dtypes.bfloat16"].startswith("27 us")
    assert shown["efficiency.dtypes.bfloat16.conv"].startswith("compute 0.4 · memory 0.8")


def test_json_hardware_block_reads_back_as_the_same_spec(tmp_path: Path) -> None:
    # the JSON report's "hardware" object (to_dict) is a valid spec document: a stored
    # result can be re-predicted with the spec it was made with (bench/gpu_replay.py)
    text = GOOD + '[overhead]\nkernel = "4us"\n[overhead.dtypes]\nbfloat16 = "27us"\n'
    text += "[efficiency.kernels]\nconv = { compute = 0.6, memory = 0.3 }\n"
    text += "[efficiency.dtypes.bfloat16]\nnorm = 0.5\n"
    spec = load_spec(_write(tmp_path, text))
    # (the JSON states the overlap the kind implies)
    assert spec_from_dict(spec.to_dict()) == replace(spec, overlap=False)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ('[overhead.dtypes]\nbf16 = "2us"\n', "overhead.dtypes.bf16 is not a known dtype"),
        ('[overhead.dtypes]\nbfloat16 = "-2us"\n', "overhead.dtypes.bfloat16 must be >= 0"),
        ("[efficiency.dtypes.fp7]\nconv = 0.5\n", "efficiency.dtypes.fp7 is not a known dtype"),
        ("[efficiency.dtypes.bfloat16]\nconvv = 0.5\n", "not a known kernel class"),
        ("[efficiency.dtypes.bfloat16]\nconv = 1.5\n", "must be at most 1"),
        ("[efficiency.dtypes]\nbfloat16 = 0.5\n", "must be a table"),
        ("[efficiency]\ndtypes = 1\n", "efficiency.dtypes must be a table of op dtype -> kernel "
                                        "efficiencies ([efficiency.dtypes.bfloat16] with e.g."),
        ("[overhead]\ndtypes = 1\n", "overhead.dtypes must be a table of op dtype -> time "
                                      '([overhead.dtypes] with e.g. bfloat16 = "3us")'),
        ('[overhead.dtypes.bfloat16]\nconv = "3us"\n',
         'overhead.dtypes.bfloat16 must be a time such as "3us", not a table'),
        ('[overhead.dtypes]\nfp7 = {x = 1}\n', "overhead.dtypes.fp7 is not a known dtype"),
        ("[overhead]\nkernel = inf\n", "overhead.kernel must be a finite time"),
        ('[overhead.dtypes]\ntfloat32 = "2us"\n', "not an op dtype"),
        ("[efficiency.dtypes.tfloat32]\nconv = 0.5\n", "not an op dtype"),
    ],
)
def test_bad_per_dtype_tables_give_one_error(tmp_path: Path, extra: str, needle: str) -> None:
    with pytest.raises(HardwareSpecError) as e:
        load_spec(_write(tmp_path, GOOD + extra))
    assert needle in str(e.value) and "mychip.toml" in str(e.value)


def test_kernel_classes_are_the_formula_families_and_depthwise() -> None:
    from modelmeter.hardware.spec import KERNEL_CLASSES
    from modelmeter.registry import formulas

    assert set(KERNEL_CLASSES) == {f.family for f in formulas()} | {
        "depthwise", "grouped", "attention-decode"}


def test_launch_overlap_follows_the_kind_unless_the_file_says(tmp_path: Path) -> None:
    # GPUs (and the GPU-based SoCs) queue kernels asynchronously; CPUs and NPUs do not
    assert load_spec("h100-sxm").launches_overlap and load_spec("apple-m2").launches_overlap
    assert not load_spec("xeon-8380").launches_overlap
    assert not load_spec("hi3519av100").launches_overlap
    npu = load_spec(_write(tmp_path, GOOD))
    assert npu.overlap is None and not npu.launches_overlap
    told = load_spec(_write(tmp_path, GOOD + "[overhead]\noverlap = true\n", "told.toml"))
    assert told.launches_overlap and told.to_dict()["overhead"]["overlap"] is True
    again = tmp_path / "again.toml"
    again.write_text(dump_toml(told), encoding="utf-8")
    assert load_spec(str(again)).launches_overlap


def test_a_spec_built_in_python_is_checked_where_it_is_made() -> None:
    # the file's rules (hardware/schema.py), said of the spec's name, when it is constructed
    def made(**kw: object) -> HardwareSpec:
        base: dict[str, object] = dict(name="toy", display_name="Toy", vendor="-", kind="npu",
                                       bandwidth=1e9, compute={"int8": 1e12})
        return HardwareSpec(**{**base, **kw})  # type: ignore[arg-type]

    assert made().to_dict()["compute"] == {"int8": 1e12}
    for kw, says in [
        ({"kind": "fpga"}, "hardware 'toy': kind must be one of gpu, cpu, npu, tpu, soc"),
        ({"compute": {"fp16": 1e12}}, "compute.fp16 is not a known dtype; write its canonical"),
        ({"compute": {}}, "[compute] needs at least one dtype peak"),
        ({"bandwidth": -1.0}, "memory.bandwidth must be > 0 (got -1.0)"),
        ({"kernel_efficiency": {"warp": 0.5}}, "efficiency.kernels.warp is not a known kernel"),
        ({"kernel_memory": {"conv": 2.0}}, "efficiency.kernels.conv.memory must be at most 1"),
        ({"dtype_overhead": {"tfloat32": 1e-6}}, "overhead.dtypes.tfloat32 is not an op dtype"),
    ]:
        with pytest.raises(HardwareSpecError) as e:
            made(**kw)
        assert says in str(e.value)
    with pytest.raises(HardwareSpecError, match="efficiency.compute must be at most 1"):
        made().with_efficiency(compute=1.5)
