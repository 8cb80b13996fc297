"""GPU tile scheduler: implicit-GEMM thread blocks scheduled onto SMs in waves.

A block-sparse conv launches one thread block per (M tile of gathered active blocks) x (N tile of
output channels), in the tile the library picks for the layer (`Kind.gemm_tile`). Thread blocks are
dealt to the SMs' resident slots in launch order; a wave is one round of slots, and the last wave
leaves SMs idle (the tail). A tile's time is its own roofline: its MACs at the rate its SM gives it
(shared with the copies resident beside it; a partial tile costs a whole tile) or its bytes at its
share of the bandwidth (the backing level's bandwidth split over the tiles running at once, capped
by what one SM can pull). The kernel strategy's other steps (mask reduction, gather, scatter) are
their own launches: streaming kernels whose bandwidth is capped by how many SMs their thread blocks
occupy. Where a library runs the conv and one of its other algorithms (Winograd) beats the simulated
implicit GEMM, that algorithm runs, as in the cost model (`Kind.conv_choice`), with its extra kernels.
Vectorised over frames: every argument may be an array of per-frame values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..hardware import Hardware, kinds
from ..workload import Geometry, Work, library_conv, traffic

STREAM_BLOCK_BYTES = 64 * 1024   # bytes one thread block of a streaming kernel moves (assumption: 256 threads x 256 B)


@dataclass(frozen=True)
class GpuResult:
    seconds: np.ndarray
    conv_s: np.ndarray
    overhead_s: np.ndarray      # mask reduction, gather, scatter, launches
    tiles: np.ndarray
    waves: np.ndarray
    stalls: dict[str, np.ndarray]   # seconds by cause: tail, bandwidth, launch, overhead_kernels (where the host's
                                    # issuing outlasts the GPU's work, all of it is the launches')
    utilisation: np.ndarray     # MACs / (peak x time)
    dram_bytes: np.ndarray


def _per_sm_bandwidth(hw: Hardware) -> float:
    """What one SM can pull: its shared-memory fill rate where the description has one."""
    buffer = hw.level("buffer")
    return buffer.bandwidth / hw.units if buffer is not None and not buffer.shared else np.inf


def _waves_time(tiles: np.ndarray, slots: int, tile_s: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Makespan of `tiles` equal tiles on `slots` slots (list scheduling = waves when times are equal);
    a tile's time depends on how many tiles share the bandwidth. Returns (makespan, waves)."""
    full, rest = np.divmod(tiles, slots)
    return full * tile_s(np.full_like(tiles, slots)) + np.where(rest > 0, tile_s(np.maximum(rest, 1)), 0.0), \
        full + (rest > 0)


def simulate_gpu(geo: Geometry, hw: Hardware, w: Work) -> GpuResult:
    """Seconds of each layer and frame on a GPU description (arrays broadcast as in the cost model)."""
    kind = kinds.of(hw)
    moved = traffic(geo, hw, w)
    tile = kind.gemm_tile(geo, hw, w)      # the tile the traffic was billed in
    slots = hw.units * np.maximum(tile.resident, 1)
    m_tiles = np.where(w.blocks > 0, np.ceil(w.padded_pixels / tile.m), 0.0)
    tiles = m_tiles * np.ceil(geo.cout / tile.n)
    bandwidth, kernel_bytes = moved.bandwidth, moved.kernel_bytes
    tile_bytes = kernel_bytes / np.maximum(tiles, 1)
    cap = _per_sm_bandwidth(hw)

    def tile_s(running: np.ndarray) -> np.ndarray:
        per_sm = np.ceil(running / hw.units)                 # copies sharing an SM
        share = np.minimum(bandwidth / np.minimum(running, hw.units) * np.minimum(tile.resident, running), cap)
        return np.maximum(tile.tile_seconds(hw, per_sm), tile_bytes / share)

    conv, waves = _waves_time(tiles, slots, tile_s)
    choice = kind.conv_choice(geo, hw, w, np.where(tiles > 0, conv, 0.0), bandwidth, library_conv(hw, w))
    kernel_s, helper_s = choice.seconds, choice.helper_s + np.zeros_like(choice.seconds)
    direct = choice.algorithm == "implicit-gemm"                    # the simulated tiles ran
    indexed_bw = np.minimum(bandwidth, kind.gather_bandwidth(hw) or np.inf)
    over = _stream_kernel_s(moved.step_bytes["mask"], hw, bandwidth, cap) + \
        _stream_kernel_s(moved.step_bytes["gather"], hw, indexed_bw, cap) + \
        _stream_kernel_s(moved.step_bytes["scatter"], hw, indexed_bw, cap)
    issued, exposed = kind.launch_s(hw, moved.total_launches, kernel_s + over, w.kernel is not None and w.kernel.graphs,
                                    choice.extra_kernels)
    seconds = kernel_s + over + exposed
    full = tile.tile_seconds(hw, np.asarray(tile.resident))
    bound = np.maximum(full, tile_bytes / np.minimum(bandwidth / hw.units * tile.resident, cap))
    # Where the host's issuing is the longer, the GPU's work runs under it: the layer's time is the launches'.
    host_bound = issued >= seconds
    gpu = lambda v: np.where(host_bound, 0.0, v + np.zeros_like(seconds))  # noqa: E731
    tiled = lambda v: gpu(np.where(direct, v, 0.0))  # noqa: E731  (another algorithm's time has no tile stalls)
    stalls = {"tail": tiled(np.maximum(kernel_s - helper_s - tiles * bound / slots, 0.0)),
              "bandwidth": tiled(np.maximum(tiles * (bound - full) / slots, 0.0)),
              "launch": np.where(host_bound, issued, exposed) + np.zeros_like(seconds),
              "overhead_kernels": gpu(over + helper_s)}
    return GpuResult(seconds=seconds, conv_s=kernel_s, overhead_s=over + exposed, tiles=tiles, waves=waves,
                     stalls=stalls, utilisation=w.macs / (hw.peak_macs_per_s * np.maximum(seconds, 1e-30)),
                     dram_bytes=kernel_bytes + moved.overhead_bytes)


def _stream_kernel_s(nbytes: np.ndarray, hw: Hardware, bandwidth: np.ndarray, cap: float) -> np.ndarray:
    """A memory-bound kernel: the chip's bandwidth, or its thread blocks' waves where each block
    moves its chunk at what one SM can pull (small kernels cannot fill the chip)."""
    waves = np.ceil(np.ceil(nbytes / STREAM_BLOCK_BYTES) / hw.units)
    per_block = np.minimum(nbytes, STREAM_BLOCK_BYTES) / cap
    return np.where(nbytes > 0, np.maximum(nbytes / bandwidth, waves * per_block), 0.0)
