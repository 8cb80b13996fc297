"""GPUs: implicit-GEMM thread-block tiles dealt to SMs in waves; separate launches per step."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Kind, register


@dataclass(frozen=True)
class GpuPart:
    launch_s: float            # per kernel launch
    max_blocks_per_sm: int     # resident thread blocks per SM (the compute capability's limit)
    tiles_per_sm: int          # resident implicit-GEMM tiles per SM (<= max_blocks_per_sm)
    gather_bandwidth: float    # bytes/s of the indexed gather/scatter passes (0: as streaming)


class Gpu(Kind):
    name, section, simulator = "gpu", "gpu", "gpu-waves"

    def parse(self, r) -> GpuPart:
        g = r.sub(self.section)
        part = GpuPart(launch_s=g.get("launch_us", float, positive=True) * 1e-6,
                       max_blocks_per_sm=g.get("max_blocks_per_sm", int, positive=True),
                       tiles_per_sm=g.get("tiles_per_sm", int, positive=True),
                       gather_bandwidth=g.get("gather_gbps", float, 0.0) * 1e9)
        if part.tiles_per_sm > part.max_blocks_per_sm:
            g.fail("tiles_per_sm", f"at most max_blocks_per_sm ({part.max_blocks_per_sm})", part.tiles_per_sm)
        return part

    def dispatch_s(self, hw, launches: int) -> float:
        return launches * hw.part.launch_s

    def gather_bandwidth(self, hw) -> float:
        return hw.part.gather_bandwidth

    def latency_steps(self, geo, hw, w, block):
        t, p = hw.tiling, hw.part
        per_unit = hw.peak_macs_per_s / hw.units
        slots = hw.units * p.tiles_per_sm
        n_tiles = lambda m: np.ceil(m / t.tile_m) * np.ceil(geo.cout / t.tile_n)  # noqa: E731
        tile_macs = t.tile_m * t.tile_n * geo.gemm_k

        def waves(m: np.ndarray) -> np.ndarray:
            return np.ceil(n_tiles(m) / slots) * p.tiles_per_sm * tile_macs / per_unit

        busy = np.maximum(np.minimum(n_tiles(w.pixels), hw.units), 1)
        return [w.macs / hw.peak_macs_per_s, w.macs / (busy * per_unit), waves(w.pixels), waves(w.padded_pixels)]

    def describe(self, hw) -> str:
        p = hw.part
        return f"launch {p.launch_s * 1e6:g} µs, {p.tiles_per_sm} tile(s)/SM, max {p.max_blocks_per_sm} blocks/SM"


register(Gpu())
