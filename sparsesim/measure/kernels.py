"""Block-sparse Skip-Convolution kernels to time against the dense baseline (the SBNet scheme).

For a conv layer with input x_t, reference input x_{t-1} and reference output z_{t-1} = conv(x_{t-1}),
and a boolean output mask, the block-sparse layer runs as four steps, each timed on its own:
  reduce   r = x_t - x_{t-1}; the output mask max-pooled to B x B blocks; the active block indices
  gather   the residual tiles of the active blocks, halos included ((B-1)*s + d*(k-1) + 1 per side)
  conv     one dense conv over the batch of tiles (no padding: the halo is in the tile)
  scatter  z_t = z_{t-1} + update on the active blocks (clipped at the map's edges)
These are the same steps the cost model charges (sparsesim.workload.traffic) for the `gather-scatter`
strategy. The `fused` strategy (`fused_triton`) runs two: `block_list_step` (the gate's reduction and the
active block list) and one kernel that computes the update of the active blocks in place.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import SparsesimError
from ..workload import halo_tile
from ..workload.synthetic import parse_shape


@dataclass(frozen=True)
class ConvShape:
    cin: int
    cout: int
    k: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    in_h: int = 32
    in_w: int = 32

    @property
    def out_h(self) -> int:
        return (self.in_h + 2 * self.padding - self.dilation * (self.k - 1) - 1) // self.stride + 1

    @property
    def out_w(self) -> int:
        return (self.in_w + 2 * self.padding - self.dilation * (self.k - 1) - 1) // self.stride + 1

    def tile(self, block: int) -> int:
        return halo_tile(block, self.k, self.stride, self.dilation)

    @classmethod
    def parse(cls, text: str) -> "ConvShape":
        """'CIN,COUT,K,S,P,H,W' (dilation 1); an OptionError on `shapes` otherwise."""
        cin, cout, k, stride, pad, h, w = parse_shape(str(text))
        return cls(cin, cout, k, stride, pad, 1, h, w)

    @classmethod
    def from_layer(cls, layer) -> "ConvShape":
        if layer.op != "conv2d" or layer.groups != 1 or layer.kernel_h != layer.kernel_w:
            raise SparsesimError(f"layer {layer.name}: the block-sparse kernels take square, ungrouped Conv2d "
                                 f"layers (got {layer.op}, groups {layer.groups}, kernel {layer.kernel_h}x{layer.kernel_w})")
        return cls(cin=int(layer.in_channels), cout=int(layer.out_channels), k=int(layer.kernel_h),
                   stride=int(layer.stride_h), padding=int(layer.padding_h), dilation=int(layer.dilation_h),
                   in_h=int(layer.in_h), in_w=int(layer.in_w))


@dataclass
class LayerState:
    """Inputs of one timed call: weights, the two frames' inputs, the reference output, the mask."""
    weight: torch.Tensor
    bias: torch.Tensor
    x: torch.Tensor
    x_prev: torch.Tensor
    z_prev: torch.Tensor
    mask: torch.Tensor          # bool (out_h, out_w)
    r_pad: torch.Tensor         # zero-bordered residual buffer, reused across calls as a kernel would
    z_pad: torch.Tensor | None = None   # the output state padded to whole blocks, updated in place
    z_block: int = 0
    thresholds: torch.Tensor | None = None  # fused: per-block gate thresholds realising the mask
    w_gemm: torch.Tensor | None = None      # fused: the weights as the GEMM's (C_in*k*k, C_out) operand
    z_fused: torch.Tensor | None = None     # fused: the output state, updated in place


def make_state(shape: ConvShape, mask: torch.Tensor, device: str, dtype: torch.dtype, seed: int) -> LayerState:
    """Random (never zero) inputs and weights; z_prev is the dense output of x_prev."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda *s: (torch.rand(*s, generator=g) + 0.5).to(device=device, dtype=dtype)  # noqa: E731
    weight = (rand(shape.cout, shape.cin, shape.k, shape.k) - 1.0) / (shape.cin * shape.k * shape.k) ** 0.5
    bias, x_prev = rand(shape.cout), rand(1, shape.cin, shape.in_h, shape.in_w)
    x = x_prev + 0.1 * rand(1, shape.cin, shape.in_h, shape.in_w)
    z_prev = dense_conv(shape, x_prev, weight, bias)
    return LayerState(weight, bias, x, x_prev, z_prev, mask.to(device), x.new_zeros(0))


def _residual_buffer(shape: ConvShape, s: LayerState, block: int) -> torch.Tensor:
    """A zero-bordered buffer wide enough for edge blocks of size `block` (allocated once, reused)."""
    side = lambda n, out: -(-out // block) * block * shape.stride + shape.tile(block) + shape.padding  # noqa: E731
    h, w = max(side(shape.in_h, shape.out_h), shape.in_h + 2 * shape.padding), \
        max(side(shape.in_w, shape.out_w), shape.in_w + 2 * shape.padding)
    if s.r_pad.dim() != 4 or s.r_pad.shape[-2] < h or s.r_pad.shape[-1] < w:
        s.r_pad = s.x.new_zeros(1, shape.cin, h, w)
    return s.r_pad


def dense_conv(shape: ConvShape, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return F.conv2d(x, weight, bias, stride=shape.stride, padding=shape.padding, dilation=shape.dilation)


def reduce_step(shape: ConvShape, s: LayerState, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual over the whole input (into the zero-bordered buffer), and the (n, 2) top-left output
    coordinates of the active blocks."""
    p = shape.padding
    padded = _residual_buffer(shape, s, block)
    torch.sub(s.x, s.x_prev, out=padded[..., p:p + shape.in_h, p:p + shape.in_w])
    blocks = F.max_pool2d(s.mask[None, None].float(), block, block, ceil_mode=True)[0, 0]
    return padded, torch.nonzero(blocks > 0) * block


