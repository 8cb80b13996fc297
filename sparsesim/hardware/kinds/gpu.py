"""GPUs: implicit-GEMM thread-block tiles (the library's fastest for the layer) dealt to SMs in waves;
separate launches per step, each paying the driver's launch and the framework's op dispatch on the host,
or one graph node's cost when the work is captured in a CUDA graph.

Launches are asynchronous: the host enqueues a kernel and goes on to the next op while the GPU runs the
queue (CUDA streams; TensorFlow's and PyTorch's GPU ops return once their kernels are enqueued). So a
layer costs the longer of the two: the GPU's own work plus a small gap per kernel, or the host's time
issuing the launches. Host cost shows only where the GPU would otherwise wait for it (small layers).
Per layer, not across layers: where a network alternates host-bound and GPU-bound layers this charges
each its own bound (an upper bound on the pipelined total).

A conv that a library runs (the dense layer, and the batch of gathered tiles) runs in the fastest of
the algorithms the GPU's library offers (`gpu_algorithms`: implicit GEMM, Winograd), as an autotuner
picks it; a custom kernel (the fused strategy) runs its own implicit GEMM."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import gpu_algorithms
from .base import ConvChoice, Kind, register
from .gpu_algorithms import Algorithm, ConvProblem
from .gpu_tiles import Tile, TileChoice, choose


@dataclass(frozen=True)
class GpuPart:
    launch_s: float            # per kernel launch (driver and launch latency)
    max_blocks_per_sm: int     # resident thread blocks per SM (the compute capability's limit)
    tiles_per_sm: int          # resident copies of the stated tile, where no tile table is given
    gather_bandwidth: float    # bytes/s of the indexed gather/scatter passes (0: as streaming)
    dispatch_s: float = 0.0    # per operator: the framework's host-side dispatch around each launch
    graph_launch_s: float = 0.0    # per kernel node of a CUDA graph (replaces launch and dispatch)
    kernel_gap_s: float = 0.0  # GPU idle between back-to-back kernels of a stream already enqueued
    schedulers: int = 4        # warp schedulers per SM: an SM issues at full rate with one warp on each
    max_warps_per_sm: int = 64
    registers_per_sm: int = 65536
    tiles: tuple[Tile, ...] = ()   # the library's threadblock shapes; () = the stated tiling alone
    algorithms: tuple[Algorithm, ...] = (Algorithm("implicit-gemm"),)   # what the library's autotuner times
    scatter_bandwidth: float = 0.0   # bytes/s of the indexed scatter-add (0: as the gather)
    mask_bandwidth: float = 0.0      # bytes/s of the mask step (0: streaming)
    framework_conv_kernels: int = 0  # small kernels the framework launches around each library conv call
    helper_kernel_s: float = 0.0     # GPU seconds of one such small helper kernel (the framework's, the library's)


def _library_runs(w, library) -> np.ndarray:
    """1 where a library call runs the conv (its helper kernels run with it), 0 elsewhere (a fused kernel,
    no active blocks)."""
    return (np.asarray(library) & (np.asarray(w.blocks) > 0)).astype(int)


def _tiles(g) -> tuple[Tile, ...]:
    rows = g.get("tiles", list, [])
    out = []
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == 5 and all(isinstance(v, int) and v >= 0 for v in row)
                and row[0] > 0 and row[1] > 0 and row[3] > 0):
            g.fail(f"tiles[{i}]", "[M, N, K, warps, stages] of non-negative integers (M, N, warps > 0)", row)
        out.append(Tile(*row))
    return tuple(out)


class Gpu(Kind):
    name, section, simulator = "gpu", "gpu", "gpu-waves"

    def parse(self, r) -> GpuPart:
        g = r.sub(self.section)
        launch = g.get("launch_us", float, positive=True) * 1e-6
        part = GpuPart(launch_s=launch, max_blocks_per_sm=g.get("max_blocks_per_sm", int, positive=True),
                       tiles_per_sm=g.get("tiles_per_sm", int, positive=True),
                       gather_bandwidth=g.get("gather_gbps", float, 0.0) * 1e9,
                       dispatch_s=g.get("dispatch_us", float, 0.0) * 1e-6,
                       graph_launch_s=g.get("graph_launch_us", float, launch * 1e6) * 1e-6,
                       kernel_gap_s=g.get("kernel_gap_us", float, 0.0) * 1e-6,
                       schedulers=g.get("schedulers", int, 4), max_warps_per_sm=g.get("max_warps_per_sm", int, 64),
                       registers_per_sm=g.get("registers_per_sm", int, 65536), tiles=_tiles(g),
                       algorithms=gpu_algorithms.parse(g), scatter_bandwidth=g.get("scatter_gbps", float, 0.0) * 1e9,
                       mask_bandwidth=g.get("mask_gbps", float, 0.0) * 1e9,
                       framework_conv_kernels=g.get("framework_conv_kernels", int, 0),
                       helper_kernel_s=g.get("helper_kernel_us", float, 0.0) * 1e-6)
        if part.framework_conv_kernels < 0:
            g.fail("framework_conv_kernels", "a non-negative integer", part.framework_conv_kernels)
        if part.helper_kernel_s < 0:
            g.fail("helper_kernel_us", "a non-negative number", part.helper_kernel_s * 1e6)
        if part.tiles_per_sm > part.max_blocks_per_sm:
            g.fail("tiles_per_sm", f"at most max_blocks_per_sm ({part.max_blocks_per_sm})", part.tiles_per_sm)
        return part

    def dispatch_s(self, hw, launches, graphs: bool = False):
        p = hw.part
        return launches * (p.graph_launch_s if graphs else p.launch_s + p.dispatch_s)

    def launch_s(self, hw, launches, busy, graphs: bool = False, kernels=0.0):
        """Host issue time, and what the layer pays for it: a gap per kernel, or the host's excess over
        the GPU's `busy` seconds where the host is the slower (a graph's nodes cost their node time).
        `kernels` launched inside the ops (an algorithm's transforms) cost a launch each, no dispatch."""
        p = hw.part
        issued = self.dispatch_s(hw, launches, graphs) + kernels * (p.graph_launch_s if graphs else p.launch_s)
        if graphs:
            return issued, issued
        return issued, np.maximum((launches + kernels) * p.kernel_gap_s, issued - busy)

    def conv_times(self, geo, hw, w, direct, bandwidth, library) -> gpu_algorithms.Timed:
        """Every algorithm of the GPU's list timed on the conv (inf where one does not apply: not a library
        call, not a 3x3 stride-1 conv, or a map of unknown shape), stacked in the list's order. A library
        call's time includes the algorithm's own helper kernels (cuDNN's offsets kernel): cuDNN's autotuner
        times the whole call, so they count in the choice."""
        winograd = (geo.kh == 3) & (geo.kw == 3) & (geo.sh == 1) & (geo.sw == 1) & (geo.dh == 1) & (geo.dw == 1) & \
            (geo.groups == 1) & ~geo.transposed & np.asarray(library) & (w.tile_h is not None)
        rows = w.tile_h if w.tile_h is not None else w.padded_pixels
        cols = w.tile_w if w.tile_w is not None else 1.0
        problem = ConvProblem(images=w.blocks, rows=rows, cols=cols, cin=geo.cin, cout=geo.cout,
                              in_elems=w.blocks * w.tile_in, bandwidth=bandwidth, winograd=winograd)
        timed = gpu_algorithms.time_all(problem, hw, hw.part.algorithms, direct)
        own = np.array([a.helper_kernels for a in hw.part.algorithms]).reshape((-1,) + (1,) * (timed.seconds.ndim - 1))
        helpers = own * _library_runs(w, library)
        return gpu_algorithms.Timed(timed.seconds + helpers * hw.part.helper_kernel_s, timed.extra_kernels + helpers)

    def conv_choice(self, geo, hw, w, direct, bandwidth, library) -> ConvChoice:
        """The fastest algorithm of the GPU's list where a library runs the conv (dense layers, gathered
        tiles); the direct implicit GEMM elsewhere (a fused kernel) and for maps of unknown shape. A library
        call also runs helper kernels: the algorithm's own (cuDNN's precomputed offsets, timed with it) and
        the framework's around it (TensorFlow 1.x transforms the filter on every call; the same for every
        algorithm, so added after the choice)."""
        algorithms, runs = hw.part.algorithms, _library_runs(w, library)
        own = np.array([a.helper_kernels for a in algorithms])
        if len(algorithms) == 1:      # nothing to choose: the direct implicit GEMM and its own helpers
            best = np.zeros(np.shape(direct), int)
            seconds, extra = direct + own[0] * runs * hw.part.helper_kernel_s, own[0] * runs + 0.0 * direct
        else:
            timed = self.conv_times(geo, hw, w, direct, bandwidth, library)
            best = np.argmin(timed.seconds, axis=0)          # ties: the earlier of the list (implicit GEMM first)
            pick = lambda a: np.take_along_axis(a, best[None], axis=0)[0]  # noqa: E731
            seconds, extra = pick(timed.seconds), pick(timed.extra_kernels)
        names = np.array([a.name for a in algorithms])
        framework = hw.part.framework_conv_kernels * runs
        helper_s = (own[best] * runs + framework) * hw.part.helper_kernel_s
        return ConvChoice(seconds + framework * hw.part.helper_kernel_s, extra + framework, names[best], helper_s)

    def gather_bandwidth(self, hw, block=None) -> float:
        return hw.part.gather_bandwidth

    def scatter_bandwidth(self, hw, block=None) -> float:
        return hw.part.scatter_bandwidth or hw.part.gather_bandwidth

    def mask_bandwidth(self, hw) -> float:
        return hw.part.mask_bandwidth

    def candidates(self, hw) -> tuple[Tile, ...]:
        t = hw.tiling
        return hw.part.tiles or (Tile(t.tile_m, t.tile_n, 0, 0),)

    def gemm_tile(self, geo, hw, w, memory=None) -> TileChoice:
        """The fastest tile of the table for the pixels the hardware schedules (whole blocks), timed as a
        library times it: compute, or the conv's traffic in that tile (`memory`) where that is longer.
        The traffic (which knows the memory) asks first, then the latency steps: the answer is kept."""
        last = self._last
        if memory is None and last is not None and last[0] is geo and last[1] is hw and last[2] is w:
            return last[3]
        choice = choose(self.candidates(hw), hw, w.padded_pixels, geo.cout, geo.gemm_k, at=w.pixels, memory=memory)
        self._last = (geo, hw, w, choice)   # strong references: the ids cannot be reused while kept
        return choice

    _last = None

    def latency_steps(self, geo, hw, w, block):
        tile = self.gemm_tile(geo, hw, w)
        per_unit = hw.peak_macs_per_s / hw.units
        tiles = np.ceil(w.pixels / tile.m) * np.ceil(geo.cout / tile.n)
        busy = np.maximum(np.minimum(tiles, hw.units), 1)
        return [w.macs / hw.peak_macs_per_s, w.macs / (busy * per_unit), tile.seconds_at, tile.seconds]

    def with_channel_group(self, hw, group: int):
        """Work units of G output channels: every tile of the table is G wide."""
        hw = super().with_channel_group(hw, group)
        tiles = tuple(dict.fromkeys(replace(t, n=group) for t in hw.part.tiles))
        return replace(hw, part=replace(hw.part, tiles=tiles))

    def describe(self, hw) -> str:
        p = hw.part
        table = f"{len(p.tiles)} library tile shapes" if p.tiles else f"{p.tiles_per_sm} tile(s)/SM"
        algos = ", ".join(a.name + (f" F({a.output_tile}x{a.output_tile},3x3) at {a.efficiency:.2f}" if a.output_tile
                                    else "") for a in p.algorithms)
        return (f"launch {p.launch_s * 1e6:g} µs + dispatch {p.dispatch_s * 1e6:g} µs per op on the host, "
                f"overlapped with the GPU ({p.kernel_gap_s * 1e6:g} µs gap per kernel; {p.graph_launch_s * 1e6:g} µs "
                f"per node in a CUDA graph), {table}, max {p.max_blocks_per_sm} blocks/SM; conv algorithms: {algos}")


register(Gpu())
