"""Models a user would bring: factories for `--model python:own_nets:NAME` (the tests' directory is on
sys.path), and a few that fail the ways user code fails."""
from __future__ import annotations

import torch
from torch import nn


class TwoHeads(nn.Module):
    """A small encoder-decoder with two frame-dependent outputs: a map in [0, 1] and auxiliary features."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(8, 4, 4, 2, 1)
        self.head = nn.Conv2d(4, 1, 1)
        self.aux = nn.Conv2d(8, 2, 1)

    def forward(self, frame: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.relu(self.c1(frame))
        y = torch.relu(self.c2(x))
        return torch.sigmoid(self.head(torch.relu(self.up(y)))), self.aux(y)


def two_heads() -> nn.Module:
    torch.manual_seed(0)  # the same weights on every call: the ONNX and TorchScript copies match it
    return TwoHeads().eval()


class PairNet(nn.Module):
    """Two frames in (a frame pair per step), one map out."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(6, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.c2(torch.relu(self.c1(torch.cat([before, after], 1)))))


def pair_net() -> nn.Module:
    torch.manual_seed(1)
    return PairNet().eval()


class Residual(nn.Module):
    """The frame (through a 1x1 conv set to the identity, so gated too) plus a learned correction: an output
    that follows the input, as a restoration net's does."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 3, 3, padding=1)
        self.skip = nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            self.skip.weight.copy_(torch.eye(3).view(3, 3, 1, 1))

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return self.skip(frame) + self.c2(torch.relu(self.c1(frame)))


def residual() -> nn.Module:
    torch.manual_seed(0)
    return Residual().eval()


def raises() -> nn.Module:
    raise ValueError("weights server unreachable")


def not_a_module() -> int:
    return 42


class Picky(nn.Module):
    """Fails at run time on frames of any width but 100, as a model with a fixed reshape would."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return self.c1(frame).reshape(1, 1, -1, 100)


def picky() -> nn.Module:
    return Picky().eval()


class TwoPaths(nn.Module):
    """The frame through an identity 1x1 conv (every skipped change shows in the output) plus a wide 3x3
    branch whose projection is scaled to near zero (its skipped changes barely do): the per-layer search
    should raise the branch's layers, the larger in MACs, and leave the identity path alone."""

    def __init__(self) -> None:
        super().__init__()
        self.skip = nn.Conv2d(3, 3, 1, bias=False)
        self.wide = nn.Conv2d(3, 16, 3, padding=1)
        self.proj = nn.Conv2d(16, 3, 1)
        with torch.no_grad():
            self.skip.weight.copy_(torch.eye(3).view(3, 3, 1, 1))
            self.proj.weight.mul_(1e-3)
            self.proj.bias.zero_()

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        return self.skip(frame) + self.proj(torch.relu(self.wide(frame)))


def two_paths() -> nn.Module:
    torch.manual_seed(0)
    return TwoPaths().eval()
