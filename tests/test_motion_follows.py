"""At the default gate, activity follows the motion: a moving square is computed, the static background skipped
(issue 17, "Must show"). benchmarks/motion_follows.py measures it on a trace; here on a synthetic video whose
moving region is known."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sparsesim.cli import main
from sparsesim.trace import video

from conftest import moving_square

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from motion_follows import changed, motion_activity, on_layer_grid  # noqa: E402


@pytest.fixture(scope="module")
def square_video(tmp_path_factory) -> Path:
    """64x64 (RIFE runs it unpadded), a 12x12 white square moving 3 px a frame over a static noisy background."""
    path = tmp_path_factory.mktemp("motion") / "square.mp4"
    video.encode(path, moving_square(8, size=(64, 64)))
    return path


# RIFE's first layer reads the frames at a quarter scale (8x8 outputs for 64x64 frames): the square is 3 pixels
# there, and the kernel's reach makes the region's border cells 'moving' though their change is faint
@pytest.mark.parametrize("model, computed", [("mtcnn-pnet", 0.8), ("rife", 0.4)])
def test_at_the_defaults_the_moving_square_is_computed_and_the_background_skipped(model, computed, square_video,
                                                                                   tmp_path):
    out = tmp_path / model
    assert main(["trace", str(square_video), "--model", model, "-o", str(out), "-q"]) == 0   # no gate flags
    result = motion_activity(out, 0, change=0.05)
    assert result.steps >= 5
    assert 0.05 < result.moving_share < 0.6           # the region is the square's path, not the frame
    assert result.active_moving > computed            # what moves is computed
    assert result.active_static < 0.05                # what stands still is skipped
    assert result.active_moving > 10 * result.active_static


def test_the_moving_region_is_where_the_frames_differ_reaching_through_the_kernel():
    from sparsesim.trace.format import LayerInfo
    layer = LayerInfo(0, "c", "conv2d", 3, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 16, 16, 8, 8, 0, 0)
    before = torch.zeros(1, 3, 16, 16)
    now = before.clone()
    now[..., 6, 9] = 0.5                               # one pixel moves
    region = on_layer_grid(changed([now], [before], 0.05, layer), layer)
    # input pixels 5..7 x 8..10 (the kernel's reach) fall under output cells 2..3 x 4..5 (stride 2)
    expected = np.zeros((8, 8), bool)
    expected[2:4, 4:6] = True
    assert np.array_equal(region, expected)
    assert not on_layer_grid(changed([now], [before], 0.6, layer), layer).any()   # below the threshold: still
