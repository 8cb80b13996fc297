"""Hardware descriptions: every file loads, every figure has a source, bad files fail clearly."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from sparsesim import hardware
from sparsesim.cli import main
from sparsesim.hardware import HardwareError

NUMBER_LINE = re.compile(r"^\s*-?\s*[\w-]+:\s*-?[\d.]+(e[+-]?\d+)?\s*(#.*)?$")


def test_every_hardware_and_energy_table_loads():
    names = hardware.names()
    assert {"h100", "a100", "orin", "cpu", "eyeriss", "tpu-v1", "gemmini"} <= set(names)
    for name in names:
        hw = hardware.load(name)
        for table in (hw.energy_table, *hw.energy_tables):
            assert hardware.energy_table(table).mac(hw.dtype) > 0
    h100 = hardware.load("h100")
    assert h100.units == 132 and h100.level("l2").size_bytes == 50 * 1024 * 1024


def test_every_figure_carries_a_source_comment():
    root = hardware.models_dir()  # (timeloop/ holds third-party Timeloop/Accelergy files, unchanged)
    files = sorted([*root.glob("*.yaml"), *root.glob("energy/*.yaml")])
    assert len(files) >= 12
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if NUMBER_LINE.match(line):
                assert "#" in line, f"{path.name}:{number} has a figure without a source comment: {line.strip()}"


def test_every_hardware_states_its_static_power():
    """Idle board power (GPUs, the CPU) or leakage (arrays), with a source comment, on every committed file."""
    for name in hardware.names():
        text = (hardware.models_dir() / f"{name}.yaml").read_text()
        line = next((ln for ln in text.splitlines() if ln.startswith("static_w:")), None)
        assert line is not None and "#" in line, f"{name}.yaml states no static_w with a source"
        assert hardware.load(name).static_w >= 0
    assert hardware.load("h200").static_w > 0 and hardware.load("tpu-v1").static_w == 28


def test_the_gpus_sbnet_and_this_project_measure_on():
    gtx, h200 = hardware.load("gtx1080ti"), hardware.load("h200")
    assert (gtx.units, gtx.dtype, gtx.levels[0].bandwidth) == (28, "fp32", 484e9)
    assert gtx.part.tiles and all(t.k == 8 for t in gtx.part.tiles)      # SIMT tiles: no tensor cores on Pascal
    assert (h200.units, h200.levels[0].bandwidth, h200.level("l2").size_bytes) == (132, 4.8e12, 50 * 2**20)
    assert h200.levels[0].size_bytes >= 141e9


def test_a_measured_sustained_rate_times_the_traffic_and_the_peak_stays_the_spec():
    """The 1080 Ti's DRAM: 484 GB/s on the spec sheet, 360 GB/s reached by a copy (measured by others); the
    traffic of a layer backed by DRAM is timed at the latter. A level without one is timed at its peak."""
    from sparsesim.workload import Geometry, dense_work, synthetic, traffic
    gtx = hardware.load("gtx1080ti")
    assert (gtx.levels[0].bandwidth, gtx.levels[0].sustained, gtx.levels[0].rate) == (484e9, 360e9, 360e9)
    geo = Geometry.from_layers(synthetic.shape_layers(["64,64,3,1,1,256,256"]))   # 16 MB a map: beyond the L2
    moved = traffic(geo, gtx, dense_work(geo))
    assert (moved.backing == 0).all() and (moved.bandwidth == 360e9).all()
    h100 = hardware.load("h100")
    assert h100.levels[0].sustained == 0 and h100.levels[0].rate == h100.levels[0].bandwidth


def test_energy_tables_disagree_as_the_literature_does():
    ratio = lambda t: hardware.energy_table(t).access_pj_per_bit["dram"] * 16 / hardware.energy_table(t).mac("int16")  # noqa: E731
    assert round(ratio("sze-normalized")) == 200 and round(ratio("accelergy-45nm")) == 58


GOOD = Path(hardware.models_dir() / "gemmini.yaml").read_text()


@pytest.mark.parametrize("edit,needles", [
    (lambda s: s.replace("kind: systolic", "kind: fpga"), ["key 'kind'", "one of gpu, cpu, systolic, spatial", "'fpga'"]),
    (lambda s: s.replace("units: 256 ", "units: many "), ["key 'units'", "expected a int", "'many'"]),
    (lambda s: s.replace("  rows: 16 ", "  rowz: 16 "), ["key 'array.rows'", "missing"]),
    (lambda s: s.replace("bandwidth_gbps: 16     # assumption", "bandwidth_gbps: -1     # x"), ["memory[0].bandwidth_gbps", "positive"]),
    (lambda s: s.replace("dtype: int8", "dtype: int4"), ["key 'dtype'", "one of"]),
    (lambda s: s.replace("    kind: dram", "    kind: dram\n   oops: [", 1), ["is not valid YAML"]),
    (lambda s: "just a string", ["(top level)", "a mapping"]),
])
def test_malformed_file_names_file_key_and_expectation(tmp_path, edit, needles, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(edit(GOOD))
    with pytest.raises(HardwareError) as err:
        hardware.parse_hardware(path)
    assert str(path) in str(err.value)
    for needle in needles:
        assert needle in str(err.value)
    assert main(["hw", "show", str(path)]) == 2
    err_text = capsys.readouterr().err
    assert len(err_text.strip().splitlines()) == 1 and "Traceback" not in err_text


def test_unknown_hardware_lists_the_known_ones():
    with pytest.raises(HardwareError, match="unknown hardware 'tpu9'; known: a100, cpu"):
        hardware.load("tpu9")


def test_hw_cli_lists_and_shows(capsys):
    assert main(["hw", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("h100", "eyeriss", "tpu-v1"))
    assert main(["hw", "show", "eyeriss"]) == 0
    out = capsys.readouterr().out
    assert "row-stationary" in out and "sze-normalized" in out and "200x" in out.replace("2e+02x", "200x")
