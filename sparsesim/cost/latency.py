"""Latency, Eyexam-style: the bound at each step from the peak down, so a user sees where time goes.

Steps (each at least the previous one):
  t_peak        MACs at the hardware's peak rate
  t_parallel    workload/dataflow parallelism: only as many SMs/cores as there are tiles, only the PE
                rows a kernel height fills (row-stationary), only the array cells a fold fills (systolic)
  t_util        array utilisation: tile quantisation and the tail of the last wave (GPU), fill and
                drain per fold and the first weight load (systolic), the PE columns an output-row pass
                fills (row-stationary)
  t_occupancy   block occupancy: blocks are scheduled whole (n x B^2 pixels), edge blocks included
  t_bandwidth   the conv kernel's roofline: max(compute, bytes at its backing level / bandwidth)
then t_overhead adds what block sparsity needs besides the conv: the mask reduction, gather and scatter
passes (memory-bound) and kernel launches or operator dispatches.
"""
from __future__ import annotations

import numpy as np

from ..hardware import Hardware
from .geometry import Geometry
from .traffic import Work, fused, level_bytes, overhead_bytes

STEPS = ("t_peak", "t_parallel", "t_util", "t_occupancy", "t_bandwidth")


def _gpu_steps(geo: Geometry, hw: Hardware, w: Work) -> list[np.ndarray]:
    t = hw.tiling
    per_unit = hw.peak_macs_per_s / hw.units
    slots = hw.units * hw.tiles_per_sm
    n_tiles = lambda m: np.ceil(m / t.tile_m) * np.ceil(geo.cout / t.tile_n)  # noqa: E731
    tile_macs = t.tile_m * t.tile_n * geo.gemm_k

    def waves(m: np.ndarray) -> np.ndarray:
        return np.ceil(n_tiles(m) / slots) * hw.tiles_per_sm * tile_macs / per_unit

    busy = np.maximum(np.minimum(n_tiles(w.pixels), hw.units), 1)
    return [w.macs / hw.peak_macs_per_s, w.macs / (busy * per_unit), waves(w.pixels), waves(w.padded_pixels)]


def _cpu_steps(geo: Geometry, hw: Hardware, w: Work) -> list[np.ndarray]:
    t = hw.tiling
    per_unit = hw.peak_macs_per_s / hw.units
    tiles = np.ceil(w.pixels / t.tile_m) * np.ceil(geo.cout / t.tile_n)
    busy = np.maximum(np.minimum(tiles, hw.units), 1)
    sustained = hw.sustained_flops / 2 / hw.units   # measured conv throughput per core
    lanes = np.ceil(geo.cout / t.reuse_n) * t.reuse_n / geo.cout  # output channels fill whole register blocks
    parallel = w.macs / (busy * per_unit)
    util = w.macs / (busy * sustained) * lanes
    return [w.macs / hw.peak_macs_per_s, parallel, util, util * _padding(w)]


def _systolic_steps(geo: Geometry, hw: Hardware, w: Work) -> list[np.ndarray]:
    folds = np.ceil(geo.gemm_k / hw.rows) * np.ceil(geo.cout / hw.cols)
    fill_drain = hw.rows + hw.cols - 2
    clock = hw.clock_hz
    # the first fold's weights load before anything streams (later loads hide behind the double buffer)
    streamed = lambda m: np.where(w.blocks > 0, folds * (m + fill_drain) + hw.rows, 0.0) / clock  # noqa: E731
    return [w.macs / hw.peak_macs_per_s, folds * w.pixels / clock, streamed(w.pixels), streamed(w.padded_pixels)]


def _spatial_steps(geo: Geometry, hw: Hardware, w: Work, block: np.ndarray | None) -> list[np.ndarray]:
    rows_used = np.where(geo.kh <= hw.rows, np.floor(hw.rows / geo.kh) * geo.kh, hw.rows) / hw.rows
    out_rows = geo.out_h if block is None else np.minimum(block, geo.out_h)  # one pass per block
    cols_used = out_rows / (np.ceil(out_rows / hw.cols) * hw.cols)
    parallel = w.macs / (hw.peak_macs_per_s * rows_used)
    util = parallel / cols_used
    return [w.macs / hw.peak_macs_per_s, parallel, util, util * _padding(w)]


def _padding(w: Work) -> np.ndarray:
    return np.where(w.pixels > 0, w.padded_pixels / np.maximum(w.pixels, 1), 1.0)


def latency(geo: Geometry, hw: Hardware, w: Work, block: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-step bounds, overhead and total latency in seconds; `block` is B for sparse work."""
    if hw.kind == "gpu":
        steps = _gpu_steps(geo, hw, w)
    elif hw.kind == "cpu":
        steps = _cpu_steps(geo, hw, w)
    elif hw.kind == "systolic":
        steps = _systolic_steps(geo, hw, w)
    else:
        steps = _spatial_steps(geo, hw, w, block)
    kernel_bytes, bandwidth, _ = level_bytes(geo, hw, w)
    streaming, indexed = overhead_bytes(geo, hw, w)
    steps.append(np.maximum(steps[-1], kernel_bytes / bandwidth))
    steps = list(np.maximum.accumulate(np.broadcast_arrays(*steps)))
    launches = (1 if fused(hw) else 4) if w.sparse else 1
    dispatch = 0.0 if hw.kind in ("systolic", "spatial") else launches * hw.launch_s
    overhead = streaming / bandwidth + indexed / (hw.gather_bandwidth or bandwidth) + dispatch
    out = dict(zip(STEPS, steps))
    out["t_overhead"] = overhead + np.zeros_like(steps[-1])
    out["latency_s"] = steps[-1] + overhead
    return out
