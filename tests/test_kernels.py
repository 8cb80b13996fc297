"""Kernel strategies: each one's bill on a handmade case, computed by hand; region fusion from the layer
graph; CUDA graphs; static power; the GPU's library tile choice."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsesim import hardware, workload
from sparsesim.cost.estimate import block_work, estimate
from sparsesim.cost.latency import latency
from sparsesim.errors import OptionError
from sparsesim.hardware.kinds.gpu_tiles import tile_seconds
from sparsesim.workload import Geometry, synthetic, traffic
from sparsesim.workload.regions import chains, linear_graph, region_shape
from sparsesim.workload.strategies import Kernel, parse_kernels

# two 3x3 convs, 2 -> 3 -> 3 channels, on an 8 x 8 map; one mask shared by both: pixels (0, 0) and (5, 5)
CHAIN = ["2,3,3,1,1,8,8", "3,3,3,1,1,8,8"]


def two_layers(blocks=(4,)) -> workload.BlockWorkload:
    layers = synthetic.shape_layers(CHAIN)
    mask = np.zeros((1, 8, 8), bool)
    mask[0, 0, 0] = mask[0, 5, 5] = True
    return workload.from_masks("hand", layers, [mask, mask], blocks, regions=chains(layers, linear_graph(layers)))


def bill(hw_name: str, kernel: Kernel, wl=None):
    wl = wl or two_layers()
    geo = Geometry.from_layers(wl.layers)
    return traffic(geo, hardware.load(hw_name), block_work(geo, wl, kernel))


def first(values) -> list[float]:
    return np.asarray(values).reshape(-1).tolist()


def test_gather_scatter_on_given_masks_by_hand():
    """B=4: two active blocks of 16 pixels (32 outputs x 3 channels = 96 updated); each block reads a
    6 x 6 tile of 2 channels (72 elements): gather reads 144 and writes 144, the conv reads them once (3
    channels fit one N tile) and writes 96, the scatter reads 96 and writes 96. No reduction: the
    indices are handed in (8 B per block for each of gather, conv and scatter)."""
    t = bill("h100", Kernel("gather-scatter", mask_source="given"))
    assert first(t.steps["gather"]["inputs"])[0] == 144 and first(t.steps["gather"]["gather"])[0] == 144
    assert first(t.steps["gather"]["state"])[0] == 0                      # values, not deltas: one frame read
    assert first(t.steps["conv"]["gather"])[0] == 144 + 96
    assert first(t.steps["conv"]["weights"])[0] == 3 * 2 * 9 + 3           # one M tile: weights once
    assert first(t.steps["scatter"]["gather"])[0] == 96 and first(t.steps["scatter"]["outputs"])[0] == 96
    assert first(t.steps["scatter"]["state"])[0] == 0                     # no z_{t-1} read: it overwrites
    assert "mask" not in t.steps or not np.any(t.steps["mask"]["inputs"])
    assert first(t.metadata)[0] == 4 * 2 * 3
    assert first(t.total_launches)[0] == 3                                # SBNet's three ops


def test_fused_on_residual_masks_by_hand():
    """One kernel: the reduction reads x_t and x_{t-1} (128 each) and writes the bitmask (1 B) and the
    index list (8 B); the conv reads both frames' tiles (144 each) and z_{t-1} (96) and writes z_t (96)."""
    t = bill("h100", Kernel("fused"))
    assert first(t.steps["mask"]["inputs"])[0] == 128 and first(t.steps["mask"]["state"])[0] == 128
    assert first(t.steps["conv"]["inputs"])[0] == 144 and first(t.steps["conv"]["state"])[0] == 144 + 96
    assert first(t.steps["conv"]["outputs"])[0] == 96 and first(t.steps["conv"]["gather"])[0] == 0
    assert "gather" not in t.steps and "scatter" not in t.steps
    assert first(t.metadata)[0] == 1 + 4 * 2 + 4 * 2
    assert first(t.total_launches)[0] == 2                                # reduction and the fused conv


