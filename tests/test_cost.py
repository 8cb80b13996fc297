"""The analytical cost model: hand-computed cases, limits, monotonicity, determinism."""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsesim import hardware, workload
from sparsesim.cost import estimate
from sparsesim.workload import Geometry
from sparsesim.cost.latency import latency
from sparsesim.workload import dense_work, sparse_work
from sparsesim.workload import traffic

HW = ["h100", "a100", "orin", "cpu", "eyeriss", "tpu-v1", "gemmini"]


def conv_layer(i=0, cin=2, cout=3, k=3, stride=1, pad=1, h=8, w=8, op="conv2d", out=None) -> dict:
    oh, ow = out or ((h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1)
    macs = (h * w * cin * cout if op == "conv_transpose2d" else oh * ow * cout * cin) * k * k
    return dict(id=i, name=f"l{i}", op=op, in_channels=cin, out_channels=cout, kernel_h=k, kernel_w=k,
                stride_h=stride, stride_w=stride, padding_h=pad, padding_w=pad, dilation_h=1, dilation_w=1,
                groups=1, in_h=h, in_w=w, out_h=oh, out_w=ow, dense_macs=macs,
                weight_bytes=4 * (cout * cin * k * k + cout))


def one_layer(mask: np.ndarray, blocks, **kw) -> workload.BlockWorkload:
    layers = pd.DataFrame([conv_layer(**kw)])
    return workload.from_masks("toy", layers, [mask[None] if mask.ndim == 2 else mask], blocks)


@functools.cache
def specs(names: tuple[str, ...]):
    hws = [hardware.load(n) for n in names]
    return hws, [hardware.energy_table(h.energy_table) for h in hws]


def run(wl, names=HW):
    return estimate(wl, *specs(tuple(names)))


def test_hand_computed_3x3_conv_on_a_known_mask():
    mask = np.zeros((8, 8), bool)
    mask[0, 0] = mask[5, 5] = True
    wl = one_layer(mask, [1, 4, 8])
    assert wl.active_blocks[0, 0].tolist() == [2, 2, 1]
    assert wl.active_pixels[0, 0].tolist() == [2, 32, 64]
    assert wl.total_blocks[0].tolist() == [64, 4, 1]
    geo = Geometry.from_layers(wl.layers)
    b = np.array([1.0, 4.0, 8.0]).reshape(1, 1, -1)
    # halo: a B x B output block of a 3x3/1 conv reads (B + 2)^2 inputs per channel, clipped to the 8x8 map
    assert geo.tile_in_elems(b).reshape(-1).tolist() == [9 * 2, 36 * 2, 64 * 2]
    rows = run(wl, ["h100"]).rows.set_index("block")
    per_pixel = 3 * 2 * 9
    assert rows.loc[4, "macs"] == 32 * per_pixel and rows.loc[1, "macs"] == 2 * per_pixel
    assert rows.loc[4, "macs_skipped"] == (64 - 32) * per_pixel
    work = sparse_work(geo, b, wl.active_blocks.astype(float), wl.active_pixels.astype(float),
                       wl.total_blocks[:, None, :].astype(float))
    moved = traffic(geo, hardware.load("h100"), work)
    layer, metadata = moved.layer, moved.metadata
    # unfused: mask reduction reads x_t (128) and x_prev (128) whole, gather reads both tiles per block,
    # whole as its buffer holds them (B = 8: a 10 x 10 tile per channel, zero-filled past the 8 x 8 map)
    assert layer["inputs"].reshape(-1).tolist() == [128 + 2 * 18, 128 + 2 * 72, 128 + 2 * 100]
    assert layer["outputs"].reshape(-1).tolist() == [2 * 3, 32 * 3, 64 * 3]
    assert metadata.reshape(-1).tolist() == [8 + 4 * 2 * 4, 1 + 4 * 2 * 4, 1 + 4 * 1 * 4]


def test_full_block_on_a_dense_mask_reproduces_the_dense_kernel():
    wl = one_layer(np.ones((8, 8), bool), [8], cin=64, cout=64)
    geo = Geometry.from_layers(wl.layers)
    for name in HW:
        hw = hardware.load(name)
        work = sparse_work(geo, np.array(8.0).reshape(1, 1, 1), wl.active_blocks.astype(float),
                           wl.active_pixels.astype(float), wl.total_blocks[:, None, :].astype(float))
        dense, sparse = latency(geo, hw, dense_work(geo)), latency(geo, hw, work, np.array(8.0).reshape(1, 1, 1))
        for step in ("t_peak", "t_parallel", "t_util", "t_occupancy"):
            np.testing.assert_allclose(sparse[step].reshape(-1), dense[step].reshape(-1), rtol=1e-12, err_msg=name)
        assert (sparse["latency_s"] > dense["latency_s"]).all(), name  # plus the skipping overheads
    rows = run(wl).rows
    assert (rows["macs"] == rows["macs_dense"]).all() and (rows["macs_skipped"] == 0).all()


def test_empty_mask_costs_only_the_overheads():
    wl = one_layer(np.zeros((3, 8, 8), bool), [1, 4])
    est = run(wl)
    rows = est.rows
    assert (rows["macs"] == 0).all() and (rows["e_mac"] == 0).all()
    np.testing.assert_allclose(rows["latency_s"], rows["t_overhead"], rtol=1e-12)
    assert (rows["t_bandwidth"] == 0).all()
    assert (rows["e_type_weights"] == 0).all()          # no block active: weights are never fetched
    assert (rows["e_type_inputs"] > 0).all()            # but the mask reduction still reads the input
    h100 = rows[rows["hw"] == "h100"]
    assert np.allclose(h100["t_overhead"] - h100["t_overhead"].min(), 0)  # independent of B
    assert (h100["t_overhead"] >= 4 * 4e-6).all()                          # four launches


@st.composite
def nested_masks(draw):
    t, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 20)), draw(st.integers(1, 20))
    seed = draw(st.integers(0, 10_000))
    rng = np.random.default_rng(seed)
    small = rng.random((t, h, w)) < draw(st.floats(0, 1))
    large = small | (rng.random((t, h, w)) < draw(st.floats(0, 1)))
    k = draw(st.sampled_from([1, 3]))
    return small, large, dict(h=h + (k - 1), w=w + (k - 1), k=k, pad=0, cin=draw(st.integers(1, 40)),
                              cout=draw(st.integers(1, 300)))


