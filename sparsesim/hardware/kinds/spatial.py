"""Spatial arrays (Eyeriss-like row-stationary): PE sets of filter rows x output rows.

Only the PE rows a kernel height fills are busy (t_parallel); an output-row pass fills only as many
PE columns as the block (or map) has rows (t_util); blocks are scheduled whole (t_occupancy). Eyeriss
maps work to PE sets at compile time, so its simulator's default schedule is static. Before the first
pass the PEs need one output-channel group's filters from DRAM, unless the array prefetches the next
layer's weights while the current one computes (`array.weight_prefetch`).
"""
from __future__ import annotations

import numpy as np

from .base import Kind, padding, register
from .array import ArrayPart, array_fields, array_loop_arch, describe_array, first_weights_s


class Spatial(Kind):
    name, section, fused, array_network, simulator = "spatial", "array", True, True, "row-stationary-sets"
    region_on_chip = True       # a block's intermediate tiles stay in the global buffer across a region
    default_schedule = "static"

    def parse(self, r) -> ArrayPart:
        return ArrayPart(**array_fields(r))

    def array_part(self, rows: int, cols: int, rf_read_words: tuple = (), loop_arch=None) -> ArrayPart:
        return ArrayPart(rows, cols, rf_read_words, loop_arch)

    def loop_arch(self, hw):
        return array_loop_arch(hw)

    def latency_steps(self, geo, hw, w, block):
        rows, cols = hw.part.rows, hw.part.cols
        rows_used = np.where(geo.kh <= rows, np.floor(rows / geo.kh) * geo.kh, rows) / rows
        out_rows = geo.out_h if block is None else np.minimum(block, geo.out_h)  # one pass per block
        cols_used = out_rows / (np.ceil(out_rows / cols) * cols)
        parallel = w.macs / (hw.peak_macs_per_s * rows_used)
        first = first_weights_s(hw, self.first_weights(geo, hw), w.blocks > 0)
        util = parallel / cols_used
        return [w.macs / hw.peak_macs_per_s, parallel, util + first, util * padding(w) + first]

    def first_weights(self, geo, hw) -> np.ndarray:
        """Weight words the first pass needs: one group of output channels (the tiling's tile_n, as
        many as a PE's partial-sum scratchpad holds), every input channel and filter tap."""
        group = np.minimum(geo.cout, max(hw.tiling.tile_n, 1))
        return geo.cin / geo.groups * group * geo.kh * geo.kw

    def describe(self, hw) -> str:
        return describe_array(hw)


register(Spatial())
