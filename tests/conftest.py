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


def drifting_faces(n: int, size: tuple[int, int] = (96, 72), seed: int = 0):
    """Cartoon faces (a skin-toned ellipse, dark eyes and mouth: P-Net proposes each at p >= 0.6) drifting
    under a pixel a frame over a dim textured background: P-Net's detections degrade smoothly as the gates
    skip more (at the default gate, detection recall vs dense 1.0 at eps 0.01, 0.94 at 0.1, 0.29 at 2)."""
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    background = rng.random((h, w, 3)) * 60 + 20
    faces = [(24.0, 20.0, 9, 1.0, 0.5), (40.0, 64.0, 11, -0.7, 0.3), (50.0, 34.0, 8, 0.4, -0.8)]  # cy, cx, r, vx, vy
    for t in range(n):
        frame = background.copy()
        for cy, cx, r, vx, vy in faces:
            cy, cx = cy + vy * t, cx + vx * t
            frame[((yy - cy) / (1.3 * r)) ** 2 + ((xx - cx) / r) ** 2 < 1] = [220, 170, 140]
            for ex in (cx - 0.4 * r, cx + 0.4 * r):
                frame[(yy - (cy - 0.3 * r)) ** 2 + (xx - ex) ** 2 < (0.15 * r) ** 2] = 30
            frame[(abs(yy - (cy + 0.5 * r)) < 0.1 * r) & (abs(xx - cx) < 0.35 * r)] = 60
        yield np.clip(frame + rng.standard_normal((h, w, 3)) * 3, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def faces_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("videos") / "faces.mp4"
    video.encode(path, drifting_faces(10))
    return path


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
