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


def test_the_single_convs_fall_with_the_map_and_the_errors_are_bounded(table):
    """What the model does meet: the speed-up at 10% density falls from the 400x704 map to the 50x88 one,
    as measured (3.39x -> 0.88x), and no row is off by more than 2x (the old model: up to +100%)."""
    single = table[table["op"] == "conv3x3"]
    assert single["predicted"].iloc[0] > 2.5 * single["predicted"].iloc[-1]
    assert single["predicted"].iloc[-1] < 1.1
    assert table["error"].abs().max() < 0.55


def test_the_block_size_matters_on_the_largest_map(curve):
    """Across B = 2..32 the predicted speed-up varies by far more than noise (halo re-reads, quantisation)."""
    assert curve["speedup"].max() / curve["speedup"].min() > 1.2
    assert curve.loc[curve["speedup"].idxmin(), "block"] == 2                # tiny blocks: halos dominate


@pytest.mark.xfail(strict=True, reason="not met: median |error| 32%, worst 51% (residual unit under-predicted "
                   "29-51%, 200x352 and 100x176 single convs over-predicted 44% and 33%); see the README note")
def test_median_error_within_20_percent_and_every_row_within_30(table):
    s = published_gpu.summary(table)
    assert s["median_abs_error"] <= published_gpu.TARGETS["median"]
    assert s["max_abs_error"] <= published_gpu.TARGETS["worst"]


@pytest.mark.xfail(strict=True, reason="not met: 200x352 is predicted above 400x704 (3.55x vs 3.12x) and 50x88 at "
                   "1.04x; the model has no cause that slows the 48-channel map's sparse conv relative to the 24-channel one")
def test_single_convs_in_measured_order_with_the_smallest_map_below_1x(table):
    s = published_gpu.summary(table)
    assert s["single_conv_in_order"] and s["smallest_map_below_1x"]


@pytest.mark.xfail(strict=True, reason="not met: on the block-aligned top-left square larger blocks only lose halo, "
                   "so B = 32 predicts fastest; within SBNet's sweep (9..29) the best is 19")
def test_best_block_on_the_largest_map_lies_in_sbnets_sweep(curve):
    best = int(curve.loc[curve["speedup"].idxmax(), "block"])
    assert 9 <= best <= 29