@settings(max_examples=25, deadline=None)
@given(nested_masks())
def test_more_active_blocks_never_cost_less(case):
    small, large, shape = case
    blocks = [1, 2, 4, 8, 16, 32]
    a, b = run(one_layer(small, blocks, **shape)).rows, run(one_layer(large, blocks, **shape)).rows
    for col in ("latency_s", "energy_pj", "macs"):
        assert (b[col].to_numpy() >= a[col].to_numpy() * (1 - 1e-12)).all(), col


@settings(max_examples=30, deadline=None)
@given(nested_masks())
def test_a_larger_block_never_executes_fewer_macs(case):
    mask, _, shape = case
    rows = run(one_layer(mask, [1, 2, 4, 8, 16, 32], **shape), ["h100"]).rows
    macs = rows.pivot_table(index="frame", columns="block", values="macs").to_numpy()
    assert (np.diff(macs, axis=1) >= 0).all()  # aligned power-of-two blocks nest


def sparse_latency(geo: Geometry, hw, block: float, density: float, total: int) -> float:
    """Latency of a one-layer workload with round(density * total) active blocks of equal size."""
    arr = lambda v: np.array(float(v)).reshape(1, 1, 1)  # noqa: E731
    active = np.round(density * total)
    work = sparse_work(geo, arr(block), arr(active), arr(active * geo.out_pixels.item() / total), arr(total))
    return latency(geo, hw, work, arr(block))["latency_s"].item()


