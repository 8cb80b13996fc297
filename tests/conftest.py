from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sparsesim.trace import video

torch.set_num_threads(1)  # steadier timings and bit-stable results on a 2-core machine


def moving_square(n: int, size: tuple[int, int] = (64, 48), step: int = 3, seed: int = 0):
    """A static noisy background with a bright square moving right: real residuals, real stillness."""
    w, h = size
    background = (np.random.default_rng(seed).random((h, w, 3)) * 200).astype(np.uint8)
    for t in range(n):
        frame = background.copy()
        x = (4 + step * t) % (w - 12)
        frame[h // 4: h // 4 + 12, x: x + 12] = 255
        yield frame


@pytest.fixture(scope="session")
def small_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("videos") / "square.mp4"
    video.encode(path, moving_square(10))
    return path


@pytest.fixture(scope="session")
def video_64(tmp_path_factory) -> Path:
    """64x64 frames: RIFE needs sides that are multiples of 32 to run without padding."""
    path = tmp_path_factory.mktemp("videos") / "square64.mp4"
    video.encode(path, moving_square(6, size=(64, 64)))
    return path


@pytest.fixture(scope="session")
def small_trace(tmp_path_factory, small_video) -> Path:
    """An MTCNN P-Net trace of the small video (5 layers x 10 frames); tests read it, never write it."""
    from sparsesim.cli import main
    path = tmp_path_factory.mktemp("trace") / "t"
    # the Skip-Conv gate named: the estimate/kernel tests that read this trace were written for its masks
    assert main(["trace", str(small_video), "--model", "mtcnn-pnet", "--gate", "input-norm", "--threshold", "0.05",
                 "-o", str(path), "-q"]) == 0
    return path
