"""Peak memory footprint, dense and block-sparse: what skipping costs in storage."""
from __future__ import annotations

import numpy as np

from ..hardware import Hardware, kinds
from ..workload import INDEX_BYTES, Geometry


def footprint(geo: Geometry, hw: Hardware, block: int, active_blocks: np.ndarray, active_pixels: np.ndarray,
              total_blocks: np.ndarray) -> dict[str, float]:
    """Bytes: weights and the largest layer's activations (dense), plus for block-sparse the residual
    state (previous input and output of every layer), mask and index metadata, and the gather/scatter
    buffers of the largest layer-frame (unfused implementations). Arrays are (L, T) for one block."""
    wb = hw.word_bytes
    weights = float(geo.weight_elems.sum()) * wb
    activations = float((geo.in_elems + geo.out_elems).max()) * wb
    state = float((geo.in_elems + geo.out_elems).sum()) * wb
    metadata = float((np.ceil(total_blocks / 8) + INDEX_BYTES * active_blocks.max(axis=1)).sum())
    tile_in = geo.tile_in_elems(np.asarray(float(block)))[:, :, 0]
    per_frame = active_blocks * tile_in + active_pixels * geo.cout[:, :, 0]
    gather = 0.0 if kinds.of(hw).fused else float(per_frame.max()) * wb
    dense = weights + activations
    return {"mem_dense_bytes": dense, "mem_state_bytes": state, "mem_metadata_bytes": metadata,
            "mem_gather_bytes": gather, "mem_sparse_bytes": dense + state + metadata + gather}
