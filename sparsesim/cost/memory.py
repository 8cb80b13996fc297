"""Peak memory footprint, dense and block-sparse: what skipping costs in storage."""
from __future__ import annotations

import numpy as np

from ..hardware import Hardware
from ..workload import INDEX_BYTES, Geometry
from ..workload.strategies import Kernel, get as strategy


def footprint(geo: Geometry, hw: Hardware, block: int, active_blocks: np.ndarray, active_pixels: np.ndarray,
              total_blocks: np.ndarray, kernel: Kernel) -> dict[str, float]:
    """Bytes: weights and the largest layer's activations (dense), plus for block-sparse the state kept
    across frames (residual masks: the previous input and output of every layer; given masks: the
    output, whose inactive blocks carry over), mask and index metadata, and the gather/scatter buffers
    of the largest layer-frame (strategies that gather). Arrays are (L, T) for one block."""
    wb = hw.word_bytes
    weights = float(geo.weight_elems.sum()) * wb
    activations = float((geo.in_elems + geo.out_elems).max()) * wb
    kept = geo.in_elems + geo.out_elems if kernel.mask_source == "residual" else geo.out_elems
    state = float(kept.sum()) * wb
    metadata = float((np.ceil(total_blocks / 8) + INDEX_BYTES * active_blocks.max(axis=1)).sum())
    tile_in = geo.tile_in_elems(np.asarray(float(block)))[:, :, 0]
    per_frame = active_blocks * tile_in + active_pixels * geo.cout[:, :, 0]
    gather = 0.0 if not strategy(kernel.strategy).gathers else float(per_frame.max()) * wb
    dense = weights + activations
    return {"mem_dense_bytes": dense, "mem_state_bytes": state, "mem_metadata_bytes": metadata,
            "mem_gather_bytes": gather, "mem_sparse_bytes": dense + state + metadata + gather}
