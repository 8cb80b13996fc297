"""The cycle-level simulators: closed forms, agreement with the analytical model where it is exact,
monotonicity, overheads of empty layers, load imbalance, determinism."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsesim import hardware
from sparsesim.workload import Geometry
from sparsesim.cost.latency import latency
from sparsesim.workload import dense_work
from sparsesim.errors import SparsesimError
from sparsesim.sim import Gemm, SystolicConfig, simulate_gemm
from sparsesim.sim import simulate_layer
from sparsesim.sim.layer import simulate_maps
from sparsesim.workload.strategies import Kernel
from sparsesim.workload import block_map as block_maps, input_coverage
from test_cost import conv_layer

AMPLE = dict(sram_words=(1 << 30,) * 3, bandwidth=(1e6,) * 3)


@pytest.mark.parametrize("dataflow,per_fold", [
    ("ws", lambda m, k, n, R, C: 2 * R + C + m - 2),
    ("os", lambda m, k, n, R, C: k + R + C - 2),
    ("is", lambda m, k, n, R, C: 2 * R + C + n - 2),
])
@pytest.mark.parametrize("m,k,n", [(3136, 576, 64), (49, 4608, 512), (12100, 147, 64), (5, 7, 3)])
def test_compute_cycles_follow_scalesims_closed_form(dataflow, per_fold, m, k, n):
    R, C = 32, 16
    folds = {"ws": math.ceil(k / R) * math.ceil(n / C), "os": math.ceil(m / R) * math.ceil(n / C),
             "is": math.ceil(k / R) * math.ceil(m / C)}[dataflow]
    r = simulate_gemm(Gemm(m, k, n), SystolicConfig(R, C, dataflow, **AMPLE))
    assert r.folds == folds
    assert r.compute_cycles == folds * per_fold(m, k, n, R, C)
    assert r.stall_cycles == 0
    assert r.macs == m * k * n


def test_scalesim_access_counts_weight_stationary():
    m, k, n, R, C = 100, 70, 40, 32, 16
    r = simulate_gemm(Gemm(m, k, n), SystolicConfig(R, C, "ws", **AMPLE))
    assert r.sram_reads == {"ifmap": m * k * math.ceil(n / C), "filter": k * n}
    assert r.sram_writes == {"ofmap": m * n * math.ceil(k / R)}   # partial sums leave once per row fold


def test_dram_limited_output_drains_at_its_bandwidth():
    # 32 columns write 32 words a cycle; a 4 word/cycle drain must stretch the run to ~writes / 4
    g = Gemm(4096, 32, 32)
    cfg = SystolicConfig(32, 32, "ws", sram_words=(1 << 20, 1 << 20, 8192), bandwidth=(1e6, 1e6, 4))
    r = simulate_gemm(g, cfg)
    writes = r.sram_writes["ofmap"]
    assert r.stalls["ofmap_bandwidth"] > 0
    assert r.overall_cycles == pytest.approx(writes / 4, rel=0.05)
    looser = simulate_gemm(g, SystolicConfig(32, 32, "ws", sram_words=(1 << 20, 1 << 20, 8192),
                                             bandwidth=(1e6, 1e6, 64)))
    assert looser.stall_cycles == 0 < r.stall_cycles


def test_a_stream_that_fits_is_fetched_once_and_one_that_does_not_is_refetched_per_pass():
    cfg = SystolicConfig(16, 16, "ws", sram_words=(4096, 1 << 20, 1 << 20), bandwidth=(8, 1e6, 1e6))
    small = simulate_gemm(Gemm(100, 16, 64), cfg)        # 1600-word im2col < half the buffer
    assert small.dram_reads["ifmap"] == pytest.approx(1600, abs=8)
    big = simulate_gemm(Gemm(1000, 16, 64), cfg)         # 16000 words, read once per column fold (4)
    assert big.dram_reads["ifmap"] == pytest.approx(4 * 16000, rel=0.1)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3000), st.integers(1, 600), st.integers(1, 300), st.sampled_from(["ws", "os", "is"]),
       st.integers(1, 64), st.sampled_from([256, 4096, 65536]))
def test_invariants(m, k, n, dataflow, bw, sram):
    cfg = SystolicConfig(16, 8, dataflow, sram_words=(sram,) * 3, bandwidth=(bw,) * 3)
    r = simulate_gemm(Gemm(m, k, n), cfg)
    assert r.compute_cycles * 16 * 8 >= m * k * n           # no faster than every cell busy
    assert r.stall_cycles >= 0 and all(v >= 0 for v in r.stalls.values())
    assert r.overall_cycles >= r.total_cycles
    assert m * n <= r.dram_writes["ofmap"] <= r.sram_writes["ofmap"]   # partial sums may leave per row fold
    assert 0 < r.mapping_efficiency <= 1 and 0 < r.compute_utilisation <= 1
    assert simulate_gemm(Gemm(m, k, n), cfg) == r             # deterministic


def test_bad_configs_are_refused():
    with pytest.raises(SparsesimError, match="dataflow"):
        SystolicConfig(8, 8, "rs")
    with pytest.raises(SparsesimError, match="bandwidths"):
        SystolicConfig(8, 8, "ws", bandwidth=(0, 1, 1))


def test_dense_simulation_equals_the_analytical_model_on_a_layer_that_maps_perfectly():
    hw = hardware.load("gemmini")               # 16 x 16 weight-stationary
    layer = conv_layer(cin=32, cout=32, k=1, pad=0, h=16, w=16)   # K = 32 = 2 x 16 rows, N = 32 = 2 x 16 cols
    geo = Geometry.from_layers(pd.DataFrame([layer]))
    analytical = latency(geo, hw, dense_work(geo))["t_util"].item() * hw.clock_hz
    cfg = SystolicConfig(hw.rows, hw.cols, "ws", preload_overlap=True, **AMPLE)
    sim = simulate_gemm(Gemm(16 * 16, 32, 32), cfg)
    assert sim.mapping_efficiency == 1.0
    assert sim.compute_cycles == pytest.approx(analytical, abs=1e-6)


def blocks_mask(t: int, h: int, w: int, block: int, cells: list[tuple[int, int]]) -> np.ndarray:
    mask = np.zeros((t, h, w), bool)
    for i, j in cells:
        mask[:, i * block:(i + 1) * block, j * block:(j + 1) * block] = True
    return mask


HW_KINDS = ["tpu-v1", "gemmini", "eyeriss", "h100"]


def _sim(hw_name: str, mask: np.ndarray, block: int = 4, schedule: str = "dynamic", kernel: Kernel | None = None,
         **layer_kw) -> pd.DataFrame:
    hw = hardware.load(hw_name)
    layer = pd.Series(conv_layer(**{"cin": 16, "cout": 32, "h": 32, "w": 32, **layer_kw}))
    if kernel is not None:
        return simulate_maps(layer, block_maps(mask, block), hw, hardware.energy_table(hw.energy_table), block,
                             schedule, kernel)
    return simulate_layer(layer, mask, hw, hardware.energy_table(hw.energy_table), block, schedule)


@pytest.mark.parametrize("hw", HW_KINDS)
def test_simulated_time_grows_with_active_blocks(hw):
    order = [(i, j) for i in range(8) for j in range(8)]
    masks = np.concatenate([blocks_mask(1, 32, 32, 4, order[:n]) for n in (0, 1, 2, 5, 9, 20, 40, 64)])
    # on a GPU this small layer is launch-bound (the host's issuing outlasts its GPU work): the launches are
    # captured in a CUDA graph so that the GPU's own work shows
    graphs = Kernel("gather-scatter", graphs=True) if hardware.load(hw).kind == "gpu" else None
    seconds = _sim(hw, masks, schedule="static" if hw == "eyeriss" else "dynamic", kernel=graphs)["sim_s"].to_numpy()
    assert np.all(np.diff(seconds) >= -1e-15), seconds
    assert seconds[-1] > seconds[0]


@pytest.mark.parametrize("hw", HW_KINDS)
def test_an_all_inactive_layer_costs_only_the_overheads(hw):
    rows = _sim(hw, np.zeros((1, 32, 32), bool))
    spec = hardware.load(hw)
    stalls = rows.filter(like="stall_").iloc[0]
    overhead = stalls.filter(regex="overhead|launch").sum()
    assert rows["sim_s"].iloc[0] == pytest.approx(overhead, rel=1e-9) and overhead > 0
    if spec.kind == "gpu":
        assert stalls["stall_launch_s"] == pytest.approx(4 * spec.launch_s)   # mask, gather, conv, scatter


def test_load_imbalance_shows_where_the_mapping_is_static():
    clustered = blocks_mask(1, 32, 32, 4, [(0, j) for j in range(8)])          # one block row
    spread = blocks_mask(1, 32, 32, 4, [(i, i) for i in range(8)])             # the diagonal
    static = [_sim("eyeriss", m, schedule="static")["sim_s"].item() for m in (clustered, spread)]
    dynamic = [_sim("eyeriss", m, schedule="dynamic")["sim_s"].item() for m in (clustered, spread)]
    gpu = [_sim("h100", m)["sim_s"].item() for m in (clustered, spread)]
    assert static[0] > 1.5 * static[1]                  # one PE set owns the whole cluster
    assert dynamic[0] == pytest.approx(dynamic[1])      # a work queue balances any layout
    assert gpu[0] == pytest.approx(gpu[1])              # gathered tiles: the layout does not matter
    imbalance = _sim("eyeriss", clustered, schedule="static")["stall_load_imbalance_s"].item()
    assert imbalance > 0


def test_shared_halos_make_clustered_blocks_read_fewer_inputs():
    layer = pd.Series(conv_layer(cin=16, cout=32, h=32, w=32))               # 3x3, stride 1, pad 1
    clustered = blocks_mask(1, 32, 32, 4, [(0, j) for j in range(8)])          # output rows 0-3
    spread = blocks_mask(1, 32, 32, 4, [(2 * (i // 4), 2 * (i % 4)) for i in range(8)])
    cover = [input_coverage(block_maps(m, 4), 4, layer)[0] for m in (clustered, spread)]
    assert cover[0] == 5 * 32                        # input rows 0-4 (row -1 is padding), all columns
    # separate 6 x 6 tiles, clipped at the top and left edges: 25 + 3 x 30 on top, 30 + 3 x 36 below
    assert cover[1] == (25 + 3 * 30) + (30 + 3 * 36)


def test_simulation_is_deterministic():
    rng = np.random.default_rng(0)
    mask = rng.random((3, 32, 32)) < 0.05
    for hw in HW_KINDS:
        pd.testing.assert_frame_equal(_sim(hw, mask), _sim(hw, mask))


def test_a_scratchpad_too_small_for_the_filter_row_spills_partial_sums():
    from dataclasses import replace

    from sparsesim.workload import sparse_work
    from sparsesim.sim import simulate_spatial
    hw = hardware.load("eyeriss")
    big = replace(hw, levels=tuple(replace(lv, size_bytes=lv.size_bytes * 1000) if lv.kind == "rf" else lv
                                   for lv in hw.levels))
    geo = Geometry.from_layers(pd.DataFrame([conv_layer(cin=128, cout=32, h=32, w=32)]))
    maps = np.ones((1, 8, 8), bool)
    b = np.array(4.0).reshape(1, 1, 1)
    work = sparse_work(geo, b, np.full((1, 1, 1), 64.0), np.full((1, 1, 1), 1024.0), np.full((1, 1, 1), 64.0))
    small_spad, large_spad = (simulate_spatial(geo, h, work, (4, 4), maps) for h in (hw, big))
    # 3 x 128 x 16 filter words per PE against a 256-word scratchpad: 24 chunks, so the 4 x 4 x 16 partial
    # sums of each of the 64 blocks x 2 channel groups go out and back 23 more times
    assert small_spad.buffer_words[0] - large_spad.buffer_words[0] == pytest.approx(64 * 2 * 23 * 2 * 16 * 16, rel=1e-9)
