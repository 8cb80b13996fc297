"""Timeloop interop against the public exercise fixtures in ../shared/timeloop-reference."""
from __future__ import annotations

from pathlib import Path

import pytest

from sparsesim.errors import SparsesimError
from sparsesim.timeloop import parse_stats

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "timeloop-reference"
DENSE = REFERENCE / "eyeriss-vgg02-layer5-dense"
GATING = REFERENCE / "eyeriss-alexnet-layer3-gating"


def test_dense_stats_parse_to_the_readme_figures():
    s = parse_stats(DENSE / "ref-output" / "timeloop-mapper.stats.txt")
    assert s.cycles == 5_505_024 and s.utilization == 1.0
    assert s.algorithmic_computes == s.actual_computes == 924_844_032
    assert s.energy_pj / s.algorithmic_computes == pytest.approx(5.82, abs=0.01)  # "about 5.8 pJ per MAC"
    assert sum(lv.energy_pj for lv in s.levels) == pytest.approx(s.energy_pj, rel=1e-5)
    assert s.level("mac").instances == 168 and s.level("shared_glb").instances == 1
    assert s.level("DRAM").accesses("Weights") == 1_179_648
    table = s.to_frame()
    assert set(table["level"]) >= {"mac", "psum_spad", "weights_spad", "ifmap_spad", "shared_glb", "DRAM"}
    assert table["energy_pj"].sum() == pytest.approx(s.energy_pj, rel=1e-5)


def test_gating_stats_parse_to_the_readme_figures():
    s = parse_stats(GATING / "ref-output" / "timeloop-model.stats.txt")
    assert s.cycles == 1_916_929 and s.utilization == 0.51
    assert s.algorithmic_computes == 598_081_536 and s.actual_computes == 164_472_423
    assert s.energy_pj / s.algorithmic_computes == pytest.approx(3.36, abs=0.01)
    assert s.level("MACs").cycles == 1_054_311
    weights = s.level("weights_spad")
    assert weights.accesses("Weights", "actual") < weights.accesses("Weights", "algorithmic")  # gated reads


def test_not_a_stats_file(tmp_path):
    (tmp_path / "x.txt").write_text("hello\n")
    with pytest.raises(SparsesimError, match="not a Timeloop stats file"):
        parse_stats(tmp_path / "x.txt")
    with pytest.raises(SparsesimError, match="not found"):
        parse_stats(tmp_path / "missing.txt")


def vgg02_layer5() -> "pd.DataFrame":
    import pandas as pd
    return pd.DataFrame([dict(id=0, name="vgg02_layer5", op="conv2d", in_channels=128, out_channels=256, kernel_h=3,
                              kernel_w=3, stride_h=1, stride_w=1, padding_h=1, padding_w=1, dilation_h=1, dilation_w=1,
                              groups=1, in_h=56, in_w=56, out_h=56, out_w=56, dense_macs=56 * 56 * 256 * 128 * 9,
                              weight_bytes=(256 * 128 * 9 + 256) * 2)])


def test_imported_eyeriss_matches_the_architecture_and_ert():
    from sparsesim import hardware
    hw = hardware.load("eyeriss-timeloop")
    table = hardware.energy_table(hw.energy_table)
    assert (hw.units, hw.rows, hw.cols, hw.dtype) == (168, 12, 14, "int16")
    assert [lv.kind for lv in hw.levels] == ["dram", "buffer", "noc", "rf"]
    assert hw.level("buffer").size_bytes == 16384 * 64 / 8
    assert table.mac("int16") == 2.2
    assert table.per_bit("dram", "inputs") * 64 == 512          # one 4-word DRAM block
    assert table.per_bit("rf", "weights") * 16 == pytest.approx(1.586)
    assert "eyeriss-timeloop" in hardware.names()


def test_dense_vgg02_layer5_agrees_with_timeloop():
    from sparsesim import hardware
    from sparsesim.cost.geometry import Geometry
    from sparsesim.cost.latency import latency
    from sparsesim.cost.traffic import dense_work, energy
    reference = parse_stats(DENSE / "ref-output" / "timeloop-mapper.stats.txt")
    hw = hardware.load("eyeriss-timeloop")
    geo = Geometry.from_layers(vgg02_layer5())
    cycles = latency(geo, hw, dense_work(geo))["latency_s"].item() * hw.clock_hz
    pj = energy(geo, hw, hardware.energy_table(hw.energy_table), dense_work(geo))
    assert cycles == pytest.approx(reference.cycles, rel=0.05)
    assert pj["energy_pj"].item() == pytest.approx(reference.energy_pj, rel=0.15)
    assert pj["e_mac"].item() == pytest.approx(reference.level("mac").energy_pj, rel=1e-6)
