"""MTCNN's P-Net (Zhang et al. 2016), run fully convolutionally on whole frames.

Weights: facenet-pytorch==2.6.0 `facenet_pytorch/data/pnet.pt` (MIT), installed with --no-deps.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .registry import ModelSpec, package_file, register


class PNet(nn.Module):
    """Same layer names as facenet_pytorch.models.mtcnn.PNet, so its state dict loads unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)  # box regression, face prob


def run(model: nn.Module, frames: Sequence[torch.Tensor]) -> torch.Tensor:
    (frame,) = frames
    _, prob = model((frame * 255.0 - 127.5) * 0.0078125)  # MTCNN's input normalisation
    return prob[:, 1:2]  # face probability map


register(ModelSpec(
    name="mtcnn-pnet",
    description="MTCNN P-Net face proposal network on whole frames (facenet-pytorch 2.6.0 weights)",
    frames_per_step=1,
    build=PNet,
    weights=lambda: package_file("facenet_pytorch", "data/pnet.pt",
                                 "pip install --no-deps facenet-pytorch==2.6.0"),
    run=run,
    task="detection",
))
