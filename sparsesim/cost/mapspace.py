"""The mapspace of one conv layer on a loop-nest machine (`sparsesim.hardware.looparch`): every perfect
factorisation of the layer's seven dimensions over the levels' temporal and spatial loops that the
architecture's constraints allow, pruned by spatial fanout and buffer capacity as it is built.

A candidate is a row of `factors`, shape (candidates, levels, 2, 7): [:, level, 0, dim] the temporal
factor, [:, level, 1, dim] the spatial one, dims in `DIMS` order (Timeloop's CNN-layer: C, M, R, S,
N, P, Q). Candidates are built one dimension at a time with numpy, so the search visits whole
arrays, not Python loops over mappings.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import SparsesimError
from ..hardware.looparch import DIMS, LoopArch

D = {d: i for i, d in enumerate(DIMS)}
T, SP = 0, 1
RELEVANT = {"Weights": ("C", "M", "R", "S"), "Inputs": ("N", "C", "R", "S", "P", "Q"), "Outputs": ("N", "M", "P", "Q")}
MAX_CANDIDATES = 2_000_000


@dataclass(frozen=True)
class Problem:
    """A conv layer as Timeloop's CNN-layer problem: R/P along the width, S/Q along the height."""
    C: int
    M: int
    R: int
    S: int
    N: int
    P: int
    Q: int
    Wstride: int = 1
    Hstride: int = 1
    Wdilation: int = 1
    Hdilation: int = 1

    @classmethod
    def from_layer(cls, layer) -> "Problem":
        return cls(C=int(layer.in_channels // layer.groups), M=int(layer.out_channels), R=int(layer.kernel_w),
                   S=int(layer.kernel_h), N=1, P=int(layer.out_w), Q=int(layer.out_h),
                   Wstride=int(layer.stride_w), Hstride=int(layer.stride_h),
                   Wdilation=int(layer.dilation_w), Hdilation=int(layer.dilation_h))

    def sizes(self) -> np.ndarray:
        return np.array([getattr(self, d) for d in DIMS], dtype=np.int64)

    @property
    def macs(self) -> int:
        return int(np.prod(self.sizes()))


def tile_words(ext: np.ndarray, space: str, p: Problem) -> np.ndarray:
    """Words of a data space's tile given the extent of each dimension (..., 7)."""
    e = {d: ext[..., D[d]] for d in DIMS}
    if space == "Weights":
        return e["C"] * e["M"] * e["R"] * e["S"]
    if space == "Outputs":
        return e["N"] * e["M"] * e["P"] * e["Q"]
    width = (e["P"] - 1) * p.Wstride + (e["R"] - 1) * p.Wdilation + 1
    height = (e["Q"] - 1) * p.Hstride + (e["S"] - 1) * p.Hdilation + 1
    return e["N"] * e["C"] * width * height


@lru_cache(maxsize=4096)
def factorizations(n: int, k: int) -> np.ndarray:
    """All ordered k-tuples of positive integers whose product is n, shape (count, k)."""
    if k == 0:
        return np.ones((1 if n == 1 else 0, 0), dtype=np.int64)
    if k == 1:
        return np.array([[n]], dtype=np.int64)
    rows = [np.column_stack([np.full(len(rest), d), rest]) for d in range(1, n + 1) if n % d == 0
            for rest in [factorizations(n // d, k - 1)] if len(rest)]
    return np.vstack(rows)


def _slots(arch: LoopArch, dim: str) -> list[tuple[int, int]]:
    """(level, temporal|spatial) loops where a dimension may take a factor other than 1."""
    out = []
    for i, s in enumerate(arch.stores):
        if s.temporal.fixed(dim) != 1:
            out.append((i, T))
        if s.fanout_x * s.fanout_y > 1 and s.spatial.fixed(dim) != 1:
            out.append((i, SP))
    return out


def _fanouts(arch: LoopArch, f: np.ndarray) -> np.ndarray:
    """Candidates whose spatial loops fit each level's X and Y fanout."""
    ok = np.ones(len(f), dtype=bool)
    for i, s in enumerate(arch.stores):
        order = s.spatial.permutation or "".join(DIMS)
        x_dims = [D[d] for d in order[:s.spatial.split]]
        y_dims = [D[d] for d in order[s.spatial.split:]]
        x = np.prod(f[:, i, SP, x_dims], axis=1) if x_dims else 1
        y = np.prod(f[:, i, SP, y_dims], axis=1) if y_dims else 1
        ok &= (x <= s.fanout_x) & (y <= s.fanout_y)
    return ok


def inner_extents(f: np.ndarray) -> np.ndarray:
    """Extent of each dimension inside each level's storage (its own loops and everything below):
    (candidates, levels, 7)."""
    per_level = f[:, :, T, :] * f[:, :, SP, :]
    return np.flip(np.cumprod(np.flip(per_level, axis=1), axis=1), axis=1)


def _capacity(arch: LoopArch, p: Problem, f: np.ndarray) -> np.ndarray:
    ext = inner_extents(f)
    ok = np.ones(len(f), dtype=bool)
    for i, s in enumerate(arch.stores):
        if np.isfinite(s.words) and s.keeps:
            ok &= sum(tile_words(ext[:, i], space, p) for space in s.keeps) <= s.words
    return ok


def enumerate_mappings(arch: LoopArch, p: Problem) -> np.ndarray:
    """Every valid mapping's factors, (candidates, levels, 2, 7)."""
    levels = len(arch.stores)
    f = np.ones((1, levels, 2, len(DIMS)), dtype=np.int64)
    for dim in ("N", "R", "S", "P", "Q", "C", "M"):       # small, fixed dimensions first: earlier pruning
        size, slots = int(getattr(p, dim)), _slots(arch, dim)
        options = factorizations(size, len(slots)) if slots else np.ones((1 if size == 1 else 0, 0), np.int64)
        if not len(options):
            raise SparsesimError(f"{arch.name}: dimension {dim}={size} has no loop it may be mapped to")
        if len(f) * len(options) > MAX_CANDIDATES:
            raise SparsesimError(f"{arch.name}: the mapspace of {p} is too large to enumerate "
                                 f"({len(f) * len(options):,} partial mappings)")
        f = np.repeat(f, len(options), axis=0)
        chosen = np.tile(options, (len(f) // len(options), 1))
        for j, (level, kind) in enumerate(slots):
            f[:, level, kind, D[dim]] = chosen[:, j]
        f = f[_fanouts(arch, f) & _capacity(arch, p, f)]
        if not len(f):
            raise SparsesimError(f"{arch.name}: no mapping of {p} fits the array's fanout and buffers")
    return f
