"""Timeloop interop against the public exercise fixtures (copied into tests/data/timeloop-reference)."""
from __future__ import annotations

from pathlib import Path

import pytest

from sparsesim.errors import SparsesimError
from sparsesim.interop.timeloop import parse_stats

REFERENCE = Path(__file__).resolve().parent / "data" / "timeloop-reference"  # copies of the shared fixtures
DENSE_STATS = REFERENCE / "vgg02-layer5-dense.stats.txt"
GATING_STATS = REFERENCE / "alexnet-layer3-gating.stats.txt"


def test_dense_stats_parse_to_the_readme_figures():
    s = parse_stats(DENSE_STATS)
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
    s = parse_stats(GATING_STATS)
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


def vgg02_layer5():
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
    from sparsesim.workload import Geometry
    from sparsesim.cost.latency import latency
    from sparsesim.cost.energy import energy
    from sparsesim.workload import dense_work
    reference = parse_stats(DENSE_STATS)
    hw = hardware.load("eyeriss-timeloop")
    geo = Geometry.from_layers(vgg02_layer5())
    cycles = latency(geo, hw, dense_work(geo))["latency_s"].item() * hw.clock_hz
    pj = energy(geo, hw, hardware.energy_table(hw.energy_table), dense_work(geo))
    assert cycles == pytest.approx(reference.cycles, rel=0.05)
    assert pj["energy_pj"].item() == pytest.approx(reference.energy_pj, rel=0.15)
    assert pj["e_mac"].item() == pytest.approx(reference.level("mac").energy_pj, rel=1e-6)


@pytest.fixture(scope="module")
def rife_trace():
    return Path(__file__).resolve().parents[1] / "traces" / "carphone_pristine-rife-input-norm-e0.01"


@pytest.mark.parametrize("hw", ["eyeriss-timeloop", "eyeriss", "tpu-v1"])
def test_export_round_trips_with_the_measured_densities(tmp_path, rife_trace, hw, capsys):
    import yaml

    from sparsesim import trace, workload
    from sparsesim.cli import main
    from sparsesim.hardware.timeloop import components
    from sparsesim.interop.timeloop.export import densities, read_problem
    assert main(["export", "timeloop", str(rife_trace), "--hw", hw, "--block", "8", "--frames", "20",
                 "--layers", "block3.convblock.0.0,block0.conv0.0.0,block3.lastconv", "-o", str(tmp_path)]) == 0
    wl = workload.from_trace(trace.open(rife_trace), [8], 20)
    index = {name: i for i, name in enumerate(wl.layers["name"])}
    for name in ("block3.convblock.0.0", "block0.conv0.0.0"):
        layer = wl.layers.iloc[index[name]]
        for suffix in ("problem.yaml", "problem.v0.4.yaml"):
            instance, dens = read_problem(tmp_path / f"{name}.{suffix}")
            assert (instance["C"], instance["M"], instance["P"], instance["Q"]) == \
                (layer.in_channels, layer.out_channels, layer.out_w, layer.out_h)
            expected = densities(wl, index[name], 0)
            assert dens["Outputs"] == pytest.approx(expected["Outputs"].mean, abs=1e-6)
            active = wl.active_pixels[index[name], :, 0] / (layer.out_h * layer.out_w)
            assert dens["Outputs"] == pytest.approx(active.mean(), abs=1e-6)   # the trace's own density
    assert not (tmp_path / "block3.lastconv.problem.yaml").exists()           # transposed: not exported
    v03 = yaml.safe_load((tmp_path / "block3.convblock.0.0.problem.yaml").read_text())["problem"]
    assert v03["shape"]["dimensions"] == ["C", "M", "R", "S", "N", "P", "Q"]
    assert {d["name"] for d in v03["shape"]["data-spaces"]} == {"Weights", "Inputs", "Outputs"}
    assert "per-frame spread" in (tmp_path / "block3.convblock.0.0.problem.yaml").read_text().splitlines()[0]
    layer_opt = (tmp_path / "block3.convblock.0.0.sparse_optimizations.yaml").read_text()
    assert "Outputs fixed-structured" in layer_opt and "per-frame spread" in layer_opt
    sparse = yaml.safe_load((tmp_path / "sparse_optimizations.yaml").read_text())
    assert sparse["sparse_optimizations"]["targets"][0]["action-optimization"][0]["type"] == "skipping"
    comps = components(tmp_path / "architecture.yaml")                         # our own reader takes it back
    macs = [c for c in comps if "mac" in c.cls]
    from sparsesim import hardware
    assert macs and macs[0].instances == hardware.load(hw).units


