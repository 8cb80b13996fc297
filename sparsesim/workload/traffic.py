"""Data movement by memory level and data type: the physics the cost model and the simulators share.

A block-sparse layer runs as its kernel strategy says (`sparsesim.workload.strategies`: the steps
mask, gather, conv, scatter, their elements by data type and their launches); `Work.kernel` names the
strategy and where the mask comes from (default: the kind's natural strategy on residual masks, the
Skip-Convolution: reduce x_t and x_{t-1}, gather both tiles, conv, scatter-add into z_{t-1}). The conv
runs as an implicit GEMM over the active blocks' pixels (M) x output channels (N) in the tile the kind
picks (`Kind.gemm_tile`); inputs are re-read once per N tile, weights once per M tile. The reference
buffers rotate (the current input becomes the next reference), so they cost no copy. The dense
baseline reads the input once per N tile, the weights once per M tile, writes the output.

Each layer's tensors live at its backing level: the smallest shared on-chip level (L2, global buffer)
that holds the layer's working set, else DRAM. Every element moved at the backing level passes through
the inner buffer once; operands are then read from the buffer once per `reuse` MACs, from the register
file a fixed number of times per MAC, and over the array interconnect twice per MAC (arrays only).
`traffic()` computes all of it once per call; latency, energy and the simulators read the result.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..hardware import Hardware, kinds
from .geometry import Geometry
from .strategies import INDEX_BYTES, STEPS, Kernel, Layer, get as strategy

DATA_TYPES = ("weights", "inputs", "outputs", "state", "gather")
# Register-file accesses per MAC and data type: operands read, partial sums read and updated. On a
# systolic array the stationary operand is read from the PE's register per MAC (weights, inputs) or the
# partial sum accumulates in it (outputs: read and written); the others pass PE to PE (interconnect).
RF_PER_MAC = {"implicit-gemm": {"weights": 1, "inputs": 1, "outputs": 1},
              "weight-stationary": {"weights": 1},
              "output-stationary": {"outputs": 2},
              "input-stationary": {"inputs": 1},
              "row-stationary": {"weights": 1, "inputs": 1, "outputs": 2}}
ON_CHIP_BACKING = ("l2", "buffer")   # shared levels that can hold a layer's working set


@dataclass(frozen=True)
class Work:
    """What one configuration executes: arrays broadcast to (L, T, Nb) (or (L, 1, 1) when dense)."""
    sparse: bool
    blocks: np.ndarray            # active blocks n
    pixels: np.ndarray            # in-bounds output pixels they cover (halos a region recomputes included)
    padded_pixels: np.ndarray     # n x the tile's pixels (B^2 outside regions): as the hardware schedules them
    tile_in: np.ndarray           # input elements per block (halo included)
    total_blocks: np.ndarray
    macs: np.ndarray
    kernel: Kernel | None = None  # strategy and mask source (None: the kind's natural one, residual masks)
    first: np.ndarray | bool = True   # gathers its input: False inside a region after its first layer
    last: np.ndarray | bool = True    # scatters its output: False inside a region before its last layer
    tile_h: np.ndarray | None = None  # output rows of one map of the batch the conv runs on (`blocks` maps:
    tile_w: np.ndarray | None = None  # the layer's map when dense, a block's tile when gathered); None: unknown
    buffer_in: np.ndarray | None = None   # input elements per block in a gather buffer: the whole tile, not
                                          # clipped at the map (None: tile_in)

    @property
    def gathered_in(self) -> np.ndarray:
        """Input elements of the active blocks as a gather buffer holds them (whole tiles)."""
        return self.blocks * (self.tile_in if self.buffer_in is None else self.buffer_in)


@dataclass(frozen=True)
class RegionShape:
    """Where each layer sits in its fused region (arrays of shape (L, 1, 1)): whether it gathers, whether
    it scatters, and the halo the layers after it add to its output tile (rows, columns)."""
    first: np.ndarray
    last: np.ndarray
    extra_h: np.ndarray
    extra_w: np.ndarray


def dense_work(geo: Geometry, kernel: Kernel | None = None) -> Work:
    px = geo.out_pixels
    return Work(sparse=False, blocks=np.ones_like(px), pixels=px, padded_pixels=px, tile_in=geo.in_elems,
                total_blocks=np.ones_like(px), macs=px * geo.macs_per_pixel, kernel=kernel, tile_h=geo.out_h,
                tile_w=geo.out_w)


def sparse_work(geo: Geometry, block: np.ndarray, blocks: np.ndarray, pixels: np.ndarray,
                total_blocks: np.ndarray, kernel: Kernel | None = None, region: RegionShape | None = None) -> Work:
    """The work of `blocks` active B x B blocks covering `pixels` in-bounds outputs; inside a fused
    region each block's tile grows by the halo of the layers after it (and is recomputed whole)."""
    if region is None:
        return Work(sparse=True, blocks=blocks, pixels=pixels, padded_pixels=blocks * block * block,
                    tile_in=geo.tile_in_elems(block), total_blocks=total_blocks, macs=pixels * geo.macs_per_pixel,
                    kernel=kernel, tile_h=block + 0.0 * geo.out_h, tile_w=block + 0.0 * geo.out_w,
                    buffer_in=geo.tile_in_elems(block, clip=False))
    grown = (block + region.extra_h) * (block + region.extra_w)
    pixels = np.minimum(pixels * grown / (block * block), geo.out_pixels)
    return Work(sparse=True, blocks=blocks, pixels=pixels, padded_pixels=blocks * grown,
                tile_in=geo.tile_in_elems(block, region.extra_h, region.extra_w), total_blocks=total_blocks,
                macs=pixels * geo.macs_per_pixel, kernel=kernel, first=region.first, last=region.last,
                tile_h=block + region.extra_h, tile_w=block + region.extra_w,
                buffer_in=geo.tile_in_elems(block, region.extra_h, region.extra_w, clip=False))