def test_region_runs_the_chain_on_one_gather_by_hand():
    """The chain fuses: layer 0 computes 6 x 6 outputs per block (the second conv's halo), so its tile is
    the whole 8 x 8 x 2 input (256 for two blocks, gathered once); it writes 2 x 36 x 3 = 216 for layer 1,
    which reads its 6 x 6 x 3 tiles (216) and writes the 96 updated outputs, scattered once."""
    wl = two_layers()
    assert wl.regions.tolist() == [0, 0]
    shape = region_shape(wl.layers, wl.regions)
    assert first(shape.extra_h) == [2, 0] and first(shape.first) == [True, False] and first(shape.last) == [False, True]
    t = bill("h100", Kernel("region", mask_source="given"), wl)
    assert first(t.steps["gather"]["inputs"]) == [256, 0] and first(t.launches["gather"]) == [1, 0]
    assert first(t.steps["conv"]["gather"]) == [256 + 216, 216 + 96]
    assert first(t.steps["scatter"]["outputs"]) == [0, 96] and first(t.launches["scatter"]) == [0, 1]
    # an array keeps the intermediate tiles in its buffer: only the first read and the last write leave it
    on_chip = bill("eyeriss", Kernel("region", mask_source="given"), wl)
    assert first(on_chip.steps["conv"]["gather"]) == [256, 96]
    assert first(on_chip.on_chip["gather"]) == [216, 216]