def test_engine_timeloop_says_how_to_install(tmp_path, rife_trace, capsys, monkeypatch):
    from sparsesim.cli import main
    from sparsesim.interop.timeloop import run
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(run, "venv_bin", lambda: tmp_path / "not-built")   # as on a machine without `make timeloop`
    assert main(["estimate", str(rife_trace), "--hw", "eyeriss-timeloop", "--block", "8", "--frames", "3",
                 "--engine", "timeloop"]) == 2
    err = capsys.readouterr().err
    assert "Timeloop is not installed" in err and len(err.strip().splitlines()) == 1


def test_engine_timeloop_runs_the_mapper_and_reports_beside(tmp_path, rife_trace, capsys, monkeypatch):
    """A stand-in timeloop-mapper on PATH (it writes the reference stats): sparsesim runs it per layer
    with the exported files and reads its result."""
    import os
    import pandas as pd
    from sparsesim.cli import main
    from sparsesim.interop.timeloop import run
    monkeypatch.setattr(run, "venv_bin", lambda: tmp_path / "not-built")   # the stand-in on PATH, not a built one
    fake = tmp_path / "bin" / "timeloop-mapper"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nfor f in \"$@\"; do test -f \"$f\" || exit 3; done\n"
                    f"cp {DENSE_STATS} timeloop-mapper.stats.txt\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    out = tmp_path / "est.parquet"
    assert main(["estimate", str(rife_trace), "--hw", "eyeriss-timeloop", "--block", "8", "--frames", "3",
                 "--engine", "timeloop", "-o", str(out)]) == 0
    table = pd.read_parquet(tmp_path / "est.timeloop.parquet")
    assert (table["timeloop_cycles"] == 5_505_024).all() and len(table) == 40  # RIFE's Conv2d layers
    assert (table["sparsesim_cycles"] > 0).all()


def alexnet_layer3_batch4():
    """AlexNet layer 3 (C=256, M=384, 3x3, 13x13) with N=4: the four images stacked along the height,
    so that weights are shared across the batch as in Timeloop's loop nest."""
    import pandas as pd
    return pd.DataFrame([dict(id=0, name="alexnet_layer3", op="conv2d", in_channels=256, out_channels=384, kernel_h=3,
                              kernel_w=3, stride_h=1, stride_w=1, padding_h=1, padding_w=1, dilation_h=1, dilation_w=1,
                              groups=1, in_h=4 * 13, in_w=13, out_h=4 * 13, out_w=13,
                              dense_macs=4 * 13 * 13 * 384 * 256 * 9, weight_bytes=(384 * 256 * 9 + 384) * 2)])


def test_sparseloop_gating_example_agrees():
    from sparsesim import hardware
    from sparsesim.cost.elementwise import DataSpaceSparsity, elementwise_costs
    from sparsesim.workload import Geometry
    reference = parse_stats(GATING_STATS)
    hw = hardware.load("eyeriss-sparseloop")
    table = hardware.energy_table(hw.energy_table)
    geo = Geometry.from_layers(alexnet_layer3_batch4())
    gated = elementwise_costs(geo, hw, table, DataSpaceSparsity(inputs=0.275, weights=0.346133, outputs=0.303))
    assert gated["macs_actual"].item() == pytest.approx(reference.actual_computes, rel=1e-3)
    assert gated["cycles"].item() == pytest.approx(reference.cycles, rel=0.10)
    assert gated["energy_pj"].item() == pytest.approx(reference.energy_pj, rel=0.20)
    dense = elementwise_costs(geo, hw, table, DataSpaceSparsity())
    assert dense["cycles"].item() == pytest.approx(3_833_856, rel=0.05)            # README: dense, same mapping
    assert dense["energy_pj"].item() == pytest.approx(5.71 * 598_081_536, rel=0.15)
