"""Layer shapes as broadcastable numpy arrays, the implicit-GEMM view of each layer, and the halo.

Arrays have shape (L, 1, 1) so that they broadcast against per-frame, per-block arrays (L, T, Nb).
`halo_tile` is the one place the input tile of an output block is computed: the cost model, the
simulators, the measured kernels and the Timeloop export all read it from here.
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:                 # annotations only: reading SCALE-Sim's files needs no pandas
    import pandas as pd


def halo_tile(block, kernel, stride, dilation):
    """Input rows (or columns) a B-row output block of a conv reads, halo included:
    (B - 1) * stride + dilation * (kernel - 1) + 1. Scalars or numpy arrays."""
    return (block - 1) * stride + dilation * (kernel - 1) + 1


def _col(layers: pd.DataFrame, name: str) -> np.ndarray:
    return layers[name].to_numpy(dtype=np.float64).reshape(-1, 1, 1)


@dataclass(frozen=True)
class Geometry:
    cin: np.ndarray
    cout: np.ndarray
    kh: np.ndarray
    kw: np.ndarray
    sh: np.ndarray
    sw: np.ndarray
    dh: np.ndarray
    dw: np.ndarray
    groups: np.ndarray
    in_h: np.ndarray
    in_w: np.ndarray
    out_h: np.ndarray
    out_w: np.ndarray
    dense_macs: np.ndarray
    transposed: np.ndarray     # bool

    @classmethod
    def from_layers(cls, layers: pd.DataFrame) -> "Geometry":
        cols = {k: _col(layers, c) for k, c in dict(
            cin="in_channels", cout="out_channels", kh="kernel_h", kw="kernel_w", sh="stride_h", sw="stride_w",
            dh="dilation_h", dw="dilation_w", groups="groups", in_h="in_h", in_w="in_w", out_h="out_h",
            out_w="out_w", dense_macs="dense_macs").items()}
        transposed = (layers["op"] == "conv_transpose2d").to_numpy().reshape(-1, 1, 1)
        return cls(transposed=transposed, **cols)

    @property
    def out_pixels(self) -> np.ndarray:
        return self.out_h * self.out_w

    @property
    def in_elems(self) -> np.ndarray:
        return self.cin * self.in_h * self.in_w

    @property
    def out_elems(self) -> np.ndarray:
        return self.cout * self.out_pixels

    @property
    def weight_elems(self) -> np.ndarray:
        return self.cout * self.cin / self.groups * self.kh * self.kw + self.cout  # with bias

    @property
    def macs_per_pixel(self) -> np.ndarray:
        """MACs per output location (all output channels); exact for convs and transposed convs."""
        return self.dense_macs / self.out_pixels

    @property
    def gemm_k(self) -> np.ndarray:
        """Reduction length of the implicit GEMM (M = output pixels, N = out channels)."""
        return self.macs_per_pixel / self.cout

    def _tile_side(self, block: np.ndarray, k: np.ndarray, s: np.ndarray, d: np.ndarray,
                   limit: np.ndarray) -> np.ndarray:
        conv = halo_tile(block, k, s, d)                         # output block -> input rows it reads
        transposed = np.ceil((block - 1 + d * (k - 1)) / s) + 1  # input rows that scatter into it
        return np.minimum(np.where(self.transposed, transposed, conv), limit)

    def tile_in_elems(self, block: np.ndarray, extra_h=0.0, extra_w=0.0, clip: bool = True) -> np.ndarray:
        """Input elements one B x B output block reads, halo included (clipped to the input map); a
        layer inside a fused region computes (B + extra_h) x (B + extra_w) outputs per block. `clip=False`:
        the whole tile, as a gather buffer holds it (an edge block's tile is zero-filled past the map, a
        block larger than the map still has its full tile)."""
        limit = (self.in_h, self.in_w) if clip else (np.inf, np.inf)
        th = self._tile_side(block + extra_h, self.kh, self.sh, self.dh, limit[0])
        tw = self._tile_side(block + extra_w, self.kw, self.sw, self.dw, limit[1])
        return th * tw * self.cin