@settings(max_examples=40, deadline=None)
@given(cout=st.integers(1, 300), block=st.sampled_from([1, 2, 4, 8, 16, 32]))
def test_cpu_conv_steps_never_fall_as_active_pixels_rise(cout, block):
    # One more GEMM tile used to spread the same work over one more core: the time could halve.
    geo = Geometry.from_layers(pd.DataFrame([conv_layer(cin=16, cout=cout, h=64, w=64)]))
    hw = hardware.load("cpu")
    arr = lambda v: np.array(float(v)).reshape(1, 1, 1)  # noqa: E731
    total = (64 // block) ** 2
    steps = []
    for pixels in range(1, 400):  # across the first few 64-pixel tiles, one pixel at a time
        active = min(total, -(-pixels // (block * block)))
        work = sparse_work(geo, arr(block), arr(active), arr(pixels), arr(total))
        steps.append(np.array(hardware.kinds.of(hw).latency_steps(geo, hw, work, arr(block))).ravel())
    assert (np.diff(np.array(steps), axis=0) >= -1e-18).all()


def test_break_even_density_separates_wins_from_losses():
    rng = np.random.default_rng(0)
    wl = one_layer(rng.random((4, 96, 80)) < 0.1, [8], cin=64, cout=64, h=96, w=80)
    est = run(wl, ["cpu", "eyeriss"])
    geo = Geometry.from_layers(wl.layers)
    for _, row in est.layers.iterrows():
        d = row["break_even_density"]
        assert 0 < d < 1
        hw = hardware.load(row["hw"])
        dense = latency(geo, hw, dense_work(geo))["latency_s"].item()
        total = wl.total_blocks[0, 0]
        assert sparse_latency(geo, hw, 8, d, total) >= dense > sparse_latency(geo, hw, 8, d - 0.005, total)


def test_whole_model_break_even_is_where_the_summed_latencies_cross():
    """Two layers of different cost: the model's break-even is the density (every layer at it) at which
    the summed block-sparse latency reaches the summed dense latency, a number, not NaN."""
    rng = np.random.default_rng(3)
    layers = pd.DataFrame([conv_layer(0, cin=64, cout=64, h=96, w=80), conv_layer(1, cin=64, cout=16, h=96, w=80)])
    masks = [rng.random((3, 96, 80)) < 0.1, rng.random((3, 96, 80)) < 0.3]
    wl = workload.from_masks("two", layers, masks, [8])
    est = run(wl, ["cpu", "eyeriss"])
    geo = Geometry.from_layers(wl.layers)
    one = [Geometry.from_layers(layers.iloc[[i]].reset_index(drop=True)) for i in range(2)]
    for _, row in est.summary.iterrows():
        d = row["break_even_density"]
        assert 0 < d < 1
        hw = hardware.load(row["hw"])
        dense = latency(geo, hw, dense_work(geo))["latency_s"].sum()
        total = [wl.total_blocks[i, 0] for i in range(2)]
        at = lambda x: sum(sparse_latency(g, hw, 8, x, t) for g, t in zip(one, total))  # noqa: E731
        assert at(d) >= dense > at(d - 0.005)
    from sparsesim.report.verdict import MODEL, block_verdicts
    model = block_verdicts(est).query("layer == @MODEL")
    assert model["break_even_density"].tolist() == est.summary.loc[
        est.summary.groupby("hw", sort=False)["latency_s"].idxmin(), "break_even_density"].tolist()


def test_energy_table_changes_energy_not_latency():
    wl = one_layer(np.random.default_rng(1).random((2, 8, 8)) < 0.3, [2])
    hw = hardware.load("eyeriss")
    a = estimate(wl, [hw], [hardware.energy_table("sze-normalized")]).rows
    b = estimate(wl, [hw], [hardware.energy_table("accelergy-45nm")]).rows
    np.testing.assert_array_equal(a["latency_s"], b["latency_s"])
    assert (b["e_buffer"] < a["e_buffer"]).all() and (b["energy_pj"] < a["energy_pj"]).all()  # 4.2x vs 6x a MAC


def test_estimates_are_deterministic_bit_for_bit():
    wl = one_layer(np.random.default_rng(2).random((5, 8, 8)) < 0.4, [1, 2, 4])
    first, second = run(wl), run(wl)
    for x, y in zip((first.rows, first.layers, first.summary), (second.rows, second.layers, second.summary)):
        pd.testing.assert_frame_equal(x, y, check_exact=True)


def test_transposed_conv_work_counts_each_output_pixel_once():
    wl = one_layer(np.ones((1, 16, 16), bool), [4], op="conv_transpose2d", k=4, stride=2, pad=1, out=(16, 16))
    rows = run(wl, ["h100"]).rows
    assert rows["macs"].item() == rows["macs_dense"].item() == 8 * 8 * 2 * 3 * 16


def test_gather_scatter_bills_whole_tiles_and_whole_blocks_past_the_maps_edge():
    """A 6 x 6 map in 4 x 4 blocks: the edge blocks hold 8, 8 and 4 in-map outputs, but the gather buffer
    holds their whole 6 x 6 tiles and the scatter adds whole 4 x 4 blocks into the block-padded state
    (as the measured kernels run them); the conv's MACs stay the in-map ones."""
    geo = Geometry.from_layers(pd.DataFrame([conv_layer(cin=2, cout=3, h=6, w=6)]))
    b = np.array(4.0).reshape(1, 1, 1)
    work = sparse_work(geo, b, b * 0 + 4, b * 0 + 36, b * 0 + 4)
    moved = traffic(geo, hardware.load("cpu"), work)
    steps = {k: {t: v.item() for t, v in d.items()} for k, d in moved.steps.items()}
    assert steps["gather"]["gather"] == 4 * 36 * 2 and steps["gather"]["inputs"] == 4 * 36 * 2
    assert steps["scatter"]["outputs"] == 4 * 16 * 3 and steps["scatter"]["state"] == 4 * 16 * 3
    assert work.macs.item() == 36 * 3 * 2 * 9
    from sparsesim.workload.strategies import Kernel
    fused = traffic(geo, hardware.load("cpu"), sparse_work(geo, b, b * 0 + 4, b * 0 + 36, b * 0 + 4,
                                                           kernel=Kernel("fused")))
    assert fused.steps["conv"]["outputs"].item() == 36 * 3       # in place: the in-map outputs only
