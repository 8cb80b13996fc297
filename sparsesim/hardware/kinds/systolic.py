"""Systolic arrays (TPU-like, Gemmini-like): the layer's implicit GEMM folded onto R x C PEs.

Which GEMM dimensions map to the rows and columns, and which one streams, is the dataflow
(SCALE-Sim's terms): weight-stationary puts K on rows and N on columns and streams the M output
pixels; output-stationary puts M on rows and N on columns and streams K; input-stationary puts K on
rows and M on columns and streams N. Each fold costs its stream plus fill and drain; the first
fold's stationary operand loads before anything streams (later loads hide behind the double buffer).
Before its first fold the filter buffer's first half must arrive from DRAM, unless the array
prefetches the next layer's weights while the current one computes (`array.weight_prefetch`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Kind, register
from .array import ArrayPart, array_fields, array_loop_arch, describe_array, first_weights_s

SYSTOLIC_DATAFLOWS = ("weight-stationary", "output-stationary", "input-stationary")


@dataclass(frozen=True)
class SystolicPart(ArrayPart):
    buffer_split: tuple[float, float, float] = (1.0, 1.0, 1.0)   # ifmap : filter : ofmap share of the buffer
    preload_overlap: bool = True    # the next fold's stationary operand loads behind the current fold
    accumulate: bool = True         # partial sums stay on chip across row folds (accumulator SRAM)


def _ceil(a, b):
    return np.ceil(a / b)


# dataflow -> (folds, streamed length, stationary load) for M output pixels, K reduction, N channels
FOLDS = {
    "weight-stationary": lambda m, k, n, R, C: (_ceil(k, R) * _ceil(n, C), m, R),
    "output-stationary": lambda m, k, n, R, C: (_ceil(m, R) * _ceil(n, C), k, 0),
    "input-stationary": lambda m, k, n, R, C: (_ceil(k, R) * _ceil(m, C), n, R),
}


class Systolic(Kind):
    name, section, fused, array_network, simulator = "systolic", "array", True, True, "systolic-folds"
    region_on_chip = True       # a block's intermediate tiles stay in the unified buffer across a region

    def parse(self, r) -> SystolicPart:
        dataflow = r.sub("tiling").get("dataflow", str)
        if dataflow not in SYSTOLIC_DATAFLOWS:
            r.fail("tiling.dataflow", f"one of {', '.join(SYSTOLIC_DATAFLOWS)} on a systolic array", dataflow)
        a = r.sub("array")
        split = a.get("buffer_split", list, [1, 1, 1])
        if len(split) != 3 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in split):
            a.fail("buffer_split", "three positive shares (ifmap, filter, ofmap)", split)
        return SystolicPart(**array_fields(r), buffer_split=tuple(float(v) for v in split),
                            preload_overlap=a.get("preload_overlap", bool, True),
                            accumulate=a.get("accumulate", bool, True))

    def array_part(self, rows: int, cols: int, rf_read_words: tuple = (), loop_arch=None) -> SystolicPart:
        return SystolicPart(rows, cols, rf_read_words, loop_arch)

    def loop_arch(self, hw):
        return array_loop_arch(hw)

    def reduction_pass(self, hw) -> int:
        """K maps to the rows (weight- and input-stationary): partial sums leave once per row fold."""
        return 0 if hw.tiling.dataflow == "output-stationary" else hw.part.rows

    def latency_steps(self, geo, hw, w, block):
        R, C = hw.part.rows, hw.part.cols
        fold = FOLDS[hw.tiling.dataflow]
        fill_drain = R + C - 2
        clock = hw.clock_hz

        def streamed(m: np.ndarray) -> np.ndarray:
            folds, stream, load = fold(m, geo.gemm_k, geo.cout, R, C)
            return np.where(w.blocks > 0, folds * (stream + fill_drain) + load, 0.0) / clock

        folds, stream, _ = fold(w.pixels, geo.gemm_k, geo.cout, R, C)
        first = first_weights_s(hw, self.first_weights(geo, hw), w.blocks > 0)
        return [w.macs / hw.peak_macs_per_s, folds * stream / clock, streamed(w.pixels) + first,
                streamed(w.padded_pixels) + first]

    def first_weights(self, geo, hw) -> np.ndarray:
        """Weight words the filter buffer fetches before the first fold: its first half, or all the
        weights where they take less."""
        p = hw.part
        buffer = hw.level("buffer").size_bytes / hw.word_bytes * p.buffer_split[1] / sum(p.buffer_split)
        return np.minimum(geo.gemm_k * geo.cout, np.ceil(buffer / 2))

    def describe(self, hw) -> str:
        p = hw.part
        return (f"{describe_array(hw)}, buffer split {':'.join(f'{v:g}' for v in p.buffer_split)}, "
                f"preload {'overlapped' if p.preload_overlap else 'serial'}, "
                f"partial sums {'accumulated on chip' if p.accumulate else 'spilled per fold'}")


register(Systolic())
