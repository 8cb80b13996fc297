"""Data movement by memory level and data type, and the energy it costs (Sze's framing).

The block-sparse Skip-Convolution layer as a real implementation runs it:
1. mask reduction: read x_t and the reference x_{t-1} over the whole input, write the block mask and
   the index list of active blocks (metadata);
2. gather (unfused implementations, GPUs and CPUs): read the x_t and x_{t-1} tiles of the active blocks,
   halos included, and write the residual tiles to a gather buffer;
3. conv: implicit GEMM over the active blocks' pixels (M) x output channels (N); inputs are re-read once
   per N tile, weights once per M tile;
4. scatter: read the conv result and the reference output z_{t-1}, write z_t = z_{t-1} + update.
Fused implementations (accelerator arrays) read the tiles and z_{t-1} directly, with no gather buffer.
The reference buffers rotate (the current input becomes the next reference), so they cost no copy.
The dense baseline reads the input once per N tile, the weights once per M tile, writes the output.

Each layer's tensors live at its backing level: the smallest shared on-chip level (L2, global buffer)
that holds the layer's working set, else DRAM. Every element moved at the backing level passes through
the inner buffer once; operands are then read from the buffer once per `reuse` MACs, from the register
file a fixed number of times per MAC, and over the array interconnect twice per MAC (arrays only).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..hardware import LEVEL_KINDS, EnergyTable, Hardware
from .geometry import Geometry

DATA_TYPES = ("weights", "inputs", "outputs", "state", "gather")
# Register-file accesses per MAC and data type: operands read, partial sums read and updated.
RF_PER_MAC = {"implicit-gemm": {"weights": 1, "inputs": 1, "outputs": 1},
              "weight-stationary": {"weights": 1},
              "row-stationary": {"weights": 1, "inputs": 1, "outputs": 2}}
INDEX_BYTES = 4


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


def _ceil(a: np.ndarray, b: float) -> np.ndarray:
    return np.ceil(a / b) if b > 0 else np.ones_like(a)


def fused(hw: Hardware) -> bool:
    return hw.kind in ("systolic", "spatial")


def backing_traffic(geo: Geometry, hw: Hardware, w: Work) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
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
    if fused(hw):
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
        if i and level.shared and level.kind in ("l2", "buffer"):
            choice = np.where(working_set <= level.size_bytes, i, choice)
    return choice


def inner_accesses(geo: Geometry, hw: Hardware, w: Work) -> dict[str, dict[str, np.ndarray]]:
    """Operand accesses at the on-chip levels (buffer reads, interconnect hops, register file), by type."""
    t, macs = hw.tiling, w.macs
    zero = np.zeros_like(macs)
    k_pass = t.tile_k or (hw.rows if t.dataflow == "weight-stationary" else 0)
    psum_folds = _ceil(geo.gemm_k, k_pass) if k_pass else 1.0
    buffer = {"inputs": macs / t.reuse_n,
              "weights": macs / t.reuse_m if t.reuse_m else geo.weight_elems * (w.blocks > 0),
              "outputs": w.pixels * geo.cout * (2 * psum_folds - 1)}   # partial sums spill per K fold
    rf = {dtype: per_mac * macs for dtype, per_mac in RF_PER_MAC[t.dataflow].items()}
    noc = {"inputs": macs, "outputs": macs} if hw.kind in ("systolic", "spatial") else {}
    return {kind: {k: d.get(k, zero) for k in DATA_TYPES} for kind, d in
            (("buffer", buffer), ("noc", noc), ("rf", rf))}


def energy(geo: Geometry, hw: Hardware, table: EnergyTable, w: Work,
           scales: dict[tuple[str, str], float] | None = None) -> dict[str, np.ndarray]:
    """Energy in pJ by level kind (e_<kind>), by data type (e_type_<type>) and for MACs (e_mac).

    `scales` multiplies the accesses of (level kind, data type) pairs, and ("mac", "compute") the MACs:
    element-wise sparsity (sparsesim.cost.elementwise) gates or compresses some of them.

    Backing-level traffic is charged at the backing level; a buffer inside it is charged again for the
    fills and drains, plus its operand reads; the interconnect and register file for their operands.
    """
    layer, _, metadata = backing_traffic(geo, hw, w)
    backing = backing_level(geo, hw, w)
    kinds = [lv.kind for lv in hw.levels]
    bits = 8 * hw.word_bytes
    zero = np.zeros_like(w.macs)
    out = {f"e_{k}": zero.copy() for k in LEVEL_KINDS}
    out.update({f"e_type_{k}": zero.copy() for k in (*DATA_TYPES, "metadata")})

    def charge(level: int, dtype: str, elems_bits: np.ndarray, where: np.ndarray | bool = True) -> None:
        if hw.tiling.bypasses(kinds[level], dtype):
            return  # the stated mapping sends this data type past the level
        scale = (scales or {}).get((kinds[level], dtype), 1.0)
        pj = np.where(where, scale * elems_bits * table.per_bit(kinds[level], dtype), 0.0)
        out[f"e_{kinds[level]}"] += pj
        out[f"e_type_{dtype}"] += pj

    inner = inner_accesses(geo, hw, w)
    for i, kind in enumerate(kinds):
        at_backing = backing == i
        for dtype, elems in layer.items():
            charge(i, dtype, elems * bits, at_backing)
        charge(i, "metadata", metadata * 8, at_backing)
        if kind == "buffer":
            for dtype, elems in layer.items():
                charge(i, dtype, elems * bits, backing < i)             # fills/drains through it
        if kind in inner:
            for dtype, elems in inner[kind].items():
                charge(i, dtype, elems * bits)
    out["e_mac"] = w.macs * table.mac(hw.dtype) * (scales or {}).get(("mac", "compute"), 1.0)
    out["energy_pj"] = out["e_mac"] + sum(out[f"e_{k}"] for k in LEVEL_KINDS)
    return out


def level_bytes(geo: Geometry, hw: Hardware, w: Work) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bytes the conv kernel moves at its backing level, that level's bandwidth, and the overhead
    kernels' bytes (mask reduction, and gather/scatter where unfused)."""
    streaming, indexed = overhead_bytes(geo, hw, w)
    _, kernel, _ = backing_traffic(geo, hw, w)
    bandwidth = np.choose(backing_level(geo, hw, w), [lv.bandwidth for lv in hw.levels])
    return sum(kernel.values()) * hw.word_bytes, bandwidth, streaming + indexed


def overhead_bytes(geo: Geometry, hw: Hardware, w: Work) -> tuple[np.ndarray, np.ndarray]:
    """The skipping overheads' bytes: (streaming: mask reduction over x_t and x_{t-1} and the metadata,
    indexed: the gather and scatter passes where unfused)."""
    if not w.sparse:
        zero = np.zeros_like(w.macs)
        return zero, zero
    layer, kernel, metadata = backing_traffic(geo, hw, w)
    streaming = 2 * geo.in_elems * hw.word_bytes + metadata
    total = (sum(layer.values()) - sum(kernel.values())) * hw.word_bytes + metadata
    return streaming + np.zeros_like(w.macs), total - streaming
