"""Data movement by memory level and data type: the physics the cost model and the simulators share.

The block-sparse Skip-Convolution layer as a real implementation runs it:
1. mask reduction: read x_t and the reference x_{t-1} over the whole input, write the block mask and
   the index list of active blocks (metadata);
2. gather (unfused implementations, GPUs and CPUs): read the x_t and x_{t-1} tiles of the active blocks,
   halos included, and write the residual tiles to a gather buffer;
3. conv: implicit GEMM over the active blocks' pixels (M) x output channels (N); inputs are re-read once
   per N tile, weights once per M tile;
4. scatter: read the conv result and the reference output z_{t-1}, write z_t = z_{t-1} + update.
Fused implementations (the kind says: accelerator arrays) read the tiles and z_{t-1} directly, with no
gather buffer. The reference buffers rotate (the current input becomes the next reference), so they
cost no copy. The dense baseline reads the input once per N tile, the weights once per M tile, writes
the output.

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

DATA_TYPES = ("weights", "inputs", "outputs", "state", "gather")
# Register-file accesses per MAC and data type: operands read, partial sums read and updated. On a
# systolic array the stationary operand is read from the PE's register per MAC (weights, inputs) or the
# partial sum accumulates in it (outputs: read and written); the others pass PE to PE (interconnect).
RF_PER_MAC = {"implicit-gemm": {"weights": 1, "inputs": 1, "outputs": 1},
              "weight-stationary": {"weights": 1},
              "output-stationary": {"outputs": 2},
              "input-stationary": {"inputs": 1},
              "row-stationary": {"weights": 1, "inputs": 1, "outputs": 2}}
INDEX_BYTES = 4
ON_CHIP_BACKING = ("l2", "buffer")   # shared levels that can hold a layer's working set


@dataclass(frozen=True)
class Work:
    """What one configuration executes: arrays broadcast to (L, T, Nb) (or (L, 1, 1) when dense)."""
    sparse: bool
    blocks: np.ndarray            # active blocks n
    pixels: np.ndarray            # in-bounds output pixels they cover
    padded_pixels: np.ndarray     # n * B^2: pixels as the hardware schedules them
    tile_in: np.ndarray           # input elements per block (halo included)
    total_blocks: np.ndarray
    macs: np.ndarray


def dense_work(geo: Geometry) -> Work:
    px = geo.out_pixels
    return Work(sparse=False, blocks=np.ones_like(px), pixels=px, padded_pixels=px, tile_in=geo.in_elems,
                total_blocks=np.ones_like(px), macs=px * geo.macs_per_pixel)


def sparse_work(geo: Geometry, block: np.ndarray, blocks: np.ndarray, pixels: np.ndarray,
                total_blocks: np.ndarray) -> Work:
    return Work(sparse=True, blocks=blocks, pixels=pixels, padded_pixels=blocks * block * block,
                tile_in=geo.tile_in_elems(block), total_blocks=total_blocks, macs=pixels * geo.macs_per_pixel)


@dataclass(frozen=True)
class Traffic:
    """One configuration's data movement, computed once (`traffic(geo, hw, work)`)."""
    backing: np.ndarray                 # index of each layer's backing level in hw.levels
    bandwidth: np.ndarray               # that level's bandwidth, bytes/s
    layer: dict[str, np.ndarray]        # elements per data type at the backing level: the whole layer
    kernel: dict[str, np.ndarray]       # ... the conv kernel alone
    metadata: np.ndarray                # bytes of block masks and index lists
    kernel_bytes: np.ndarray            # bytes the conv kernel moves at the backing level
    streaming_bytes: np.ndarray         # mask reduction over x_t and x_{t-1}, and the metadata
    indexed_bytes: np.ndarray           # gather and scatter passes (unfused kinds)

    @property
    def overhead_bytes(self) -> np.ndarray:
        return self.streaming_bytes + self.indexed_bytes


def _ceil(a: np.ndarray, b: float) -> np.ndarray:
    return np.ceil(a / b) if b > 0 else np.ones_like(a)


def _backing_traffic(geo: Geometry, hw: Hardware, w: Work) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Elements per data type at the backing level: (whole layer, the conv kernel alone, metadata bytes)."""
    t = hw.tiling
    input_rereads = _ceil(geo.cout, t.tile_n)               # once per N tile
    weight_rereads = _ceil(w.padded_pixels, t.tile_m)        # once per M tile
    active = (w.blocks > 0).astype(np.float64)
    zero = np.zeros_like(w.macs)
    if not w.sparse:
        kernel = {"weights": geo.weight_elems * weight_rereads, "inputs": geo.in_elems * input_rereads,
                  "outputs": geo.out_elems + zero, "state": zero, "gather": zero}
        return kernel, kernel, zero
    tiles = w.blocks * w.tile_in
    updated = w.pixels * geo.cout
    weights = geo.weight_elems * weight_rereads * active
    if kinds.of(hw).fused:
        kernel = {"weights": weights, "inputs": tiles * input_rereads, "outputs": updated,
                  "state": tiles * input_rereads + updated, "gather": zero}
        layer = dict(kernel, inputs=kernel["inputs"] + geo.in_elems, state=kernel["state"] + geo.in_elems)
        consumers = 1
    else:
        kernel = {"weights": weights, "inputs": zero, "outputs": zero, "state": zero,
                  "gather": tiles * input_rereads + updated}       # read gathered tiles, write the update
        layer = {"weights": weights, "inputs": geo.in_elems + tiles, "outputs": updated,
                 "state": geo.in_elems + tiles + updated,
                 "gather": tiles + tiles * input_rereads + 2 * updated}
        consumers = 3                                              # gather, conv, scatter read the indices
    metadata = np.ceil(w.total_blocks / 8) + INDEX_BYTES * w.blocks * (1 + consumers)
    return layer, kernel, metadata


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
    layer, kernel, metadata = _backing_traffic(geo, hw, w)
    backing = backing_level(geo, hw, w)
    if w.sparse:
        streaming = 2 * geo.in_elems * hw.word_bytes + metadata
        total = (sum(layer.values()) - sum(kernel.values())) * hw.word_bytes + metadata
        streaming, indexed = streaming + np.zeros_like(w.macs), total - streaming
    else:
        streaming = indexed = np.zeros_like(w.macs)
    return Traffic(backing=backing, bandwidth=np.choose(backing, [lv.bandwidth for lv in hw.levels]),
                   layer=layer, kernel=kernel, metadata=metadata,
                   kernel_bytes=sum(kernel.values()) * hw.word_bytes, streaming_bytes=streaming,
                   indexed_bytes=indexed)


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
