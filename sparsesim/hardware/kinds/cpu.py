"""CPUs: a measured sustained conv rate per core (or a measured conv-efficiency table per GEMM shape),
register-blocked output channels, op dispatch, and gather and scatter at their own measured bandwidths."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...text import si
from .. import conv_table
from .base import ConvChoice, Kind, register


@dataclass(frozen=True)
class CpuPart:
    sustained_flops: float     # measured conv throughput, the realistic roof (FLOP/s)
    launch_s: float            # per operator dispatch
    gather_bandwidth: float    # bytes/s of the indexed gather passes (0: as streaming)
    scatter_bandwidth: float = 0.0   # bytes/s of the indexed scatter-add passes (0: as the gather)
    mask_bandwidth: float = 0.0      # bytes/s of the mask step, an elementwise pass and a list (0: streaming)
    gather_by_block: tuple[tuple[float, float], ...] = ()    # (B, bytes/s) measured per block size
    scatter_by_block: tuple[tuple[float, float], ...] = ()
    conv_table: conv_table.ConvTable | None = None   # measured rate per GEMM shape (None: sustained_flops)


class Cpu(Kind):
    name, section = "cpu", "cpu"

    def parse(self, r) -> CpuPart:
        c = r.sub(self.section)
        table = c.get("conv_efficiency", str, None)
        return CpuPart(sustained_flops=c.get("sustained_tflops", float, positive=True) * 1e12,
                       launch_s=c.get("op_overhead_us", float, positive=True) * 1e-6,
                       gather_bandwidth=c.get("gather_gbps", float, 0.0) * 1e9,
                       scatter_bandwidth=c.get("scatter_gbps", float, 0.0) * 1e9,
                       mask_bandwidth=c.get("mask_gbps", float, 0.0) * 1e9,
                       gather_by_block=by_block_rates(c, "gather_gbps_by_block"),
                       scatter_by_block=by_block_rates(c, "scatter_gbps_by_block"),
                       conv_table=None if table is None else conv_table.load(
                           Path(r.path).parent / table, r.sub("tiling").get("reuse_n", int, positive=True)))

    def dispatch_s(self, hw, launches, graphs: bool = False):
        return launches * hw.part.launch_s   # no graph capture on a CPU: every op dispatches

    def gather_bandwidth(self, hw, block=None):
        return at_block(hw.part.gather_by_block, hw.part.gather_bandwidth, block)

    def scatter_bandwidth(self, hw, block=None):
        p = hw.part
        if not (p.scatter_by_block or p.scatter_bandwidth):
            return self.gather_bandwidth(hw, block)
        return at_block(p.scatter_by_block, p.scatter_bandwidth, block)

    def mask_bandwidth(self, hw) -> float:
        return hw.part.mask_bandwidth

    def latency_steps(self, geo, hw, w, block):
        t = hw.tiling
        per_unit = hw.peak_macs_per_s / hw.units
        lanes = np.ceil(geo.cout / t.reuse_n) * t.reuse_n / geo.cout  # output channels fill whole register blocks
        useful = busiest_core_macs(geo, hw, w, w.pixels)
        if hw.part.conv_table is not None:
            return [w.macs / hw.peak_macs_per_s, useful / per_unit, *table_times(geo, hw, w, lanes)]
        sustained = hw.part.sustained_flops / 2 / hw.units   # measured conv throughput per core
        scheduled = busiest_core_macs(geo, hw, w, w.padded_pixels)
        return [w.macs / hw.peak_macs_per_s, useful / per_unit, useful / sustained * lanes,
                scheduled / sustained * lanes]

    def conv_choice(self, geo, hw, w, direct, bandwidth, library) -> ConvChoice:
        """The direct conv plus the copies a library call (oneDNN through torch) makes around it: it
        reorders the plain weights into its blocked layout on every call (ONEDNN_VERBOSE=1 shows a
        `reorder abcd -> ABcd16b16a` of the weights before each `convolution jit:avx512_core`: torch's
        eager convs keep no prepacked weights), and a batch of gathered tiles, written channel-major by
        the gather, is first copied to batch-major (torch's profiler shows `aten::contiguous` -> `copy_`
        inside `conv2d`). Both are copies at the layer's backing level, where the weights and the
        gathered tiles sit between the other kernels' calls; the calibrated table's convs ran back to
        back on contiguous, cache-warm operands. Without them the dense 192-channel convs of 5x6 maps
        (1.3 MB of weights, measured 215 us) were predicted at half their time."""
        seconds = direct + np.where(library, relayout_bytes(geo, hw, w) / bandwidth, 0.0)
        return ConvChoice(seconds, 0.0 * seconds, np.full(np.shape(seconds), "direct"))

    def describe(self, hw) -> str:
        table = f", conv efficiency per GEMM shape from {Path(hw.part.conv_table.path).name}" \
            if hw.part.conv_table is not None else ""
        return f"sustained {si(hw.part.sustained_flops, 'FLOP/s')} (measured), {hw.part.launch_s * 1e6:g} µs per op" + table


def by_block_rates(c, key: str) -> tuple[tuple[float, float], ...]:
    """`{B: GB/s, ...}` -> ((B, bytes/s), ...) by B; () where absent."""
    table = c.get(key, dict, {})
    for b, rate in table.items():
        if not (isinstance(b, int) and b >= 1 and isinstance(rate, (int, float)) and not isinstance(rate, bool)
                and rate > 0):
            c.fail(key, "a mapping of block sizes (integers >= 1) to GB/s (> 0)", table)
    return tuple(sorted((float(b), float(rate) * 1e9) for b, rate in table.items()))


def at_block(table, default: float, block):
    """The rate at block size `block`, interpolated in log B between the measured ones (held at the ends);
    `default` where none were measured or the block is unknown (dense work)."""
    if not table or block is None:
        return default
    blocks, rates = (np.log([t[i] for t in table]) for i in (0, 1))
    return np.exp(np.interp(np.log(np.maximum(np.asarray(block, np.float64), 1.0)), blocks, rates))


def table_times(geo, hw, w, lanes):
    """t_util and t_occupancy from the measured table: the useful pixels, then the whole blocks the conv
    runs on, each at the rate the table gives its GEMM shape (the table's rate is the whole machine's at
    the calibrated thread count, so no per-core split here: small GEMMs that keep one core busy measured
    slow)."""
    per_pixel = np.where(w.pixels > 0, w.macs / np.maximum(w.pixels, 1), geo.macs_per_pixel)
    width = w.tile_w if w.tile_w is not None else geo.out_w
    rate = lambda px: hw.part.conv_table.rate(geo.kh, geo.sh, width, px, geo.cout, geo.gemm_k) / 2  # noqa: E731  MAC/s
    return [w.pixels * per_pixel * lanes / rate(w.pixels), w.padded_pixels * per_pixel * lanes / rate(w.padded_pixels)]


def relayout_bytes(geo, hw, w):
    """Bytes moved (read + write) by a library conv's own copies: the weights' reorder (none where no
    block is active: an empty batch returns before it), and where the conv reads a gather buffer (sparse
    work, first layer of a region) the tiles' copy to batch-major."""
    if not w.sparse:
        return 2 * geo.weight_elems * hw.word_bytes
    return 2 * (geo.weight_elems * (w.blocks > 0) + w.gathered_in * np.asarray(w.first)) * hw.word_bytes


def busiest_core_macs(geo, hw, w, pixels):
    """MACs on the busiest core when `pixels` output pixels are dealt out in GEMM tiles: an even share,
    but never less than one whole tile (a core cannot split a tile). Both terms grow with the pixels, so
    the time never falls as work is added (dividing by the cores a few tiles keep busy did: one tile
    more could halve the time)."""
    per_pixel = np.where(w.pixels > 0, w.macs / np.maximum(w.pixels, 1), geo.macs_per_pixel)
    tile = np.minimum(pixels, hw.tiling.tile_m) * np.minimum(geo.cout, hw.tiling.tile_n) / geo.cout
    return np.maximum(pixels / hw.units, tile) * per_pixel


register(Cpu())
