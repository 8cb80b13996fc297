"""CPUs: a measured sustained conv rate per core, register-blocked output channels, op dispatch."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...text import si
from .base import Kind, register


@dataclass(frozen=True)
class CpuPart:
    sustained_flops: float     # measured conv throughput, the realistic roof (FLOP/s)
    launch_s: float            # per operator dispatch
    gather_bandwidth: float    # bytes/s of the indexed gather/scatter passes (0: as streaming)


class Cpu(Kind):
    name, section = "cpu", "cpu"

    def parse(self, r) -> CpuPart:
        c = r.sub(self.section)
        return CpuPart(sustained_flops=c.get("sustained_tflops", float, positive=True) * 1e12,
                       launch_s=c.get("op_overhead_us", float, positive=True) * 1e-6,
                       gather_bandwidth=c.get("gather_gbps", float, 0.0) * 1e9)

    def dispatch_s(self, hw, launches, graphs: bool = False):
        return launches * hw.part.launch_s   # no graph capture on a CPU: every op dispatches

    def gather_bandwidth(self, hw) -> float:
        return hw.part.gather_bandwidth

    def latency_steps(self, geo, hw, w, block):
        t = hw.tiling
        per_unit = hw.peak_macs_per_s / hw.units
        sustained = hw.part.sustained_flops / 2 / hw.units   # measured conv throughput per core
        lanes = np.ceil(geo.cout / t.reuse_n) * t.reuse_n / geo.cout  # output channels fill whole register blocks
        useful = busiest_core_macs(geo, hw, w, w.pixels)
        scheduled = busiest_core_macs(geo, hw, w, w.padded_pixels)
        return [w.macs / hw.peak_macs_per_s, useful / per_unit, useful / sustained * lanes,
                scheduled / sustained * lanes]

    def describe(self, hw) -> str:
        return f"sustained {si(hw.part.sustained_flops, 'FLOP/s')} (measured), {hw.part.launch_s * 1e6:g} µs per op"


def busiest_core_macs(geo, hw, w, pixels):
    """MACs on the busiest core when `pixels` output pixels are dealt out in GEMM tiles: an even share,
    but never less than one whole tile (a core cannot split a tile). Both terms grow with the pixels, so
    the time never falls as work is added (dividing by the cores a few tiles keep busy did: one tile
    more could halve the time)."""
    per_pixel = np.where(w.pixels > 0, w.macs / np.maximum(w.pixels, 1), geo.macs_per_pixel)
    tile = np.minimum(pixels, hw.tiling.tile_m) * np.minimum(geo.cout, hw.tiling.tile_n) / geo.cout
    return np.maximum(pixels / hw.units, tile) * per_pixel


register(Cpu())
