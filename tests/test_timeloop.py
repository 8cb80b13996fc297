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
