"""sparsesim's mapper on the Eyeriss-like arrays of the Timeloop exercises: the mapspace it searches,
its nest analysis on the exercises' own mappings, and its errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from sparsesim import hardware
from sparsesim.cost.mapper import Sparsity, best_mapping, evaluate_mapping, loop_arch
from sparsesim.cost.mapspace import SP, T, Problem, enumerate_mappings, inner_extents, tile_words
from sparsesim.errors import SparsesimError
from sparsesim.interop.timeloop import parse_stats
from sparsesim.interop.timeloop.mapping import mapping_v03, read_mapping

MODELS = Path(__file__).resolve().parents[1] / "accel_models"
GATING = Path(__file__).resolve().parent / "data" / "timeloop-reference" / "alexnet-layer3-gating.stats.txt"
ALEXNET3 = Problem(C=256, M=384, R=3, S=3, N=4, P=13, Q=13)     # the Sparseloop exercise's layer, batch 4
EXERCISE_MAPPING = """mapping:
- {target: DRAM, type: temporal, factors: R=1 S=1 P=1 C=64 M=6 N=1 Q=1, permutation: RSPCMNQ}
- {target: shared_glb, type: spatial, factors: N=1 C=1 P=1 R=1 S=1 Q=0 M=1, permutation: NCPRSQM, split: 7}
- {target: shared_glb, type: temporal, factors: Q=1 R=1 S=1 P=0 C=1 N=4 M=1, permutation: QRSCPNM}
- {target: DummyBuffer, type: spatial, factors: N=1 P=1 Q=1 R=1 S=0 C=1 M=4, permutation: NPQRSCM, split: 4}
- {target: weights_spad, type: temporal, factors: N=1 M=1 P=1 Q=1 S=1 R=0 C=4, permutation: NMPQSCR}
- {target: psum_spad, type: temporal, factors: N=1 C=1 R=1 S=1 P=1 Q=1 M=16, permutation: NCPQRSM}
"""   # the exercise's mapping/layer3.yaml, its bypass entries left out (the constraints state them)


def test_every_candidate_is_a_valid_mapping():
    hw = hardware.load("eyeriss-timeloop")
    arch, p = loop_arch(hw), Problem(C=64, M=96, R=3, S=3, N=1, P=24, Q=20, Wstride=2, Hstride=2)
    f = enumerate_mappings(arch, p)
    assert len(f) > 100
    assert (np.prod(f, axis=(1, 2)) == p.sizes()).all()                       # a factorisation of each dim
    glb, dummy = arch.store("shared_glb"), arch.store("DummyBuffer")
    i_glb, i_dummy = arch.stores.index(glb), arch.stores.index(dummy)
    assert (np.prod(f[:, i_glb, SP], axis=1) <= glb.fanout_x).all()            # 14 columns
    assert (np.prod(f[:, i_dummy, SP], axis=1) <= dummy.fanout_y).all()        # 12 rows
    ext = inner_extents(f)
    for i, store in enumerate(arch.stores):
        if np.isfinite(store.words) and store.keeps:
            assert (sum(tile_words(ext[:, i], s, p) for s in store.keeps) <= store.words).all()
    assert (f[:, arch.stores.index(arch.store("weights_spad")), T, 2] == 3).all()   # R=0: the whole R in the PE


def test_the_best_mapping_round_trips_through_timeloops_mapping_format():
    hw = hardware.load("eyeriss-timeloop")
    p = Problem(C=7, M=96, R=3, S=3, N=1, P=12, Q=10, Wstride=2, Hstride=2)
    m = best_mapping(hw, p)
    data = yaml.safe_load(yaml.safe_dump(mapping_v03(loop_arch(hw), m.factors)))
    assert (read_mapping(data, loop_arch(hw), p.sizes()) == m.factors).all()
    assert m.cycles == m.compute_cycles and 0 < m.utilization <= 1
    assert m.energy_pj == pytest.approx(m.mac_energy_pj + sum(lv.energy_pj for lv in m.levels))
    assert m.cycles <= min(evaluate_mapping(hw, p, f).cycles for f in enumerate_mappings(loop_arch(hw), p)[:50])


def test_sparseloop_gating_exercise_on_its_own_mapping():
    """The exercise's mapping, gating and compression: sparsesim's counts against Sparseloop's output."""
    hw = hardware.load("eyeriss-sparseloop")
    f = read_mapping(yaml.safe_load(EXERCISE_MAPPING), loop_arch(hw), ALEXNET3.sizes())
    opt = yaml.safe_load((MODELS / "timeloop" / "eyeriss_sparseloop" / "sparse_opt.yaml").read_text())
    sparsity = Sparsity.from_optimizations(opt, loop_arch(hw), {"Inputs": 0.275, "Weights": 0.346133, "Outputs": 0.303})
    ref = parse_stats(GATING)
    gated = evaluate_mapping(hw, ALEXNET3, f, sparsity)
    assert gated.macs == pytest.approx(ref.actual_computes, abs=1)
    assert gated.cycles == pytest.approx(ref.cycles, abs=1)                      # weights_spad bandwidth bound
    assert gated.energy_pj == pytest.approx(ref.energy_pj, rel=0.005)
    for name in ("DRAM", "shared_glb", "ifmap_spad", "weights_spad", "psum_spad"):
        assert gated.level(name).energy_pj == pytest.approx(ref.level(name).energy_pj, rel=0.01)
    dense = evaluate_mapping(hw, ALEXNET3, f)
    assert dense.cycles == 3_833_856                                             # README: dense, same mapping
    assert dense.energy_pj / ALEXNET3.macs == pytest.approx(5.71, abs=0.01)


def test_what_the_mapper_cannot_map_or_price():
    hw = hardware.load("eyeriss-timeloop")
    with pytest.raises(SparsesimError, match="no mapping"):
        best_mapping(hw, Problem(C=3, M=8, R=3, S=13, N=1, P=8, Q=8))          # 13 filter rows > 12 PE rows
    with pytest.raises(SparsesimError, match="maps onto arrays"):
        loop_arch(hardware.load("h100"))
    with pytest.raises(SparsesimError, match="states no mapping constraints"):
        loop_arch(hardware.load("eyeriss"))
    skipping = {"sparse_optimizations": {"targets": [{"name": "weights_spad", "action-optimization": [
        {"type": "skipping", "options": [{"target": "Weights", "condition-on": ["Inputs"]}]}]}]}}
    with pytest.raises(SparsesimError, match="gating of Weights on Inputs only"):
        Sparsity.from_optimizations(skipping, loop_arch(hw), {})