def gather_step(shape: ConvShape, padded: torch.Tensor, corners: torch.Tensor, block: int) -> torch.Tensor:
    """(n, Cin, tile, tile) residual tiles with halos, read from the zero-bordered residual."""
    tile = shape.tile(block)
    offsets = torch.arange(tile, device=padded.device)
    rows = (corners[:, 0:1] * shape.stride + offsets)[:, :, None]   # (n, tile, 1)
    cols = (corners[:, 1:2] * shape.stride + offsets)[:, None, :]   # (n, 1, tile)
    return padded[0][:, rows, cols].permute(1, 0, 2, 3)             # (n, Cin, tile, tile)


def conv_step(shape: ConvShape, tiles: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return F.conv2d(tiles, weight, None, stride=shape.stride, dilation=shape.dilation)  # (n, Cout, B, B)


def _output_buffer(shape: ConvShape, s: LayerState, block: int) -> torch.Tensor:
    """The reference output z_{t-1}, padded to whole blocks once per block size; updated in place."""
    if s.z_pad is None or s.z_block != block:
        hb, wb = -(-shape.out_h // block) * block, -(-shape.out_w // block) * block
        s.z_pad, s.z_block = F.pad(s.z_prev, (0, wb - shape.out_w, 0, hb - shape.out_h)), block
    return s.z_pad


def scatter_step(shape: ConvShape, s: LayerState, update: torch.Tensor, corners: torch.Tensor,
                 block: int) -> torch.Tensor:
    """z_t = z_{t-1} + update on the active blocks, in place in the state buffer (edges cropped)."""
    out = _output_buffer(shape, s, block)
    offsets = torch.arange(block, device=update.device)
    rows = (corners[:, 0:1] + offsets)[:, :, None]
    cols = (corners[:, 1:2] + offsets)[:, None, :]
    out[0][:, rows, cols] += update.permute(1, 0, 2, 3)
    return out[..., :shape.out_h, :shape.out_w]


def block_sparse(shape: ConvShape, s: LayerState, block: int) -> torch.Tensor:
    padded, corners = reduce_step(shape, s, block)
    tiles = gather_step(shape, padded, corners, block)
    return scatter_step(shape, s, conv_step(shape, tiles, s.weight), corners, block)


def block_thresholds(mask: torch.Tensor, block: int, dtype: torch.dtype) -> torch.Tensor:
    """A per-block gate threshold map that makes exactly the mask's blocks active: -inf on them, +inf
    elsewhere (a gate's statistic is finite), so `block_list_step` reproduces the asked density."""
    blocks = F.max_pool2d(mask[None, None].float(), block, block, ceil_mode=True)[0, 0] > 0
    inf = torch.tensor(float("inf"), dtype=dtype, device=mask.device)
    return torch.where(blocks, -inf, inf)


def block_list_step(shape: ConvShape, s: LayerState, block: int) -> torch.Tensor:
    """The fused strategy's reduction: as a Skip-Conv gate does, read x_t and x_{t-1} whole, take the
    residual's norm summed over channels, max-pooled to the block grid, compare it with the per-block
    thresholds; return the active blocks' top-left output pixels, (n, 2) int32. No residual buffer is
    written: the fused kernel reads x_t and x_{t-1} itself."""
    norm = (s.x - s.x_prev).abs().sum(1, keepdim=True)
    stat = F.adaptive_max_pool2d(norm, tuple(s.thresholds.shape))[0, 0]
    return (torch.nonzero(stat > s.thresholds) * block).to(torch.int32).contiguous()  # nonzero's is column-major


def reference(shape: ConvShape, s: LayerState, block: int) -> torch.Tensor:
    """What the block-sparse layer must compute: the new dense output on active blocks, z_{t-1} elsewhere."""
    active = F.max_pool2d(s.mask[None, None].float(), block, block, ceil_mode=True)
    active = active.repeat_interleave(block, -2).repeat_interleave(block, -1)[..., :shape.out_h, :shape.out_w] > 0
    x64 = lambda t: t.double()  # noqa: E731
    new = dense_conv(shape, x64(s.x), x64(s.weight), x64(s.bias))
    return torch.where(active, new, x64(s.z_prev))