def kernel_of(hw: Hardware, w: Work) -> Kernel:
    """The work's kernel, or the kind's natural strategy on residual masks."""
    return w.kernel or Kernel(kinds.of(hw).strategies[0])


def library_conv(hw: Hardware, w: Work) -> bool:
    """Whether a library call runs the conv (a dense layer; a strategy's conv on gathered tiles), so that
    the library's algorithm choice applies, rather than a custom kernel (the fused strategy)."""
    return not w.sparse or strategy(kernel_of(hw, w).strategy).library_conv


@dataclass(frozen=True)
class Traffic:
    """One configuration's data movement, computed once (`traffic(geo, hw, work)`)."""
    backing: np.ndarray                 # index of each layer's backing level in hw.levels
    bandwidth: np.ndarray               # that level's bandwidth, bytes/s
    layer: dict[str, np.ndarray]        # elements per data type at the backing level: the whole layer
    kernel: dict[str, np.ndarray]       # ... the conv kernel alone
    metadata: np.ndarray                # bytes of block masks and index lists
    kernel_bytes: np.ndarray            # bytes the conv kernel moves at the backing level
    streaming_bytes: np.ndarray         # the mask step (reduction over x_t and x_{t-1}) and the metadata
    indexed_bytes: np.ndarray           # gather and scatter steps
    steps: dict[str, dict[str, np.ndarray]]     # elements by data type, per step (mask, gather, conv, scatter)
    step_bytes: dict[str, np.ndarray]           # bytes per step at the backing level (the mask's with the metadata)
    launches: dict[str, np.ndarray]             # launches per step
    on_chip: dict[str, np.ndarray]              # elements by data type a region keeps in the buffer instead

    @property
    def overhead_bytes(self) -> np.ndarray:
        return self.streaming_bytes + self.indexed_bytes

    @property
    def total_launches(self) -> np.ndarray:
        return sum(self.launches.values())


def _ceil(a: np.ndarray, b: float) -> np.ndarray:
    return np.ceil(a / b) if b > 0 else np.ones_like(a)


