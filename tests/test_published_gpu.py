"""sparsesim's GPU model beside SBNet's published GTX 1080 Ti speed-ups (benchmarks/published_gpu.py).

These are data, not timings: the figures are deterministic. The targets the model does not meet are
marked strict xfail with the reason, so that they show as known gaps (and fail loudly if the model
starts to meet them, so that the marks come off)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import published_gpu  # noqa: E402


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return published_gpu.compare()


@pytest.fixture(scope="module")
def curve() -> pd.DataFrame:
    return published_gpu.block_curve()


def test_every_published_row_is_compared(table):
    rows = pd.read_csv(published_gpu.ROWS)
    assert len(table) == len(rows) == 14
    assert table["measured"].tolist() == rows["speedup_sbnet"].tolist()
    assert (table["predicted"] > 0).all() and np.isfinite(table["error"]).all()
    # the best block of each row lies in SBNet's own sweep (output tile = input tile - 2)
    for best, sweep in zip(table["best_out_tile"], rows["block_sweep_in_code"]):
        assert best in published_gpu.out_tiles(sweep)
    pd.testing.assert_frame_equal(table, published_gpu.compare())         # deterministic, bit for bit


def test_the_single_convs_fall_with_the_map_and_the_residual_unit_is_within_30_percent(table):
    """What the model does meet: the speed-up at 10% density falls from the 400x704 map to the 50x88 one,
    as measured (3.39x -> 0.88x; predicted 3.95x -> 1.41x), and every point of the residual-unit curve (3% to 40% density, the
    region kernel) is within 30% of the plot (the host's dispatch overlapping the GPU's work)."""
    single = table[table["op"] == "conv3x3"]
    assert single["predicted"].iloc[0] > 2.5 * single["predicted"].iloc[-1]
    unit = table[table["op"] != "conv3x3"]
    assert len(unit) == 10 and unit["error"].abs().max() <= published_gpu.TARGETS["worst"]


@pytest.mark.xfail(strict=True, reason="not met since the host's dispatch overlaps the GPU's work (TensorFlow "
                   "enqueues asynchronously): the smallest map is predicted at 1.41x and the 200x352 map is off by "
                   "+100%; the additive launch model met these bounds by charging the host serially")
def test_the_smallest_map_near_1x_and_no_row_off_by_more_than_2x(table):
    single = table[table["op"] == "conv3x3"]
    assert single["predicted"].iloc[-1] < 1.1
    assert table["error"].abs().max() < 0.55


def test_the_block_size_matters_on_the_largest_map(curve):
    """Across B = 2..32 the predicted speed-up varies by far more than noise (halo re-reads, quantisation)."""
    assert curve["speedup"].max() / curve["speedup"].min() > 1.2
    assert curve.loc[curve["speedup"].idxmin(), "block"] == 2                # tiny blocks: halos dominate


def test_sbnets_block_rule_counts_a_block_active_above_5_percent_of_its_input_window():
    """reduce_mask(avgpool=True, tol=0.05) by hand. A 10x10 map, output tiles of 4, a 1-pixel halo: 6x6
    windows starting at -1. A 3x3 top-left square (density 0.09) lies in block (0,0)'s window only (9/36);
    blocks (0,1) and (1,0) start their windows at row/column 3, outside it."""
    assert published_gpu.sbnet_blocks(10, 10, 0.09, 4, 1) == (1, 16)
    # a 4x4 square: (0,1)'s window holds its column 3 (4 of 36 pixels, 11% > 5%): on, as are (1,0) and (1,1) (1/36 is
    # not: (1,1) holds pixel (3,3) only, 2.8%)
    assert published_gpu.sbnet_blocks(10, 10, 0.16, 4, 1) == (3, 48)
    # a 5x5 square, tiles of 8 (10x10 windows from -1): (0,1)'s window starts at column 7: nothing of it
    assert published_gpu.sbnet_blocks(16, 16, 25 / 256, 8, 1) == (1, 64)
    # a 8x8 square, tiles of 8: (0,1) holds column 7 of it (8 pixels of 100, 8% > 5%): on, as is (1,0); (1,1) 1%: off
    assert published_gpu.sbnet_blocks(16, 16, 64 / 256, 8, 1) == (3, 192)


@pytest.mark.xfail(strict=True, reason="not met: median |error| 23% (target 20%), worst +100%: the single convs are "
                   "over-predicted by +17%, +100%, +69%, +61% (400x704 .. 50x88) while the residual unit is within "
                   "-12%..-28%. The wrong step is the sparse side of the 48/64/96-channel maps (72, 55, 55 us modelled, "
                   "each conv with TF's filter transform and cuDNN's offsets kernel), "
                   "not the dense baselines: with cuDNN 6's algorithms modelled and Winograd fitted on DeepBench's 1080 "
                   "Ti rows, implicit GEMM stays fastest at these shapes, and matching the rows with the sparse side as "
                   "modelled would need dense rates of 15-18 TFLOP/s, above every DeepBench row with K <= 64 (README)")
def test_median_error_within_20_percent_and_every_row_within_30(table):
    s = published_gpu.summary(table)
    assert s["median_abs_error"] <= published_gpu.TARGETS["median"]
    assert s["max_abs_error"] <= published_gpu.TARGETS["worst"]


@pytest.mark.xfail(strict=True, reason="not met: 200x352 is predicted above 400x704 (4.94x vs 3.95x) and 50x88 at "
                   "1.41x: the two larger maps' sparse convs have the same MACs and the model's dense baselines the "
                   "same time (implicit GEMM at both: the fitted Winograd loses at 24 and 48 channels), so only the "
                   "gather/scatter bytes (halved at 48 channels) tell them apart")
def test_single_convs_in_measured_order_with_the_smallest_map_below_1x(table):
    s = published_gpu.summary(table)
    assert s["single_conv_in_order"] and s["smallest_map_below_1x"]


@pytest.mark.xfail(strict=True, reason="not met: the 10% square is 127x222 pixels, about 4x32 by 7x32, so output "
                   "tiles of 8, 16 and 32 waste 1% of their pixels where odd tiles waste 7-36%, and B = 32 predicts "
                   "fastest (4.57x); SBNet swept odd input tiles only (even output tiles never ran); the best of "
                   "9..29 here is 26 (3.99x), of its odd sweep 19 (3.95x)")
def test_best_block_on_the_largest_map_lies_in_sbnets_sweep(curve):
    best = int(curve.loc[curve["speedup"].idxmax(), "block"])
    assert 9 <= best <= 29


def test_cudnns_algorithm_choice_keeps_implicit_gemm_at_sbnets_shapes(table):
    """The autotuner's choice on SBNet's single convs (dense maps and the gathered tiles at the best block):
    the fused Winograd fitted on DeepBench's 1080 Ti rows runs its 128-channel tiles at 24-96 channels and
    loses to the implicit GEMM (with cuDNN's offsets kernel, which the autotuner times with it) everywhere
    here, by 12% (100x176, tiles) to 2.4x (400x704); so the dense baselines stay as the tile model has them.
    The rows' implied dense rates (the measured speed-up times the modelled sparse time) are 1.17x (400x704)
    and 1.6-2.0x (48/64/96 channels) the modelled ones."""
    algos = published_gpu.algorithm_table(table=table)
    assert len(algos) == 8 and (algos["implicit-gemm_us"] < algos["winograd_us"]).all()
    assert (algos["winograd_us"] / algos["implicit-gemm_us"]).min() > 1.1
    single = table[table["op"] == "conv3x3"]
    assert (single["dense_algorithm"] == "implicit-gemm").all() and (single["sparse_algorithm"] == "implicit-gemm").all()
    implied = single["dense_tflops_implied"] / single["dense_tflops"]
    assert implied.min() > 1.15 and implied.iloc[1:].min() > 1.55                 # 48/64/96 channels: 1.6-2.0x
    assert table.loc[table["op"] != "conv3x3", "dense_tflops"].isna().all()
