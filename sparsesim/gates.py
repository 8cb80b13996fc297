"""Skip-Convolution gates (Habibian et al., CVPR 2021): where a conv layer recomputes its output.

A gate looks at the residual r_t = x_t - x_{t-1} of a layer's input and returns a boolean map at the
layer's *output* resolution; the gated layer then computes z_t = z_{t-1} + g * (W * r_t).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .errors import SparsesimError

GATE_KINDS = ("none", "input-norm", "output-norm")
ConvLayer = nn.Conv2d | nn.ConvTranspose2d


@dataclass(frozen=True)
class GateConfig:
    kind: str = "input-norm"
    threshold: float = 0.1      # epsilon; a location is computed where its norm reaches it (>=)
    block: int = 1              # b: decisions are unions over b x b output blocks
    reset_every: int = 0        # K: a dense frame every K frames; 0 = never

    def __post_init__(self) -> None:
        if self.kind not in GATE_KINDS:
            raise SparsesimError(f"unknown gate {self.kind!r}; choose from: {', '.join(GATE_KINDS)}")
        if not math.isfinite(self.threshold) or self.threshold < 0:
            raise SparsesimError(f"--threshold must be a finite number >= 0, got {self.threshold}")
        if self.block < 1:
            raise SparsesimError(f"--gate-block must be >= 1, got {self.block}")
        if self.reset_every < 0:
            raise SparsesimError(f"--reset-every must be >= 0 (0 = never), got {self.reset_every}")

    @property
    def label(self) -> str:
        """Short name used in default trace directory names, e.g. 'input-norm-e0.05-b4'."""
        if self.kind == "none":
            return "dense"
        parts = [self.kind, f"e{self.threshold:g}"]
        if self.block > 1:
            parts.append(f"b{self.block}")
        if self.reset_every:
            parts.append(f"r{self.reset_every}")
        return "-".join(parts)

    def is_reset(self, step: int) -> bool:
        """Frame `step` is computed densely: the first one, and every K-th with a reset period."""
        return step == 0 or self.kind == "none" or (self.reset_every > 0 and step % self.reset_every == 0)


def receptive_mean(norm: torch.Tensor, conv: ConvLayer) -> torch.Tensor:
    """Average of a (N,1,H,W) map over each output location's receptive field, at output resolution.

    For a Conv2d this is avgpool with the conv's own kernel, stride, padding (and dilation); for a
    ConvTranspose2d, the mean over the input pixels that scatter into each output pixel.
    """
    ones = norm.new_ones((1, 1, *conv.kernel_size))
    if isinstance(conv, nn.ConvTranspose2d):
        args = dict(stride=conv.stride, padding=conv.padding, output_padding=conv.output_padding,
                    dilation=conv.dilation)
        total = F.conv_transpose2d(norm, ones, **args)
        count = F.conv_transpose2d(torch.ones_like(norm), ones, **args)
        return total / count.clamp_min(1.0)
    # F.conv2d takes the conv's padding as given (a tuple, 'same' or 'valid').
    return F.conv2d(norm, ones, stride=conv.stride, padding=conv.padding, dilation=conv.dilation) / ones.numel()


def block_union(gate: torch.Tensor, block: int) -> torch.Tensor:
    """Each b x b block (aligned to the top-left corner) is on if any location in it is on."""
    if block == 1:
        return gate
    h, w = gate.shape[-2:]
    pooled = F.max_pool2d(gate.float(), block, block, ceil_mode=True)
    return pooled.repeat_interleave(block, -2).repeat_interleave(block, -1)[..., :h, :w] > 0


def residual_gate(residual: torch.Tensor, conv: ConvLayer, config: GateConfig) -> torch.Tensor:
    """Boolean (N,1,Ho,Wo) map of output locations to recompute, from the input residual."""
    pooled = receptive_mean(residual.abs().mean(dim=1, keepdim=True), conv)
    if config.kind == "output-norm":
        # mean|W| x mean|r| over the receptive field: an upper-bound proxy of the output change.
        pooled = pooled * conv.weight.abs().mean()
    return block_union(pooled >= config.threshold, config.block)
