"""Which implicit-GEMM thread-block tile a GPU library runs a layer with, and how long the tiles take.

cuDNN's autotuner and CUTLASS's profiler time every kernel they have for a problem and keep the
fastest; sparsesim does the same with its own prediction: every threadblock shape of the GPU's
`tiles:` table (real CUTLASS shapes, with their warp counts and pipeline stages) is scored and the
fastest kept, per layer, frame and block size. A tile's SM holds as many copies as its limits allow
(thread blocks, warps, shared memory, registers); an SM issues at full rate only with at least one
warp per scheduler, so a lone small tile runs slower than its share of the peak (SIMT tiles of two
warps reach half an SM's rate on four schedulers). Tiles are dealt round-robin to the SMs; the
busiest SM sets the time.

A description without a table keeps its one stated tile (`tiling.tile_m` x `tiling.tile_n`) with
`tiles_per_sm` resident copies sharing the SM: the model sparsesim had before tile choice.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

ACCUMULATOR_REGS = 2   # assumption: registers per accumulator element (the fp32 accumulator plus operand
                       # fragments and addresses; CUTLASS's 128x128 SIMT SGEMM uses about 128 per thread)


@dataclass(frozen=True)
class Tile:
    m: int            # output pixels per thread block
    n: int            # output channels per thread block
    k: int            # reduction slice per main-loop step (K is padded to a multiple); 0: none
    warps: int        # warps per thread block; 0: the tile saturates its SM (a description without a table)
    stages: int = 1   # shared-memory pipeline stages


@dataclass(frozen=True)
class TileChoice:
    """The chosen tile per configuration: arrays broadcast to (L, T, Nb)."""
    m: np.ndarray
    n: np.ndarray
    resident: np.ndarray   # copies per SM
    seconds: np.ndarray    # compute time of the kernel's tiles at that choice (no memory bound)
    seconds_at: np.ndarray # ... of the same tile for the other pixel count `at` (in-bounds pixels)
    tile_macs: np.ndarray  # MACs of one tile (K padded to the tile's slice)
    warps: np.ndarray      # warps per tile (0: saturates its SM)

    def tile_seconds(self, hw, sharing: np.ndarray) -> np.ndarray:
        """Seconds of one tile while `sharing` copies run on its SM together (at most `resident`)."""
        g = np.clip(sharing, 1, np.maximum(self.resident, 1))
        per_sm = hw.peak_macs_per_s / hw.units
        rate = np.where(self.warps > 0, per_sm * np.minimum(1.0, g * self.warps / hw.part.schedulers),
                        per_sm * g / np.maximum(self.resident, 1))
        return g * self.tile_macs / rate


def resident(tile: Tile, hw) -> int:
    """Copies of a tile one SM holds: the lowest of its thread-block, warp, shared-memory and register limits."""
    p = hw.part
    if tile.warps == 0:
        return p.tiles_per_sm
    smem = hw.level("buffer").size_bytes / hw.units if hw.level("buffer") is not None else np.inf
    limits = [p.max_blocks_per_sm, p.max_warps_per_sm // tile.warps,
              smem // max(tile.stages * (tile.m + tile.n) * tile.k * hw.word_bytes, 1),
              p.registers_per_sm // (ACCUMULATOR_REGS * tile.m * tile.n)]
    return int(max(min(limits), 0))


def _rate(tile: Tile, hw, running: np.ndarray, copies: int) -> np.ndarray:
    """MACs/s one SM delivers to `running` resident tiles together."""
    per_sm = hw.peak_macs_per_s / hw.units
    if tile.warps == 0:
        return per_sm * running / copies      # each copy holds a fixed share of the SM
    return per_sm * np.minimum(1.0, running * tile.warps / hw.part.schedulers)


def tile_seconds(tile: Tile, hw, m: np.ndarray, n: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, int]:
    """(compute seconds of an M x N x K implicit GEMM in this tile, copies per SM); inf where it cannot run."""
    copies = resident(tile, hw)
    if copies < 1:
        return np.full(np.broadcast(m, n, k).shape, np.inf), 0
    k_pad = np.ceil(k / tile.k) * tile.k if tile.k else k
    tile_macs = tile.m * tile.n * k_pad
    tiles = np.ceil(m / tile.m) * np.ceil(n / tile.n)
    per_sm = np.ceil(tiles / hw.units)
    full, rest = np.divmod(per_sm, copies)
    seconds = full * copies * tile_macs / _rate(tile, hw, np.asarray(float(copies)), copies) + \
        np.where(rest > 0, rest * tile_macs / _rate(tile, hw, np.maximum(rest, 1), copies), 0.0)
    return seconds, copies


def choose(tiles: tuple[Tile, ...], hw, m: np.ndarray, n: np.ndarray, k: np.ndarray,
           at: np.ndarray | None = None, memory: Callable[[int, int], np.ndarray] | None = None) -> TileChoice:
    """The fastest tile for each configuration of M pixels (ties go to the earlier, larger tile of the
    table), and what the same tile takes for `at` pixels. `memory(tile_m, tile_n)`: seconds the kernel's
    traffic takes in that tile (narrow tiles re-read the input per N tile): a library times the kernel
    whole, so the pick is the lowest of max(compute, memory). A running minimum over the table."""
    at = m if at is None else at
    shape = np.broadcast(m, n, k, at).shape
    best_time = np.full(shape, np.inf)
    out = {key: np.zeros(shape) for key in ("m", "n", "resident", "seconds", "seconds_at", "tile_macs", "warps")}
    for t in tiles:
        seconds, copies = tile_seconds(t, hw, m, n, k)
        timed = seconds if memory is None else np.maximum(seconds, memory(t.m, t.n))
        better = np.broadcast_to(timed < best_time, shape)
        if not better.any():
            continue
        best_time = np.where(better, timed, best_time)
        values = {"m": t.m, "n": t.n, "resident": copies, "seconds": seconds,
                  "seconds_at": seconds if at is m else tile_seconds(t, hw, at, n, k)[0],
                  "tile_macs": t.m * t.n * (np.ceil(k / t.k) * t.k if t.k else k), "warps": t.warps}
        for key, value in values.items():
            out[key] = np.where(better, value, out[key])
    return TileChoice(**out)
