"""Real-ESRGAN compact from its ncnn files: an independent reading gives the same output."""
from __future__ import annotations

import struct

import numpy as np
import torch
import torch.nn.functional as F

from sparsesim.trace import models, video
from sparsesim.trace.models.realesr import weights_file
from sparsesim.trace.tracer import to_tensor


def independent_forward(x: torch.Tensor) -> torch.Tensor:
    """Walk the .bin with struct: 18 fp16 convs with fp32 biases, PReLUs between; no sparsesim code."""
    blob = weights_file().read_bytes()
    pos = 0

    def read(fmt: str, n: int) -> np.ndarray:
        nonlocal pos
        values = struct.unpack_from(f"<{n}{fmt}", blob, pos)
        pos += struct.calcsize(f"<{n}{fmt}")
        return np.array(values, dtype=np.float32)

    shapes = [(64, 3)] + [(64, 64)] * 16 + [(48, 64)]
    out = x.double()
    for i, (cout, cin) in enumerate(shapes):
        assert struct.unpack_from("<I", blob, pos)[0] == 0x01306B47
        pos += 4
        w = torch.from_numpy(read("e", cout * cin * 9).reshape(cout, cin, 3, 3)).double()
        b = torch.from_numpy(read("f", cout)).double()
        out = F.conv2d(out, w, b, padding=1)
        if i < len(shapes) - 1:
            slope = torch.from_numpy(read("f", cout)).double().view(1, -1, 1, 1)
            out = torch.where(out >= 0, out, out * slope)
    assert pos == len(blob)
    return F.pixel_shuffle(out, 4) + F.interpolate(x.double(), scale_factor=4, mode="nearest")


@torch.inference_mode()
def test_sr_output_matches_an_independent_reading_of_the_ncnn_weights():
    sr = models.load("realesr-compact")
    x = torch.rand(1, 3, 20, 28, generator=torch.Generator().manual_seed(0))
    ours, reference = sr.module(x).double(), independent_forward(x)
    assert float((ours - reference).norm() / reference.norm()) < 1e-3  # fp16 weights, fp32 arithmetic


@torch.inference_mode()
def test_trained_weights_upscale_better_than_nearest():
    sr = models.load("realesr-compact")
    frame = to_tensor(next(video.frames(video.resolve_video("sample:carphone_pristine"))), 4, "cpu")
    small = F.avg_pool2d(frame, 4)
    mse = lambda a: float(torch.mean((a - frame) ** 2))  # noqa: E731
    assert mse(sr.spec.run(sr.module, [small])) < mse(F.interpolate(small, scale_factor=4, mode="nearest"))
