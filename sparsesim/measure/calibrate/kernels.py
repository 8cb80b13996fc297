"""The torch calls that run each probe on a device (cpu or cuda). Inputs are built once per probe,
outside the timed call; the indexed passes use the advanced indexing of `sparsesim.measure.kernels`'
gather and scatter steps, so their bandwidths are those of the kernels `sparsesim measure` times."""
from __future__ import annotations

import itertools
from typing import Callable

import torch
import torch.nn.functional as F

from .probes import Conv, Copy, Indexed, Overhead, Probe

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class TorchKernels:
    def __init__(self, device: str, dtype: str = "fp32", seed: int = 0) -> None:
        self.device, self.dtype = device, DTYPES[dtype]
        self.gen = torch.Generator().manual_seed(seed)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.gen).to(self.device, self.dtype)

    def make(self, probe: Probe) -> Callable[[], object]:
        maker = _MAKERS[type(probe)]
        if not isinstance(probe, ROTATED):
            return maker(self, probe)
        # Convs and indexed passes rotate input sets as `sparsesim measure` does (MeasureOptions.rotate):
        # timed on one set, a probe ran from warm caches that the measured kernels never see (held-out
        # convs came out 12% and gather-scatter steps 30% slower than calibrated). Indexed passes also
        # follow other data through the caches (`evict`, untimed): `measure` times each step right after
        # another kernel's call, and rotation alone still left gather-scatter 25% slower than calibrated.
        calls = [maker(self, probe) for _ in range(ROTATE)]
        turn = itertools.count()
        run = lambda: calls[next(turn) % ROTATE]()  # noqa: E731
        if isinstance(probe, EVICTED):
            run.before = self.evict
        return run

    def evict(self) -> None:
        """Touch EVICT_BYTES of other data (untimed, before each timed call): a measured kernel follows
        other kernels' calls, which leave its operands out of the per-core caches."""
        if getattr(self, "_evict", None) is None:
            self._evict = torch.zeros(EVICT_BYTES // 4, dtype=torch.float32, device=self.device)
        self._evict.add_(1.0)


def _copy(k: TorchKernels, p: Copy):
    words = p.nbytes * 8 // torch.finfo(k.dtype).bits
    src, dst = k.rand(words), torch.empty(words, device=k.device, dtype=k.dtype)
    return lambda: dst.copy_(src)


def _steps(k: TorchKernels):
    """The four gather-scatter steps of `sparsesim measure` on a layer too small to do work (one channel,
    8x8, one active 4x4 block): their time is the fixed cost of a step, what the cost model charges per
    launch on a CPU (each step is several torch ops)."""
    from ..kernels import ConvShape, conv_step, gather_step, make_state, reduce_step, scatter_step
    shape = ConvShape(1, 1, 3, 1, 1, 1, 8, 8)
    mask = torch.zeros(8, 8, dtype=torch.bool, device=k.device)
    mask[:4, :4] = True
    s = make_state(shape, mask, k.device, k.dtype, 0)

    def run():
        padded, corners = reduce_step(shape, s, 4)
        tiles = gather_step(shape, padded, corners, 4)
        scatter_step(shape, s, conv_step(shape, tiles, s.weight), corners, 4)
    return run


def _overhead(k: TorchKernels, p: Overhead):
    if p.op == "step":
        return _steps(k)
    if p.op == "conv":
        x, w = k.rand(1, 1, 1, 1), k.rand(1, 1, 1, 1)
        return lambda: F.conv2d(x, w)
    src, dst = k.rand(4), torch.empty(4, device=k.device, dtype=k.dtype)
    if p.op == "copy":
        return lambda: dst.copy_(src)

    def launches():
        for _ in range(p.ops):
            dst.add_(src)
    return launches


def _corners(k: TorchKernels, p: Indexed) -> torch.Tensor:
    grid = p.side // p.block
    chosen = torch.randperm(grid * grid, generator=k.gen)[:p.tiles]
    return (torch.stack([chosen // grid, chosen % grid], 1) * p.block).to(k.device)


def _reduce(k: TorchKernels, p: Indexed):
    from ..kernels import ConvShape, make_state, reduce_step
    shape = ConvShape(p.channels, p.channels, 3, 1, 1, 1, p.side, p.side)
    mask = torch.zeros(p.side, p.side, dtype=torch.bool)
    for r, c in _corners(k, p).cpu().tolist():
        mask[r:r + p.block, c:c + p.block] = True
    s = make_state(shape, mask, k.device, k.dtype, 0)
    return lambda: reduce_step(shape, s, p.block)                     # as measure.kernels.reduce_step


def _indexed(k: TorchKernels, p: Indexed):
    if p.op == "reduce":
        return _reduce(k, p)
    corners = _corners(k, p)
    offsets = torch.arange(p.window, device=k.device)
    rows = (corners[:, 0:1] + offsets)[:, :, None]
    cols = (corners[:, 1:2] + offsets)[:, None, :]
    grid = k.rand(p.channels, p.side + p.window - p.block, p.side + p.window - p.block)   # halo'd, as the residual
    if p.op == "gather":
        return lambda: grid[:, rows, cols].permute(1, 0, 2, 3)        # as measure.kernels.gather_step
    update = k.rand(p.tiles, p.channels, p.block, p.block)

    def scatter():
        grid[:, rows, cols] += update.permute(1, 0, 2, 3)               # as measure.kernels.scatter_step
    return scatter


def _conv(k: TorchKernels, p: Conv):
    x = k.rand(p.batch, p.cin, p.input_side(p.height), p.input_side(p.width))
    w = k.rand(p.cout, p.cin, p.kernel, p.kernel)
    return lambda: F.conv2d(x, w, None, stride=p.stride)


_MAKERS = {Copy: _copy, Overhead: _overhead, Indexed: _indexed, Conv: _conv}
ROTATED = (Conv, Indexed)   # copies size their buffers to a cache level on purpose; overheads are tiny
ROTATE = 3                  # input sets, as sparsesim measure's default rotate
EVICT_BYTES = 16 * 2 ** 20   # 4x the per-core L2 of both cores
EVICTED = (Indexed,)         # convs are not: a dense conv's input stays warm between measure's steps
