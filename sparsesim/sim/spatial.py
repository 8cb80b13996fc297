"""Spatial array (Eyeriss-like row-stationary): active blocks scheduled over PE sets.

A PE set is kh PE rows (one filter row each) x e PE columns (one output row each, e = min(B, cols)):
it computes one B x B output block, every PE sliding its filter row along B outputs for each
(input, output) channel pair, then the kh partial sums of a column are accumulated down the set
(fill and drain: kh + e - 1 cycles per block). The array holds floor(rows/kh) x floor(cols/e) sets.
Eyeriss maps work to sets at compile time: with the `static` schedule each set owns a contiguous
range of the layer's blocks (raster order), so a mask whose active blocks cluster in one region keeps
one set busy while the others idle (load imbalance); `dynamic` deals active blocks to free sets.
A PE's scratchpad holds its filter row for the unit's input channels when it can; otherwise the
channels go in chunks and partial sums spill to the global buffer and back once per extra chunk.
Each set is fed by the global buffer over the NoC at an even share of its bandwidth, and the layer's
DRAM traffic (the cost model's) overlaps compute through double buffering, except the first pass's
weights, which arrive before it starts (behind the previous layer where the array prefetches them:
`sim.run` carries that). The dense baseline is the same machine with every block active.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..hardware import Hardware, kinds
from ..workload import Geometry, Work, traffic


@dataclass(frozen=True)
class SpatialResult:
    cycles: np.ndarray
    seconds: np.ndarray
    sets: int
    busiest: np.ndarray          # active blocks on the busiest set
    stalls: dict[str, np.ndarray]   # cycles by cause: load_imbalance, fill_drain, noc_bandwidth, dram_bandwidth,
                                    # first_weights, overhead
    idle_pe_fraction: np.ndarray
    buffer_words: np.ndarray     # global-buffer words moved to and from the sets
    dram_words: np.ndarray
    buffer_by_type: dict[str, np.ndarray]   # the same, by data type (inputs, outputs, weights)
    dram_by_type: dict[str, np.ndarray]
    weight_fill: np.ndarray      # cycles waiting for the first pass's weights
    weight_window: np.ndarray    # cycles before the end in which the next layer's weights can load


def pe_sets(hw: Hardware, kh: int, rows_per_block: int) -> tuple[int, int]:
    """(PE sets on the array, PE columns one set uses)."""
    rows, cols = hw.part.rows, hw.part.cols
    e = min(rows_per_block, cols)
    return max(rows // kh, 1) * max(cols // e, 1), e


def set_loads(units: np.ndarray, sets: int, schedule: str) -> np.ndarray:
    """(T, n) bool active work units (raster order) -> (T, sets) active units per set."""
    t, n = units.shape
    if schedule == "dynamic":
        base, extra = np.divmod(units.sum(axis=1, keepdims=True), sets)
        return base + (np.arange(sets)[None, :] < extra)
    owner = (np.arange(n) * sets) // max(n, 1)           # contiguous ranges of the raster order
    loads = np.zeros((t, sets), dtype=np.int64)
    for s in range(sets):                                # a few sets: a loop over sets, not over blocks
        loads[:, s] = units[:, owner == s].sum(axis=1)
    return loads


def simulate_spatial(geo: Geometry, hw: Hardware, w: Work, block: tuple[int, int], block_maps: np.ndarray,
                     schedule: str = "static") -> SpatialResult:
    """One layer (geo of shape (1, 1, 1)), every frame. `block` is (rows, cols) of an output block,
    `block_maps` (T, hb, wb) bool. A work unit is one block x one group of output channels (as many as
    a PE's partial-sum scratchpad holds, the tiling's tile_n)."""
    kh, kw = int(geo.kh.item()), int(geo.kw.item())
    bh, bw = block
    sets, e = pe_sets(hw, kh, bh)
    passes = -(-bh // e)                                 # a block taller than the array folds
    cin_per_group = float((geo.cin / geo.groups).item())
    cout = float(geo.cout.item())
    groups = int(-(-cout // max(hw.tiling.tile_n, 1)))
    cout_unit = cout / groups
    compute = bw * kw * cin_per_group * cout_unit * passes    # cycles of one unit on one set
    fill = (kh + e - 1) * passes                              # partial sums down the set, per unit
    tile_in = float(geo.tile_in_elems(np.array(float(max(bh, bw)))).item()) * min(bh, bw) / max(bh, bw)
    words = tile_in + bh * bw * cout_unit + cin_per_group * cout_unit * kh * kw   # inputs, psums out, weights
    # a PE holds its filter row for every input channel of the unit only if its scratchpad can: else
    # the channels go in chunks and the partial sums leave and come back once per extra chunk
    rf = hw.level("rf")
    spad = rf.size_bytes / hw.units / hw.word_bytes if rf is not None and not rf.shared else np.inf
    chunks = max(int(np.ceil(kw * cin_per_group * cout_unit / spad)), 1) if np.isfinite(spad) else 1
    spill = (chunks - 1) * 2 * bh * bw * cout_unit
    words += spill
    unit_words = {"inputs": tile_in, "outputs": bh * bw * cout_unit + spill, "weights": cin_per_group * cout_unit * kh * kw}
    noc_share = hw.level("buffer").bandwidth / hw.word_bytes / hw.clock_hz / sets
    per_unit = max(compute, words / noc_share) + fill
    t = block_maps.shape[0]
    units = np.repeat(block_maps.reshape(t, -1), groups, axis=1)
    loads = set_loads(units, sets, schedule)
    busiest = loads.max(axis=1)
    mean = loads.mean(axis=1)
    array_cycles = busiest * per_unit
    moved = traffic(geo, hw, w)
    kernel = moved.kernel
    flat = lambda a: np.broadcast_to(a, (1, t, 1)).reshape(-1)  # noqa: E731
    dram_words = flat(sum(kernel.values()))
    dram_by_type = {k: flat(v) for k, v in kernel.items()}
    dram_cycles = dram_words * hw.word_bytes / hw.levels[0].bandwidth * hw.clock_hz
    overhead = flat((moved.streaming_bytes + moved.indexed_bytes) / hw.levels[0].bandwidth * hw.clock_hz)
    active = units.sum(axis=1)
    kind = kinds.of(hw)
    first = np.where(active > 0, float(kind.first_weights(geo, hw).item()) * hw.word_bytes
                     / hw.levels[0].bandwidth * hw.clock_hz, 0.0)
    cycles = first + np.maximum(array_cycles, dram_cycles) + overhead
    # the next layer's weights load while DRAM idles, where the buffer holds weights at all
    keeps = not hw.tiling.bypasses("buffer", "weights")
    room = hw.level("buffer").size_bytes / 2 / hw.levels[0].bandwidth * hw.clock_hz if keeps else 0.0
    window = np.minimum(np.maximum(array_cycles - dram_cycles, 0.0), room)
    stalls = {"load_imbalance": (busiest - mean) * per_unit, "fill_drain": mean * fill,
              "noc_bandwidth": mean * (per_unit - fill - compute),
              "dram_bandwidth": np.maximum(dram_cycles - array_cycles, 0.0), "first_weights": first,
              "overhead": overhead}
    busy = active * compute * kh * e
    idle = 1 - np.where(cycles > 0, busy / np.maximum(cycles * hw.part.rows * hw.part.cols, 1), 0.0)
    return SpatialResult(cycles=cycles, seconds=cycles / hw.clock_hz, sets=sets, busiest=busiest, stalls=stalls,
                         idle_pe_fraction=np.clip(idle, 0.0, 1.0), buffer_words=active * words,
                         dram_words=dram_words, buffer_by_type={k: active * v for k, v in unit_words.items()},
                         dram_by_type=dram_by_type, weight_fill=first, weight_window=window)