@st.composite
def random_chains(draw):
    n = draw(st.integers(1, 5))
    ks = [draw(st.sampled_from([1, 3, 5])) for _ in range(n)]
    strides = [1] + [draw(st.sampled_from([1, 1, 2])) for _ in range(n - 1)]
    h, c = draw(st.integers(12, 24)), draw(st.integers(1, 8))
    shapes = []
    for k, s in zip(ks, strides):
        shapes.append(f"{c},{c},{k},{s},{k // 2},{h},{h}")
        h = (h + 2 * (k // 2) - k) // s + 1
    return shapes, draw(st.integers(0, 1000)), draw(st.sampled_from([2, 4, 8]))


@settings(max_examples=25, deadline=None)
@given(random_chains())
def test_region_never_gathers_more_often_than_there_are_layers(case):
    shapes, seed, block = case
    layers = synthetic.shape_layers(shapes)
    wl = synthetic.workload(layers, [block], 0.3, "clustered", 3, seed)
    region = bill("h100", Kernel("region"), wl)
    separate = bill("h100", Kernel("gather-scatter"), wl)
    gathers = region.launches["gather"].sum(axis=0)                      # per frame and block, over layers
    assert (gathers <= len(layers)).all() and (gathers == len(np.unique(wl.regions))).all()
    assert (gathers <= separate.launches["gather"].sum(axis=0)).all()
    assert region.launches["scatter"].sum(axis=0).max() == len(np.unique(wl.regions))


def test_region_fuses_only_what_shares_a_resolution():
    layers = synthetic.shape_layers(["4,4,3,1,1,16,16", "4,4,3,2,1,16,16", "4,4,1,1,0,8,8", "4,4,3,1,1,8,8"])
    assert chains(layers, linear_graph(layers)).tolist() == [0, 1, 1, 1]  # the stride-2 conv starts a region
    assert chains(layers, None).tolist() == [0, 1, 2, 3]                  # no graph: nothing fuses


def test_graphs_replace_launch_and_dispatch_by_a_node_each():
    hw = hardware.load("gtx1080ti")
    wl = two_layers()
    geo = Geometry.from_layers(wl.layers)
    b = np.array(4.0).reshape(1, 1, 1)
    plain = latency(geo, hw, block_work(geo, wl, Kernel("gather-scatter", mask_source="given")), b)
    graphs = latency(geo, hw, block_work(geo, wl, Kernel("gather-scatter", True, "given")), b)
    # three ops, and the conv's two helper kernels (TF's filter transform, cuDNN's offsets): a launch each
    np.testing.assert_allclose(plain["t_launch"], 3 * (hw.part.launch_s + hw.part.dispatch_s) + 2 * hw.part.launch_s)
    np.testing.assert_allclose(graphs["t_launch"], 5 * hw.part.graph_launch_s)
    assert (graphs["latency_s"] < plain["latency_s"]).all()


def test_a_gpus_host_dispatch_overlaps_its_queue_and_a_cpus_does_not():
    """By hand: 3 launches on the 1080 Ti cost the host 3 x (5 + 10) = 45 us; beside 100 us of GPU work the
    layer pays only a 0.9 us gap per kernel, beside 10 us it waits 35 us for the host. A CPU's operators run
    in line: all of their dispatch is paid."""
    gpu, cpu = hardware.load("gtx1080ti"), hardware.load("cpu")
    issued, exposed = hardware.kinds.of(gpu).launch_s(gpu, np.array([3.0, 3.0]), np.array([100e-6, 10e-6]))
    np.testing.assert_allclose(issued, [45e-6, 45e-6])
    np.testing.assert_allclose(exposed, [2.7e-6, 35e-6])
    issued, exposed = hardware.kinds.of(cpu).launch_s(cpu, np.array(3.0), np.array(1.0))
    assert exposed == issued == 3 * cpu.part.launch_s
    # end to end: the layer's latency is the longer of its GPU work (with the gaps) and the host's issuing:
    # three ops (45 us) and the conv's two helper kernels, 5 us each to launch: TF's filter transform, and
    # Winograd's filter transform or cuDNN's offsets kernel (whichever algorithm wins these 2-3 channel convs)
    wl = two_layers()
    geo = Geometry.from_layers(wl.layers)
    t = latency(geo, gpu, block_work(geo, wl, Kernel("gather-scatter", mask_source="given")), np.array(4.0).reshape(1, 1, 1))
    assert (t["launches"] == 5).all()
    busy = t["t_algorithm"] + t["t_mask"] + t["t_gather"] + t["t_scatter"]
    np.testing.assert_allclose(t["latency_s"], np.maximum(busy + 5 * 0.9e-6, 55e-6), rtol=1e-12)
    np.testing.assert_allclose(t["latency_s"], 55e-6, rtol=1e-12)                     # this tiny layer: host-bound,
    np.testing.assert_allclose(t["t_launch_hidden"], busy, rtol=1e-12)                # all its GPU work hidden


def test_static_energy_is_static_power_times_latency_and_grows_with_it():
    wl = two_layers(blocks=(1, 2, 4, 8))
    hw = hardware.load("gtx1080ti")
    rows = estimate(wl, [hw], [hardware.energy_table(hw.energy_table)],
                    parse_kernels(["gather-scatter", "gather-scatter+graphs"], "given")).rows
    np.testing.assert_allclose(rows["e_static"], hw.static_w * 1e12 * rows["latency_s"], rtol=1e-12)
    slower = rows.sort_values("latency_s")
    assert (np.diff(slower["e_static"].to_numpy()) >= 0).all() and slower["e_static"].iloc[-1] > slower["e_static"].iloc[0]
    assert np.allclose(rows["energy_pj"], rows[[c for c in rows if c.startswith("e_type_")]].sum(axis=1) + rows["e_mac"])


def test_a_gpu_picks_its_fastest_library_tile():
    """A 24-channel layer on the 1080 Ti runs 32 channels wide (not a 128-wide tile with 81% of it empty),
    fp32 on Pascal uses CUDA-core SIMT tiles only, and the pick is the brute-force fastest."""
    hw = hardware.load("gtx1080ti")
    assert all(t.k == 8 for t in hw.part.tiles) and "fp32" == hw.dtype and "tf32" not in hw.peak_flops
    geo = Geometry.from_layers(synthetic.shape_layers(["24,24,3,1,1,400,704"]))
    w = workload.dense_work(geo)
    tile = hardware.kinds.of(hw).gemm_tile(geo, hw, w)
    assert tile.n.item() == 32
    times = [tile_seconds(t, hw, w.padded_pixels, geo.cout, geo.gemm_k)[0].item() for t in hw.part.tiles]
    assert tile.seconds.item() == min(times)
    # the old fixed 128 x 128 tile: four times the N work
    assert max(times) / min(times) > 1.3


def test_kernels_are_a_dimension_of_estimates_and_verdicts(small_trace, tmp_path):
    from sparsesim.cli import main
    out = tmp_path / "v.csv"
    assert main(["blocks", str(small_trace), "--hw", "h100,eyeriss", "--kernel", "gather-scatter,fused,region",
                 "--block", "2,4", "-o", str(out)]) == 0
    verdicts = pd.read_csv(out)
    assert set(verdicts["best_kernel"]) <= {"gather-scatter", "fused", "region"}
    assert all(f", {k} " in v or f", {k})" in v or k in v for k, v in zip(verdicts["best_kernel"], verdicts["verdict"]))
    est = tmp_path / "e.parquet"
    assert main(["estimate", str(small_trace), "--hw", "h100,eyeriss", "--kernel", "gather-scatter,region+graphs",
                 "--block", "4", "-o", str(est)]) == 0
    rows = pd.read_parquet(est)
    # arrays run fused and region (their kind says so), GPUs all three
    assert set(map(tuple, rows[["hw", "kernel"]].drop_duplicates().to_numpy())) == \
        {("h100", "gather-scatter"), ("h100", "region+graphs"), ("eyeriss", "region+graphs")}


def test_unknown_kernels_and_mask_sources_are_refused():
    with pytest.raises(OptionError, match="'tiled' is not a kernel strategy; known: gather-scatter"):
        parse_kernels(["tiled"])
    with pytest.raises(OptionError, match="mask-source must be residual or given"):
        parse_kernels(["fused"], "oracle")
    assert [k.name for k in parse_kernels(["fused+graphs", "fused", "fused"])] == ["fused+graphs", "fused"]


@pytest.mark.parametrize("density", [0.05, 0.3])
def test_synthetic_masks_cover_their_density(density):
    layers = synthetic.shape_layers(["3,8,3,1,1,40,60"])
    for kind in ("square", "random", "clustered"):
        stack = synthetic.masks(layers, density, kind, 3, seed=1)[0]
        assert stack[0].all()                                             # frame 0 dense, as in a trace
        assert stack[1:].mean() == pytest.approx(density, abs=0.06 if kind == "random" else 0.03)
    square = synthetic.masks(layers, density, "square", 2)[0][1]
    rows, cols = np.nonzero(square)
    assert rows.min() == cols.min() == 0 and square[: rows.max() + 1, : cols.max() + 1].all()   # top-left
    again = synthetic.masks(layers, density, "clustered", 3, seed=1)[0]
    assert np.array_equal(again, synthetic.masks(layers, density, "clustered", 3, seed=1)[0])   # fixed seed


def test_every_combination_of_kind_and_strategy_runs():
    wl = two_layers(blocks=(2, 4))
    names = ["h100", "cpu", "eyeriss", "tpu-v1"]
    hws = [hardware.load(n) for n in names]
    kernels = [Kernel(s, g, m) for s, g, m in itertools.product(("gather-scatter", "fused", "region"), (False, True),
                                                                 ("residual", "given"))]
    est = estimate(wl, hws, [hardware.energy_table(h.energy_table) for h in hws], kernels)
    assert (est.rows["latency_s"] > 0).all() and np.isfinite(est.rows["energy_pj"]).all()


def test_a_sweep_compares_kernels_too(small_trace):
    from sparsesim.distributed.sweep import sweep
    rows = sweep([str(small_trace)], ["h100", "eyeriss"], [4], kernels=parse_kernels(["fused", "region"]),
                 progress=False)
    assert set(map(tuple, rows[["hw", "kernel"]].drop_duplicates().to_numpy())) == \
        {("h100", "fused"), ("h100", "region"), ("eyeriss", "fused"), ("eyeriss", "region")}
