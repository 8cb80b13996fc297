"""The `fused` block-sparse Skip-Convolution kernel in Triton: one launch per layer.

Implicit GEMM over the active blocks' pixels only: row m of the GEMM is output pixel
(corner[m // B^2] + (m % B^2 // B, m % B)) of an active B x B block, its K = C_in * k * k columns are
read in place from x_t and x_{t-1} (halo included, the zero padding by masked loads: no gather buffer,
no residual buffer), N is the output channels. Each program adds its (BLOCK_M x BLOCK_N) tile of
W * (x_t - x_{t-1}) to the output state z in place, so z_t = z_{t-1} + update on the active blocks and
z_{t-1} elsewhere. Every output element belongs to one block and one N tile: no two programs write it.

Packing pixels of consecutive blocks into one M tile keeps tiles full for any block size (B=2 gives
4 pixels per block; a tile per block would waste 15 of 16 rows). fp32 runs the dot in IEEE fp32 (no
TF32: the fair baseline), fp16/bf16 multiply in their type and accumulate in fp32.

CUDA only in use; on a CPU the kernel runs under Triton's interpreter (`TRITON_INTERPRET=1` set before
this module is imported), which the tests use to check it against the float64 dense reference.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK_M, BLOCK_K = 64, 32   # pixels x reduction per step; BLOCK_N follows C_out (16..128)
SIZES = ("n_pixels", "cin", "cout", "in_h", "in_w", "out_h", "out_w", "block")


@triton.jit(do_not_specialize=SIZES)   # one compiled kernel for all map sizes and block counts
def _fused_update(x_ptr, xp_ptr, w_ptr, z_ptr, corners_ptr,
                  n_pixels, cin, cout, in_h, in_w, out_h, out_w, block,
                  k: tl.constexpr, stride: tl.constexpr, padding: tl.constexpr, dilation: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, PRECISION: tl.constexpr):
    p = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)      # active pixel index
    n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)      # output channel
    p_ok, n_ok = p < n_pixels, n < cout
    area = block * block
    b, local = p // area, p % area
    oh = tl.load(corners_ptr + 2 * b, mask=p_ok, other=0) + local // block
    ow = tl.load(corners_ptr + 2 * b + 1, mask=p_ok, other=0) + local % block
    m_ok = p_ok & (oh < out_h) & (ow < out_w)                     # edge blocks are cropped
    ih0, iw0 = oh * stride - padding, ow * stride - padding
    reduction = cin * k * k
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, reduction, BLOCK_K):
        kk = k0 + tl.arange(0, BLOCK_K)
        kk_ok = kk < reduction
        c, tap = kk // (k * k), kk % (k * k)
        ih = ih0[:, None] + (tap // k * dilation)[None, :]
        iw = iw0[:, None] + (tap % k * dilation)[None, :]
        ok = m_ok[:, None] & kk_ok[None, :] & (ih >= 0) & (ih < in_h) & (iw >= 0) & (iw < in_w)
        offset = (c[None, :] * in_h + ih) * in_w + iw
        residual = tl.load(x_ptr + offset, mask=ok, other=0.0) - tl.load(xp_ptr + offset, mask=ok, other=0.0)
        w = tl.load(w_ptr + kk[:, None] * cout + n[None, :], mask=kk_ok[:, None] & n_ok[None, :], other=0.0)
        acc += tl.dot(residual, w, input_precision=PRECISION)
    out = (n[None, :] * out_h + oh[:, None]) * out_w + ow[:, None]
    ok = m_ok[:, None] & n_ok[None, :]
    z = tl.load(z_ptr + out, mask=ok, other=0.0)
    tl.store(z_ptr + out, (z.to(tl.float32) + acc).to(z_ptr.dtype.element_ty), mask=ok)


def gemm_weight(weight: torch.Tensor) -> torch.Tensor:
    """(C_out, C_in, k, k) -> the GEMM's (C_in * k * k, C_out) operand, contiguous (prepared once per
    layer, as cuDNN prepares its filters)."""
    return weight.reshape(weight.shape[0], -1).t().contiguous()


def constants(k: int, stride: int, padding: int, dilation: int, cout: int, dtype: torch.dtype) -> dict:
    """The compile-time parameters of one launch: the conv's geometry, the tiles, and the dot's precision
    (IEEE fp32 for fp32, so no TF32; fp16/bf16 use the tensor cores whatever it says)."""
    return dict(k=k, stride=stride, padding=padding, dilation=dilation, BLOCK_M=BLOCK_M,
                BLOCK_N=max(16, min(128, triton.next_power_of_2(cout))), BLOCK_K=BLOCK_K,
                PRECISION="ieee" if dtype == torch.float32 else "tf32")


def fused_update(x: torch.Tensor, x_prev: torch.Tensor, w_gemm: torch.Tensor, z: torch.Tensor,
                 corners: torch.Tensor, block: int, k: int, stride: int, padding: int, dilation: int) -> torch.Tensor:
    """z += W * (x - x_prev) on the active B x B blocks whose top-left output pixels are `corners`
    ((n, 2) int32); x, x_prev: (1, C_in, H, W); z: (1, C_out, H_out, W_out), all contiguous; z is updated in
    place."""
    if not all(t.is_contiguous() for t in (x, x_prev, w_gemm, z, corners)):
        raise ValueError("fused_update reads its tensors by flat offsets: all must be contiguous")
    _, cin, in_h, in_w = x.shape
    _, cout, out_h, out_w = z.shape
    n_pixels = corners.shape[0] * block * block
    if n_pixels == 0:
        return z
    const = constants(k, stride, padding, dilation, cout, z.dtype)
    grid = (triton.cdiv(n_pixels, const["BLOCK_M"]), triton.cdiv(cout, const["BLOCK_N"]))
    _fused_update[grid](x, x_prev, w_gemm, z, corners, n_pixels, cin, cout, in_h, in_w, out_h, out_w, block, **const)
    return z
