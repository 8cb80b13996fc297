"""sparsesim beside real Timeloop v3.0.3: the cached runs of benchmarks/timeloop_crosscheck.py (read in
every CI run), and the real binaries on one layer where `make timeloop` has built them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sparsesim import hardware
from sparsesim.cost.mapper import Sparsity, best_mapping, evaluate_mapping, loop_arch
from sparsesim.cost.mapspace import Problem
from sparsesim.interop.timeloop.export import sparse_optimizations
from sparsesim.interop.timeloop.mapping import read_map_txt
from sparsesim.interop.timeloop.run import venv_bin

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import timeloop_crosscheck as cc  # noqa: E402

DENSE = sorted((cc.CACHE / "dense").glob("*.json"))
GATING = sorted((cc.CACHE / "gating").glob("*.json"))
BUILT = (venv_bin() / "timeloop-model").exists() and (venv_bin() / "timeloop-mapper").exists()
LEVELS = cc.LEVELS


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_every_layer_has_a_cached_timeloop_run():
    cases = {cc.case_id(p) for p in cc.dense_cases()}
    assert {p.stem for p in DENSE} == cases and len(cases) >= 35
    layers = {f"{model}.{name}" for model, name, _, _ in cc.trace_layers()}
    assert {p.stem for p in GATING} == layers and len(layers) >= 60
    for path in DENSE[:3] + GATING[:3]:
        data = _load(path)
        assert data["timeloop"] == "3.0.3" and "timeloop-model" in data["model_on_sparsesim_mapping"]["command"]


@pytest.mark.parametrize("path", DENSE, ids=[p.stem for p in DENSE])
def test_nest_analysis_reproduces_timeloop_on_both_mappings(path):
    """sparsesim's counts on Timeloop's own mapping, and Timeloop's model on sparsesim's mapping: the
    same cycles, energy and accesses level by level (a model check, free of either search)."""
    data = _load(path)
    hw = hardware.load(cc.DENSE_HW)
    p = Problem(**data["problem"])
    for factors, theirs in ((read_map_txt(data["mapper"]["map"], loop_arch(hw)), data["mapper"]),
                            (np.array(data["sparsesim_mapping"]), data["model_on_sparsesim_mapping"])):
        mine = evaluate_mapping(hw, p, factors)
        assert mine.cycles == theirs["cycles"]
        assert mine.energy_pj == pytest.approx(cc.energy_pj(theirs), rel=1e-5)
        for lv in LEVELS:
            assert mine.level(lv).energy_pj == pytest.approx(theirs["levels"][lv]["energy_pj"], rel=1e-4, abs=1.0)
            for space in ("Weights", "Inputs", "Outputs"):
                assert mine.level(lv).accesses(space) == pytest.approx(theirs["levels"][lv].get(space, 0.0), rel=1e-9)


@pytest.mark.parametrize("path", GATING, ids=[p.stem for p in GATING])
def test_gating_energy_agrees_with_sparseloop(path):
    """Sparseloop's gating and compression at a trace layer's measured densities, on sparsesim's mapping."""
    data = _load(path)
    hw = hardware.load(cc.SPARSE_HW)
    sparsity = Sparsity.from_optimizations(sparse_optimizations(hw), loop_arch(hw), data["densities"])
    assert sparsity.gate_weights_on_inputs == "weights_spad" and sparsity.compressed == ("Inputs", "Outputs")
    mine = evaluate_mapping(hw, Problem(**data["problem"]), np.array(data["sparsesim_mapping"]), sparsity)
    theirs = data["model_on_sparsesim_mapping"]
    assert mine.energy_pj == pytest.approx(cc.energy_pj(theirs), rel=0.15)
    assert mine.level("weights_spad").energy_pj == pytest.approx(theirs["levels"]["weights_spad"]["energy_pj"], rel=0.15)


def _mapper_rows(paths):
    return [cc.dense_row(_load(p)) for p in paths]


def _check_against_mapper(rows):
    for r in rows:
        # sparsesim visits every mapping Timeloop's random search samples from: never slower, and never
        # more energy at the same cycles
        assert r["sparsesim_cycles"] <= r["timeloop_cycles"]
        if r["sparsesim_cycles"] == r["timeloop_cycles"]:
            assert r["sparsesim_energy_uj"] <= r["timeloop_energy_uj"] * (1 + 1e-6)
    within = [abs(r["cycles_err"]) <= 0.05 and abs(r["energy_err"]) <= 0.10 for r in rows]
    return sum(within) / len(within)


def test_mapper_agrees_with_timeloops_mapper_on_small_layers():
    small = [p for p in DENSE if "P12Q10" in p.stem or "C3-M10" in p.stem or "R1S1-P7Q7" in p.stem]
    assert len(small) >= 2
    _check_against_mapper(_mapper_rows(small))


def test_mapper_finds_the_optimum_of_timeloops_exhaustive_search():
    """Where Timeloop searched its whole mapspace (`--exhaustive`), sparsesim's mapper finds the same
    cycles and energy: the same space, the same model, the same order of metrics."""
    searched = [p for p in DENSE if "exhaustive" in _load(p)]
    assert len(searched) >= 3
    hw = hardware.load(cc.DENSE_HW)
    for path in searched:
        data = _load(path)
        mine = best_mapping(hw, Problem(**data["problem"]))
        assert mine.cycles == data["exhaustive"]["cycles"]
        assert mine.energy_pj == pytest.approx(cc.energy_pj(data["exhaustive"]), rel=1e-5)
        assert cc.energy_pj(data["exhaustive"]) <= cc.energy_pj(data["mapper"])


@pytest.mark.slow
def test_mapper_agrees_with_timeloops_mapper_on_90_percent_of_layers():
    assert _check_against_mapper(_mapper_rows(DENSE)) >= 0.90


def test_exported_files_were_accepted_by_timeloop():
    table = json.loads((cc.CACHE / "accept.json").read_text())["runs"]
    assert {r["hw"] for r in table} == set(cc.ACCEPT_HW)
    assert len(table) >= 140 and all(r["accepted"] for r in table), [r["error"] for r in table if not r["accepted"]]


@pytest.mark.slow
@pytest.mark.skipif(not BUILT, reason="Timeloop is not built (`make timeloop`); the cached runs are checked above")
def test_real_timeloop_on_one_layer(tmp_path):
    """The real binaries, now: sparsesim's export accepted, and sparsesim beside timeloop-mapper and
    timeloop-model on MTCNN P-Net's last conv."""
    rows = cc.accept_one("eyeriss-timeloop", cc.TRACES["mtcnn-pnet"], ["conv4_1"])
    assert len(rows) == 1 and rows[0]["accepted"], rows
    hw = hardware.load(cc.DENSE_HW)
    p = Problem(C=16, M=32, R=3, S=3, N=1, P=12, Q=10)
    data = cc.run_dense(p, ["test"])
    mine = best_mapping(hw, p)
    assert mine.cycles <= data["mapper"]["cycles"]
    assert mine.energy_pj == pytest.approx(cc.energy_pj(data["mapper"]), rel=0.10)
    assert evaluate_mapping(hw, p, mine.factors).energy_pj == \
        pytest.approx(cc.energy_pj(data["model_on_sparsesim_mapping"]), rel=1e-5)
