"""The structure's promises: hardware kinds are a registry (a new one works end to end without touching
sparsesim), one energy pricer serves the cost model and the simulators, systolic arrays simulate the
dataflow their YAML names, the shared physics is right, and commands that run no model stay light."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsesim import hardware
from sparsesim.cli import main
from sparsesim.cost.energy import ENERGY_TYPES, accesses, energy
from sparsesim.cost.latency import latency
from sparsesim.errors import OptionError
from sparsesim.hardware import Access, kinds, price
from sparsesim.hardware.kinds import Kind
from sparsesim.sim import SystolicConfig, Gemm, simulate_gemm, simulate_layer
from sparsesim.sim.systolic import Conv
from sparsesim.sim.layer import SimResult, sim_energy, systolic_config
from sparsesim.workload import (Geometry, block_map, dense_work, input_coverage, inner_accesses, sparse_work,
                                traffic)
from test_cost import conv_layer

GEMMINI = (hardware.models_dir() / "gemmini.yaml").read_text()


# -- a kind added from outside sparsesim ---------------------------------------------------------

@dataclass(frozen=True)
class ToyPart:
    macs_per_cycle: float


class Toy(Kind):
    """A made-up accelerator: a fixed MAC rate, no parallelism limits, fused kernels, no simulator."""
    name, section, fused = "toy", "toy", True

    def parse(self, r) -> ToyPart:
        return ToyPart(r.sub(self.section).get("macs_per_cycle", float, positive=True))

    def latency_steps(self, geo, hw, w, block):
        rate = hw.part.macs_per_cycle * hw.clock_hz
        t = w.macs / rate
        return [w.macs / hw.peak_macs_per_s, t, t, t]

    def describe(self, hw) -> str:
        return f"{hw.part.macs_per_cycle:g} MACs per cycle"


@pytest.fixture
def toy_kind():
    kinds.register(Toy())
    yield
    kinds.unregister("toy")


def toy_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "toy.yaml"
    path.write_text("""
name: toy
kind: toy
clock_ghz: 1.0             # made up
dtype: int8
units: 64                  # made up
peak_tflops: {int8: 0.128} # made up
memory:
  - {name: dram, kind: dram, size_kib: 1048576, bandwidth_gbps: 1000}   # made up
  - {name: sram, kind: buffer, size_kib: 64, bandwidth_gbps: 1000}      # made up
