"""The conv of a sparse delta over the output rows it reaches only, in bands of whole rows.

A delta layer's update W * d_p is exactly zero outside the rows its propagated locations reach through the
kernel; where those rows are few, convolving bands of them (each with its halo of input rows) instead of the
whole map saves the dense conv's work on the rest. Bands are whole rows so that each is one library conv on
a contiguous slice; a row band's floats may differ from the whole map's in the last bit where the library
picks another algorithm for the smaller shape (deterministic all the same).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROW_SHARE = 0.75   # above this share of reached output rows one whole-map conv is cheaper than the bands
GAP_ROWS = 4       # bands closer than this are merged: each band is a call and re-reads its halo


def row_runs(rows: np.ndarray, gap: int = GAP_ROWS) -> list[tuple[int, int]]:
    """[start, end) runs of True in `rows`, merging runs separated by fewer than `gap` False rows."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], rows.astype(np.int8), [0]))))
    starts, ends = edges[0::2], edges[1::2]
    split = starts[1:] - ends[:-1] >= gap   # a gap this wide ends one band and starts the next
    return list(zip(starts[np.r_[True, split]].tolist(), ends[np.r_[split, True]].tolist())) if starts.size else []


def banded(conv: nn.Module) -> bool:
    """Convs whose rows can be computed apart: a plain (not transposed) conv with numeric zero padding."""
    return (isinstance(conv, nn.Conv2d) and conv.padding_mode == "zeros" and isinstance(conv.padding, tuple))


def add_conv_rows(conv: nn.Conv2d, delta: torch.Tensor, reach: torch.Tensor,
                  prev: torch.Tensor) -> torch.Tensor | None:
    """prev + W * delta (no bias), computed on the output rows `reach` (bool N,1,Ho,Wo) touches; None where
    the bands would not pay (then the caller convolves the whole map)."""
    rows = reach.any(dim=3).any(dim=0).view(-1).cpu().numpy()   # a few hundred booleans, wherever the map is
    if rows.mean() > ROW_SHARE:
        return None
    (s, _), (p, pw), (d, _), (k, _) = conv.stride, conv.padding, conv.dilation, conv.kernel_size
    height = delta.shape[2]
    out = prev.clone()
    for r0, r1 in row_runs(rows):
        first, last = r0 * s - p, (r1 - 1) * s - p + (k - 1) * d   # input rows the band reads (inclusive)
        lo, hi = max(first, 0), min(last, height - 1)
        slab = delta[:, :, lo:hi + 1]
        if first < lo or last > hi:   # the conv's own zero padding above and below the map
            slab = F.pad(slab, (0, 0, lo - first, last - hi))
        out[:, :, r0:r1].add_(F.conv2d(slab, conv.weight, None, conv.stride, (0, pw), conv.dilation, conv.groups))
    return out
