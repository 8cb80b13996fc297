"""A measured conv-efficiency table (`sparsesim calibrate` writes it beside a hardware YAML) and its
interpolation: the conv's rate per GEMM shape, M = output pixels, N = output channels, K = C_in x k x k,
for the width of the maps the conv runs on (a layer's map when dense, a block's tile when gathered).

The approach is NeuSight's rather than nn-Meter's: the tile decomposition stays analytical (output
channels fill whole register blocks of `tiling.reuse_n`; the cost model adds that waste itself) and the
table supplies only the efficiency of the padded GEMM, measured on a small regular grid and interpolated
multilinearly in log(width, M, N, K). nn-Meter's kernel predictors (a random forest per kernel type,
thousands of measured configurations per device) would not fit in a five-minute calibration, and with
four features on a grid whose rates vary smoothly in log space an interpolated table is as good and
can be read. Kernel size and stride pick a sub-grid (the nearest one measured): oneDNN runs 1x1 and
strided convs with other kernels, whose rates do not interpolate from 3x3 stride 1.

Outside the grid the rate is held at the edge (a conv larger than the grid's largest runs at its rate),
except below the smallest reduction K: there the time is held instead (the rate falls with K). oneDNN's
kernels vectorise over output channels and loop over input channels, so a conv with fewer input channels
than the smallest calibrated (8) does not run faster per pixel: MTCNN's 3-channel first layer measured
the time of an 8-channel one, 2.7x what a held rate predicted.
Along M the table is made monotone on load: time per unit of work never falls as M grows between grid
points (log-linear interpolation then keeps the latency non-decreasing in the pixels).

The rate is per FLOP of the GEMM with N padded to whole register blocks of the hardware's
`tiling.reuse_n`; a table calibrated with another register block is converted on load (the measured rate
per useful FLOP is what calibrate timed; the padding is the model's).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .spec import HardwareError

AXES = ("width", "gemm_m", "gemm_n", "gemm_k")      # interpolated, in log space
CLASSES = ("kernel", "stride")                      # nearest sub-grid
RATE = "padded_gflops"                              # GFLOP/s per FLOP of the N-padded GEMM
COLUMNS = (*CLASSES, *AXES, "reuse_n", RATE)


@dataclass(frozen=True, eq=False)
class SubGrid:
    kernel: int
    stride: int
    axes: tuple[np.ndarray, ...]    # log of each axis' grid values, ascending
    log_rate: np.ndarray            # log FLOP/s, shape = the axes' lengths


@dataclass(frozen=True, eq=False)
class ConvTable:
    path: str
    reuse_n: int                    # the register block the padded rate was computed with
    grids: tuple[SubGrid, ...] = field(default_factory=tuple)

    def rate(self, kernel, stride, width, m, n, k) -> np.ndarray:
        """FLOP/s per padded FLOP for each conv (arrays broadcast), from its kernel size and stride's
        nearest sub-grid."""
        kernel, stride, *points = np.broadcast_arrays(*(np.asarray(v, np.float64) for v in
                                                        (kernel, stride, width, m, n, k)))
        logs = [np.log(np.maximum(p, 1.0)) for p in points]
        dist = np.stack([np.abs(np.log(kernel / g.kernel)) * 4 + np.abs(np.log(stride / g.stride))
                         for g in self.grids])
        pick = np.argmin(dist, axis=0)
        out = np.zeros(pick.shape)
        k_axis = AXES.index("gemm_k")
        for i, g in enumerate(self.grids):
            chosen = pick == i
            if chosen.any():
                below_k = np.minimum(logs[k_axis] - g.axes[k_axis][0], 0.0)   # time held below the smallest K
                out = np.where(chosen, interpolate(g.axes, g.log_rate, logs) + below_k, out)
        return np.exp(out)


def interpolate(axes: tuple[np.ndarray, ...], values: np.ndarray, points: list[np.ndarray]) -> np.ndarray:
    """Multilinear interpolation on a regular grid, clamped at its edges; `points` broadcast together."""
    lo, frac = [], []
    for a, p in zip(axes, points):
        x = np.clip(p, a[0], a[-1])
        i = np.clip(np.searchsorted(a, x, side="right") - 1, 0, max(len(a) - 2, 0))
        width = (a[i + 1] - a[i]) if len(a) > 1 else np.ones_like(x)
        lo.append(i)
        frac.append(np.where(width > 0, (x - a[i]) / np.where(width > 0, width, 1.0), 0.0) if len(a) > 1
                    else np.zeros_like(x))
    out = np.zeros(np.broadcast(*points).shape)
    for corner in np.ndindex(*(2,) * len(axes)):
        weight, index = 1.0, []
        for c, i, f, a in zip(corner, lo, frac, axes):
            weight = weight * (f if c else 1.0 - f)
            index.append(np.minimum(i + c, len(a) - 1))
        out = out + weight * values[tuple(index)]
    return out


def load(path: Path, reuse_n: int) -> ConvTable:
    """The table at `path` (CSV or parquet); one-line HardwareError naming the file otherwise."""
    import pandas as pd
    try:
        t = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except FileNotFoundError:
        raise HardwareError(f"conv-efficiency table not found: {path}") from None
    except Exception as e:  # pandas and pyarrow raise many types for a file that is not a table
        raise HardwareError(f"{path}: not a conv-efficiency table ({str(e).splitlines()[0][:120]})") from None
    missing = [c for c in COLUMNS if c not in t.columns]
    if missing or t.empty:
        raise HardwareError(f"{path}: not a conv-efficiency table (missing columns {', '.join(missing) or 'none'}, "
                            f"{len(t)} rows)")
    if not (np.isfinite(t[RATE]).all() and (t[RATE] > 0).all() and (t[[*AXES, "reuse_n"]] > 0).all().all()):
        raise HardwareError(f"{path}: every {RATE}, reuse_n and grid value must be a positive number")
    t = t.assign(**{RATE: t[RATE] * _lanes(t["gemm_n"], reuse_n) / _lanes(t["gemm_n"], t["reuse_n"])})
    return ConvTable(str(path), reuse_n, tuple(_grid(path, key, g) for key, g in t.groupby(list(CLASSES))))


def _lanes(n, reuse_n):
    """Output channels the GEMM computes per useful one: N padded to whole register blocks."""
    return np.ceil(n / reuse_n) * reuse_n / n


def _grid(path: Path, key: tuple, g) -> SubGrid:
    axes = [np.sort(g[a].unique()).astype(np.float64) for a in AXES]
    shape = tuple(len(a) for a in axes)
    if len(g) != int(np.prod(shape)) or g.duplicated(list(AXES)).any():
        raise HardwareError(f"{path}: kernel {key[0]} stride {key[1]} is not a full grid over {', '.join(AXES)} "
                            f"({len(g)} rows for {' x '.join(map(str, shape))})")
    ordered = g.sort_values(list(AXES))
    log_rate = np.log(ordered[RATE].to_numpy(np.float64) * 1e9).reshape(shape)
    log_axes = tuple(np.log(a) for a in axes)
    m_axis = AXES.index("gemm_m")
    # time per unit of work (log M - log rate) must not fall as M grows: cap each rate by the one below it
    per_work = np.minimum.accumulate(log_rate - _along(log_axes[m_axis], m_axis, len(shape)), axis=m_axis)
    return SubGrid(int(key[0]), int(key[1]), log_axes, per_work + _along(log_axes[m_axis], m_axis, len(shape)))


def _along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = len(values)
    return values.reshape(shape)
