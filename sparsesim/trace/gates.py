"""Gates: where a conv layer recomputes its output.

Skip-Convolution (Habibian et al., CVPR 2021): a gate looks at the residual r_t = x_t - x_{t-1} of a
layer's input and returns a boolean map at the layer's *output* resolution; the gated layer then
computes z_t = z_{t-1} + g * (W * r_t).

Accumulated deltas (DeltaCNN, Parger et al., CVPR 2022): the delta d = x_t - x_ref against the input
*as last propagated* is thresholded per input location; propagated locations update x_ref, the rest
stays pending and accumulates; the output mask is the propagated input mask dilated through the kernel.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SparsesimError
from .gate_config import GATE_KINDS, GateConfig  # noqa: F401  (re-exported: the gates' settings)

ConvLayer = nn.Conv2d | nn.ConvTranspose2d


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


@dataclass(frozen=True)
class LearnedGate:
    """A trained Skip-Convolution Gumbel gate: a 1-channel conv over |r_t| with the layer's geometry;
    at inference a location is computed where its logit is positive (sigmoid > 0.5)."""
    weight: torch.Tensor       # (1, C_in, kh, kw) for a Conv2d; (C_in, 1, kh, kw) for a ConvTranspose2d
    bias: torch.Tensor         # (1,)

    def logits(self, residual: torch.Tensor, conv: ConvLayer) -> torch.Tensor:
        x, w, b = residual.abs(), self.weight.to(residual), self.bias.to(residual)
        if isinstance(conv, nn.ConvTranspose2d):
            return F.conv_transpose2d(x, w, b, conv.stride, conv.padding, conv.output_padding, 1, conv.dilation)
        return F.conv2d(x, w, b, conv.stride, conv.padding, conv.dilation)


def load_learned_gates(path: str, layers: dict[str, ConvLayer]) -> dict[str, LearnedGate]:
    """Gates by layer name from a state dict: `<layer>.weight` and `<layer>.bias`, or Qualcomm Skip-Conv's
    `<layer>.gate.gate_network.0.weight` naming. Every gated layer needs one; names and shapes are checked."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise SparsesimError(f"gate checkpoint not found: {path}") from None
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        raise SparsesimError(f"cannot read gate checkpoint {path}: {(str(e).splitlines() or [type(e).__name__])[0][:160]}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise SparsesimError(f"gate checkpoint {path} holds no state dict")
    gates: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        # A gate is on where its logit is > 0: a NaN weight turns it off silently, text cannot be convolved.
        if not isinstance(key, str) or not isinstance(value, torch.Tensor) or not value.is_floating_point() \
                or not torch.isfinite(value).all():
            raise SparsesimError(f"gate checkpoint {path}: {str(key)[:60]} is not a tensor of finite numbers")
        name = key.removeprefix("module.").replace(".gate.gate_network.0", "")
        layer, _, part = name.rpartition(".")
        gates.setdefault(layer, {})[part] = value
    missing = sorted(set(layers) - set(gates))
    unexpected = sorted(set(gates) - set(layers))
    wrong = []
    for name in sorted(set(layers) & set(gates)):
        conv, g = layers[name], gates[name]
        transposed = isinstance(conv, nn.ConvTranspose2d)
        expected = (conv.in_channels, 1, *conv.kernel_size) if transposed else (1, conv.in_channels, *conv.kernel_size)
        got = tuple(g.get("weight", torch.empty(0)).shape)
        if got != expected or tuple(g.get("bias", torch.empty(0)).shape) != (1,):
            wrong.append(f"{name} {got} != {expected}")
    problems = [f"{label}: {', '.join(items[:4])}{' and more' if len(items) > 4 else ''}" for label, items in
                (("no gate for layers", missing), ("gates for unknown layers", unexpected), ("wrong shapes", wrong))
                if items]
    if problems:
        raise SparsesimError(f"gate checkpoint {path} does not fit the model: {'; '.join(problems)}")
    return {name: LearnedGate(gates[name]["weight"], gates[name]["bias"]) for name in layers}


def residual_gate(residual: torch.Tensor, conv: ConvLayer, config: GateConfig,
                  learned: LearnedGate | None = None, threshold: float | None = None) -> torch.Tensor:
    """Boolean (N,1,Ho,Wo) map of output locations to recompute, from the input residual. `threshold` is
    the layer's effective one (see effective_threshold); None reads config.threshold as absolute."""
    if learned is not None:
        return block_union(learned.logits(residual, conv) > 0, config.block)
    pooled = receptive_mean(residual.abs().mean(dim=1, keepdim=True), conv)
    if config.kind == "output-norm":
        # mean|W| x mean|r| over the receptive field: an upper-bound proxy of the output change.
        pooled = pooled * conv.weight.abs().mean()
    return block_union(pooled >= (config.threshold if threshold is None else threshold), config.block)


def activation_scale(x: torch.Tensor, conv: ConvLayer, config: GateConfig) -> float:
    """The scale a relative epsilon is a fraction of: mean |x| of the layer's input, times mean |W| for
    the output-norm gate (whose statistic is an output-change proxy: the same factor on both sides)."""
    scale = float(x.detach().abs().mean())
    return scale * float(conv.weight.detach().abs().mean()) if config.kind == "output-norm" else scale


def effective_threshold(x: torch.Tensor, conv: ConvLayer, config: GateConfig,
                        multiplier: float = 1.0) -> tuple[float, float]:
    """(scale, threshold) of a layer from its input `x` on a dense frame: epsilon (times the layer's
    per-layer multiplier, GateConfig.multiplier) times the layer's own activation scale in relative mode,
    without the scale in absolute mode (scale still recorded)."""
    scale = activation_scale(x, conv, config)
    eps = config.threshold * multiplier
    return scale, eps * scale if config.relative else eps


@dataclass(frozen=True)
class DeltaStep:
    """One frame of an accumulated-delta layer, at input resolution."""
    propagated: torch.Tensor   # d masked to the propagated locations (what the layer convolves)
    in_mask: torch.Tensor      # bool (N,1,H,W): input locations propagated
    reference: torch.Tensor    # the new x_ref: x where propagated, the old reference elsewhere


def delta_step(x: torch.Tensor, reference: torch.Tensor, threshold: float, in_place: bool = False) -> DeltaStep:
    """Threshold the accumulated delta d = x - x_ref per input location on its channel-mean |d| (the
    norm Skip-Conv's input-norm gate uses, so the two semantics differ only in their reference; DeltaCNN's
    kernels take the max over channels, which propagates more). x_ref moves to x only where propagated,
    so the pending delta x - x_ref carries every change not yet sent, however slowly it grew.
    `in_place`: the caller owns `reference` and it becomes the new one (no full-size copy per frame)."""
    delta = x - reference
    in_mask = delta.abs().mean(dim=1, keepdim=True) >= threshold
    moved = select_(reference if in_place else reference.clone(), x, in_mask)
    return DeltaStep(delta.mul_(in_mask), in_mask, moved)   # delta is ours: masked where it lies


_SAME_WIDTH_INT = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def select_(dst: torch.Tensor, src: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """dst = where(mask, src, dst), in place and bit for bit, as integer operations on the floats' bits
    (dst ^= (dst ^ src) & -mask). torch.where branches per element on CPU: on a mixed mask it ran 4-6x
    slower than these three passes (30% of a 32x360x640 map: 20-39 ms against 5-9 ms)."""
    bits, other = dst.view(_SAME_WIDTH_INT[dst.element_size()]), src.view(_SAME_WIDTH_INT[src.element_size()])
    flips = torch.bitwise_xor(bits, other).bitwise_and_(mask.to(bits.dtype).neg_())
    bits.bitwise_xor_(flips)
    return dst


def dilate_mask(in_mask: torch.Tensor, conv: ConvLayer) -> torch.Tensor:
    """Output locations a set of input locations reaches through the conv's kernel (its stride, padding,
    dilation; scattered likewise for a transposed conv): bool (N,1,Ho,Wo)."""
    ones = in_mask.new_ones((1, 1, *conv.kernel_size), dtype=torch.float32)
    m = in_mask.float()
    if isinstance(conv, nn.ConvTranspose2d):
        reach = F.conv_transpose2d(m, ones, stride=conv.stride, padding=conv.padding,
                                   output_padding=conv.output_padding, dilation=conv.dilation)
    else:
        reach = F.conv2d(m, ones, stride=conv.stride, padding=conv.padding, dilation=conv.dilation)
    return reach > 0