tiling: {dataflow: weight-stationary, tile_m: 0, tile_n: 8, reuse_m: 0, reuse_n: 8}
toy: {macs_per_cycle: 32}  # made up: half the peak
energy_table: horowitz-45nm
""")
    return path


def test_a_kind_registered_by_a_test_module_runs_end_to_end(toy_kind, tmp_path, small_trace, capsys):
    path = toy_yaml(tmp_path)
    hw = hardware.load(str(path))
    assert hw.kind == "toy" and hw.part == ToyPart(32.0)
    out = tmp_path / "est.parquet"
    assert main(["estimate", str(small_trace), "--hw", str(path), "--block", "2,4", "-o", str(out)]) == 0
    rows = pd.read_parquet(out)
    assert set(rows["hw"]) == {"toy"} and len(rows) > 0
    # its steps: half the peak rate, so t_parallel = 2 x t_peak wherever anything runs
    busy = rows[rows["macs"] > 0]
    np.testing.assert_allclose(busy["t_parallel"], 2 * busy["t_peak"], rtol=1e-12)
    assert (rows["latency_s"] >= rows["t_occupancy"]).all()
    assert main(["hw", "show", str(path)]) == 0
    assert "32 MACs per cycle" in capsys.readouterr().out
    # a kind without a simulator is refused by `simulate` in one line
    assert main(["simulate", str(small_trace), "--hw", str(path)]) == 2
    err = capsys.readouterr().err
    assert "toy" in err and "simulator covers gpu, systolic, spatial" in err and len(err.strip().splitlines()) == 1


def test_an_unknown_kind_names_the_known_ones(tmp_path, small_trace, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(GEMMINI.replace("kind: systolic", "kind: npu"))
    assert main(["estimate", str(small_trace), "--hw", str(path)]) == 2
    err = capsys.readouterr().err
    assert "one of gpu, cpu, systolic, spatial" in err and "'npu'" in err and len(err.strip().splitlines()) == 1


def test_a_kinds_own_fields_are_not_on_other_kinds():
    gpu, array = hardware.load("h100"), hardware.load("gemmini")
    assert array.rows == 16 and gpu.launch_s > 0
    with pytest.raises(AttributeError, match="gpu hardware 'h100' has no field 'rows'"):
        gpu.rows  # noqa: B018
    with pytest.raises(AttributeError, match="systolic hardware 'gemmini' has no field 'launch_s'"):
        array.launch_s  # noqa: B018


# -- one energy pricer ----------------------------------------------------------------------------

def test_the_pricer_honours_bypass_and_scales():
    hw = hardware.load("eyeriss-sparseloop")
    table = hardware.energy_table(hw.energy_table)
    buffer = next(i for i, lv in enumerate(hw.levels) if lv.kind == "buffer")
    macs = np.ones(1)
    bypassed = [t for t in ("weights", "inputs", "outputs") if hw.tiling.bypasses("buffer", t)]
    assert bypassed, "the Sparseloop example bypasses the global buffer for some data type"
    out = price(hw, table, [Access(buffer, bypassed[0], np.full(1, 1e6))], macs, ENERGY_TYPES)
    assert out["e_buffer"][0] == 0 and out["energy_pj"][0] == out["e_mac"][0]
    kept = next(t for t in ("weights", "inputs", "outputs") if t not in bypassed)
    out = price(hw, table, [Access(buffer, kept, np.full(1, 1e6))], macs, ENERGY_TYPES, {("buffer", kept): 0.5})
    assert out["e_buffer"][0] == pytest.approx(0.5e6 * table.per_bit("buffer", kept))


@pytest.mark.parametrize("hw_name", ["gemmini", "eyeriss", "h100"])
def test_cost_model_and_simulator_price_the_same_accesses_alike(hw_name):
    """A simulator that counted exactly the cost model's accesses gets exactly its energy: the kernel's
    traffic and the overheads at the backing level, the buffer (operand reads, and the fills of a layer
    backed further out: a GPU's L2 behind shared memory), interconnect and register file."""
    hw = hardware.load(hw_name)
    table = hardware.energy_table(hw.energy_table)
    layer = pd.Series(conv_layer(cin=16, cout=32, h=16, w=16))       # small: it lives in the on-chip buffer
    geo = Geometry.from_layers(pd.DataFrame([layer]))
    mask = np.random.default_rng(0).random((3, 16, 16)) < 0.1
    maps = block_map(mask, 4)
    n = maps.reshape(3, -1).sum(axis=1).astype(float).reshape(1, -1, 1)
    work = sparse_work(geo, np.array(4.0).reshape(1, 1, 1), n, n * 16, np.full((1, 1, 1), 16.0))
    moved = traffic(geo, hw, work)
    index = int(moved.backing.reshape(-1)[0])
    buffer = next(i for i, lv in enumerate(hw.levels) if lv.kind == "buffer")
    flat = lambda a: np.broadcast_to(a, work.macs.shape).reshape(-1)  # noqa: E731
    inner = inner_accesses(geo, hw, work)
    fills = {t: moved.layer[t] * (index < buffer) for t in inner["buffer"]}
    sim = SimResult(seconds=np.ones(3), stalls={}, backing_level=hw.levels[index].kind,
                    backing_words={t: flat(v) for t, v in moved.kernel.items()},
                    buffer_words={t: flat(v + fills[t]) for t, v in inner["buffer"].items()})
    analytical = energy(geo, hw, table, work, moved=moved, seconds=sim.seconds.reshape(work.macs.shape))["energy_pj"].reshape(-1)  # same time
    np.testing.assert_allclose(sim_energy(geo, hw, table, work, sim), analytical, rtol=1e-12)
    assert len(accesses(geo, hw, work, moved)) > 0


# -- systolic dataflows from the YAML ------------------------------------------------------------

@pytest.mark.parametrize("dataflow,code", [("output-stationary", "os"), ("input-stationary", "is"),
                                           ("weight-stationary", "ws")])
def test_simulate_runs_the_dataflow_the_yaml_names(tmp_path, dataflow, code):
    path = tmp_path / f"gemmini-{code}.yaml"
    path.write_text(GEMMINI.replace("dataflow: weight-stationary", f"dataflow: {dataflow}"))
    hw = hardware.load(str(path))
    cfg = systolic_config(hw, 1)
    assert cfg.dataflow == code
    layer = pd.Series(conv_layer(cin=32, cout=48, k=1, pad=0, h=16, w=16))
    rows = simulate_layer(layer, np.ones((1, 16, 16), bool), hw, hardware.energy_table(hw.energy_table), 4, "dynamic")
    own = simulate_gemm(Gemm(256, 32, 48, ifmap_unique=256 * 32, conv=Conv(16, 16, 1, 1, 32, 1)), cfg)
    assert rows["sim_dense_s"].iloc[0] == pytest.approx(own.overall_cycles / hw.clock_hz)
    # the analytical model folds the same way: compute cycles of a dense layer agree exactly
    geo = Geometry.from_layers(pd.DataFrame([layer]))
    t_util = latency(geo, hw, dense_work(geo))["t_util"].item() * hw.clock_hz
    ample = SystolicConfig(16, 16, code, sram_words=(1 << 30,) * 3, bandwidth=(1e6,) * 3, preload_overlap=True)
    assert simulate_gemm(Gemm(256, 32, 48), ample).compute_cycles == pytest.approx(t_util)


def test_output_stationary_and_weight_stationary_differ_where_they_should(tmp_path):
    cycles = {}
    for dataflow in ("weight-stationary", "output-stationary"):
        path = tmp_path / f"{dataflow}.yaml"
        path.write_text(GEMMINI.replace("dataflow: weight-stationary", f"dataflow: {dataflow}"))
        hw = hardware.load(str(path))
        geo = Geometry.from_layers(pd.DataFrame([conv_layer(cin=64, cout=16, k=3, h=8, w=8)]))
        cycles[dataflow] = latency(geo, hw, dense_work(geo))["t_util"].item() * hw.clock_hz
    # K = 576 folds 36 times on 16 rows under WS; under OS the 64 pixels fold 4 times and K streams
    assert cycles["weight-stationary"] == 36 * (64 + 30) + 16
    assert cycles["output-stationary"] == 4 * (576 + 30)


def test_a_systolic_yaml_with_an_array_dataflow_it_cannot_run_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(GEMMINI.replace("dataflow: weight-stationary", "dataflow: row-stationary"))
    with pytest.raises(hardware.HardwareError, match="tiling.dataflow.*weight-stationary, output-stationary"):
        hardware.load(str(path))


# -- the shared physics -------------------------------------------------------------------------

def _brute_coverage(active: np.ndarray, k: int, s: int, p: int, d: int, ih: int, iw: int) -> int:
    cover = np.zeros((ih, iw), bool)
    for y, x in zip(*np.nonzero(active)):
        for i in range(k):
            for j in range(k):
                r, c = y * s - p + i * d, x * s - p + j * d
                if 0 <= r < ih and 0 <= c < iw:
                    cover[r, c] = True
    return int(cover.sum())


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 3), st.integers(0, 4), st.integers(1, 2), st.integers(6, 24),
       st.integers(6, 24), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_input_coverage_counts_exactly_the_input_pixels_active_blocks_read(k, s, p, d, ih, iw, block, seed):
    p = min(p, k - 1)
    oh, ow = (ih + 2 * p - d * (k - 1) - 1) // s + 1, (iw + 2 * p - d * (k - 1) - 1) // s + 1
    if oh < 1 or ow < 1:
        return
    mask = np.random.default_rng(seed).random((2, oh, ow)) < 0.2
    maps = block_map(mask, block)
    layer = pd.Series(dict(op="conv2d", out_h=oh, out_w=ow, in_h=ih, in_w=iw, kernel_h=k, kernel_w=k, stride_h=s,
                           stride_w=s, padding_h=p, padding_w=p, dilation_h=d, dilation_w=d))
    active = np.repeat(np.repeat(maps, block, 1), block, 2)[:, :oh, :ow]
    got = input_coverage(maps, block, layer)
    assert list(got) == [_brute_coverage(a, k, s, p, d, ih, iw) for a in active]