def _bill_in(geo: Geometry, hw: Hardware, w: Work, tile_m, tile_n):
    """The configuration's steps in a given implicit-GEMM tile: inputs re-read once per N tile, weights
    once per M tile (a tile of M = 0 holds every pixel: weights once)."""
    tile_m, tile_n = np.asarray(tile_m, np.float64), np.asarray(tile_n, np.float64)
    reread_in = np.ceil(geo.cout / tile_n)
    weights = geo.weight_elems * np.where(tile_m > 0, np.ceil(w.padded_pixels / np.maximum(tile_m, 1)), 1.0)
    zero = np.zeros_like(w.macs)
    if not w.sparse:
        conv = {"weights": weights + zero, "inputs": geo.in_elems * reread_in + zero, "outputs": geo.out_elems + zero,
                "state": zero, "gather": zero}
        return {"conv": conv}, {"conv": 1.0 + zero}, zero, {}
    buffer = hw.level("buffer")
    per_block = (w.tile_in + w.padded_pixels / np.maximum(w.blocks, 1) * geo.cout) * hw.word_bytes
    x = Layer(in_elems=geo.in_elems, tiles=w.blocks * w.tile_in, gathered=w.gathered_in, reread_in=reread_in,
              weights=weights * (w.blocks > 0), updated=w.pixels * geo.cout, computed=w.padded_pixels * geo.cout,
              bitmask=np.ceil(w.total_blocks / 8), blocks=w.blocks, first=np.asarray(w.first), last=np.asarray(w.last),
              fits=per_block <= (buffer.size_bytes if buffer is not None and buffer.shared else 0))
    k = kernel_of(hw, w)
    b = strategy(k.strategy).bill(x, k.mask_source, kinds.of(hw).region_on_chip)
    steps = {step: {t: b.steps[step].get(t, zero) + zero for t in DATA_TYPES} for step in STEPS if step in b.steps}
    return steps, {s_: v + zero for s_, v in b.launches.items()}, b.metadata + zero, b.on_chip


def bill(geo: Geometry, hw: Hardware, w: Work, bandwidth: np.ndarray):
    """The configuration's steps (elements by data type at the backing level, launches) and metadata, in
    the tile the kind runs the layer in; a kind that chooses its tile is told what each tile's conv
    moves at the backing level's `bandwidth`, so it times the kernel whole."""
    def memory(tile_m: int, tile_n: int) -> np.ndarray:
        return sum(_bill_in(geo, hw, w, tile_m, tile_n)[0]["conv"].values()) * hw.word_bytes / bandwidth
    tile = kinds.of(hw).gemm_tile(geo, hw, w, memory)
    return _bill_in(geo, hw, w, tile.m, tile.n)


def backing_level(geo: Geometry, hw: Hardware, w: Work) -> np.ndarray:
    """Index of each layer's backing level: the smallest shared on-chip level holding the working set."""
    state = 2 * (geo.in_elems + geo.out_elems) if w.sparse else 0
    working_set = (geo.in_elems + geo.out_elems + geo.weight_elems + state) * hw.word_bytes
    choice = np.zeros(working_set.shape, dtype=np.int64)           # 0: DRAM
    for i, level in enumerate(hw.levels):
        if i and level.shared and level.kind in ON_CHIP_BACKING:
            choice = np.where(working_set <= level.size_bytes, i, choice)
    return choice


def traffic(geo: Geometry, hw: Hardware, w: Work) -> Traffic:
    backing = backing_level(geo, hw, w)
    bandwidth = np.choose(backing, [lv.rate for lv in hw.levels])
    steps, launches, metadata, on_chip = bill(geo, hw, w, bandwidth)
    layer = {t: sum(step[t] for step in steps.values()) for t in DATA_TYPES}
    per_step = {name: sum(steps[name].values()) * hw.word_bytes if name in steps else 0.0 * metadata
                for name in STEPS}
    per_step["mask"] = per_step["mask"] + metadata
    return Traffic(backing=backing, bandwidth=bandwidth,
                   layer=layer, kernel=steps["conv"], metadata=metadata, kernel_bytes=per_step["conv"],
                   streaming_bytes=per_step["mask"], indexed_bytes=per_step["gather"] + per_step["scatter"],
                   steps=steps, step_bytes=per_step, launches=launches, on_chip=on_chip)


def inner_accesses(geo: Geometry, hw: Hardware, w: Work) -> dict[str, dict[str, np.ndarray]]:
    """Operand accesses at the on-chip levels (buffer reads, interconnect hops, register file), by type."""
    t, macs = hw.tiling, w.macs
    zero = np.zeros_like(macs)
    kind = kinds.of(hw)
    k_pass = t.tile_k or kind.reduction_pass(hw)
    psum_folds = _ceil(geo.gemm_k, k_pass) if k_pass else 1.0
    buffer = {"inputs": macs / t.reuse_n,
              "weights": macs / t.reuse_m if t.reuse_m else geo.weight_elems * (w.blocks > 0),
              "outputs": w.pixels * geo.cout * (2 * psum_folds - 1)}   # partial sums spill per K fold
    rf = {dtype: per_mac * macs for dtype, per_mac in RF_PER_MAC[t.dataflow].items()}
    noc = {"inputs": macs, "outputs": macs} if kind.array_network else {}
    return {level: {k: d.get(k, zero) for k in DATA_TYPES} for level, d in
            (("buffer", buffer), ("noc", noc), ("rf", rf))}