def test_stage_options_name_fields_and_the_command_line_names_flags(small_trace, capsys):
    e = OptionError(("gate.kind", "gate.checkpoint"), "{gate.kind} learned and {gate.checkpoint} PATH go together")
    assert str(e) == "gate-kind learned and gate-checkpoint PATH go together"
    assert e.render({"gate.kind": "--gate", "gate.checkpoint": "--gate-checkpoint"}.get) == \
        "--gate learned and --gate-checkpoint PATH go together"
    assert main(["simulate", str(small_trace), "--block", "0"]) == 2
    assert "error: --block must be >= 1, got 0" in capsys.readouterr().err
    assert main(["sweep", str(small_trace), "--threshold", "0.7", "-o", "/tmp/x.parquet"]) == 2
    assert "no trace matches --threshold" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--help"], ["hw", "list"], ["estimate", "{trace}", "--frames", "2", "--hw", "h100"],
                                  ["blocks", "{trace}", "--frames", "2"], ["info", "{trace}"],
                                  ["simulate", "--topology", "benchmarks/scalesim/l2_proj1x1.csv",
                                   "--config", "benchmarks/scalesim/a32_ws_calc.cfg"]])
def test_commands_that_run_no_model_import_no_torch_pyav_ray_or_altair(args, small_trace):
    root = Path(__file__).resolve().parent.parent
    code = ("import sys, io, contextlib\nfrom sparsesim.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        rc = main(sys.argv[1:])\n    except SystemExit as e:\n        rc = e.code\n"
            "print(rc, sorted(m for m in ('torch', 'av', 'ray', 'altair', 'vl_convert') if m in sys.modules))")
    argv = [a.replace("{trace}", str(small_trace)) for a in args]
    out = subprocess.run([sys.executable, "-c", code, *argv], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[-2] in ("0 []", "None []"), out.stdout + out.stderr
