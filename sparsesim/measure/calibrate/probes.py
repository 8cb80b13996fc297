"""What `sparsesim calibrate` times: one frozen dataclass per kind of probe, and the plan of probes for a
device (sizes from its caches, a small grid of conv shapes). No torch here: the kernels that run a probe
are the device's (`kernels`), its time the clock's (`clock`), so a scripted clock can stand in for both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Union

WORD = {"fp32": 4, "fp16": 2, "bf16": 2}


@dataclass(frozen=True)
class Copy:
    """dst.copy_(src) of `nbytes`, a working set of 2 x nbytes sized for one memory level."""
    level: str
    nbytes: int

    @property
    def moved(self) -> int:          # read + write, as the memory levels' bandwidths count
        return 2 * self.nbytes

    @property
    def label(self) -> str:
        return f"copy {self.level}"


@dataclass(frozen=True)
class Overhead:
    """A call that does (almost) nothing: `copy` (a 4-element copy_), `conv` (a 1x1 conv of one pixel and
    one channel), `step` (the `ops` = 4 gather-scatter steps of a 1-channel 8x8 layer: a CPU's cost per
    launch as the cost model counts launches) or `launch` (`ops` back-to-back tiny ops: a GPU's launch rate)."""
    op: str
    ops: int = 1

    @property
    def label(self) -> str:
        return f"{self.op} call"


@dataclass(frozen=True)
class Indexed:
    """The gather-scatter strategy's passes on `tiles` random B x B blocks of a channels x side x side
    map: `gather` reads (B + halo)^2 windows (a 3x3 conv's halo: 2) into a batch; `scatter` adds a batch
    of B x B blocks into the map; `reduce` is the mask step (the residual over the map, the block mask,
    the active blocks' list)."""
    op: str                  # gather | scatter | reduce
    channels: int
    side: int
    tiles: int
    block: int
    word: int = 4

    @property
    def window(self) -> int:
        return self.block + 2 if self.op == "gather" else self.block

    @property
    def moved(self) -> int:
        """The bytes the cost model bills the step (sparsesim.workload.strategies, residual masks), so that
        its time for them is the kernel's: the gather reads the x_t and x_{t-1} tiles and writes the
        gathered one (3 words per tile element; the measured kernel reads the residual its reduce step
        formed, 2), the scatter-add reads the update and the state and writes the output (3); the reduction
        reads x_t and x_{t-1} whole and writes the bitmask and the index list."""
        if self.op == "reduce":
            blocks = (self.side // self.block) ** 2
            return 2 * self.channels * self.side ** 2 * self.word + math.ceil(blocks / 8) + 4 * self.tiles
        return 3 * self.channels * self.tiles * self.window ** 2 * self.word

    @property
    def label(self) -> str:
        return f"{self.op} B={self.block}"


@dataclass(frozen=True)
class Conv:
    """One conv as an implicit GEMM: `batch` maps of height x width output pixels (no padding: the halo
    is in the input, as on gathered tiles), M = pixels, N = cout, K = cin x kernel^2."""
    kernel: int
    stride: int
    width: int
    m: int                   # asked pixels; the conv runs batch x height x width >= m
    cout: int
    cin: int

    @property
    def batch(self) -> int:
        return max(1, math.ceil(self.m / self.width ** 2))

    @property
    def height(self) -> int:
        return max(1, math.ceil(self.m / (self.batch * self.width)))

    @property
    def gemm_m(self) -> int:
        return self.batch * self.height * self.width

    @property
    def gemm_k(self) -> int:
        return self.cin * self.kernel ** 2

    @property
    def flops(self) -> int:
        return 2 * self.gemm_m * self.cout * self.gemm_k

    def input_side(self, out: int) -> int:
        return (out - 1) * self.stride + self.kernel

    @property
    def label(self) -> str:
        return f"conv {self.kernel}x{self.kernel}/{self.stride} w{self.width} M{self.gemm_m} N{self.cout} K{self.gemm_k}"


Probe = Union[Copy, Overhead, Indexed, Conv]


@dataclass(frozen=True)
class Grid:
    """The conv-efficiency grid: (kernel, stride) classes x widths x M x N x C_in."""
    classes: tuple[tuple[int, int], ...]
    widths: tuple[int, ...]
    m: tuple[int, ...]
    n: tuple[int, ...]
    cin: tuple[int, ...]

    def convs(self) -> list[Conv]:
        return [Conv(k, s, w, m, n, c) for k, s in self.classes for w in self.widths for m in self.m
                for n in self.n for c in self.cin]


@dataclass(frozen=True)
class Plan:
    """Every probe of one calibration, and the reference conv whose rate becomes `sustained_tflops`."""
    copies: tuple[Copy, ...]
    overheads: tuple[Overhead, ...]
    indexed: tuple[Indexed, ...]
    reference: Conv
    grid: Grid

    def probes(self) -> list[Probe]:
        # overheads first: the fits subtract them from every other probe
        return [*self.overheads, *self.copies, *self.indexed, self.reference, *self.grid.convs()]


MiB = 2 ** 20
CPU_GRID = Grid(((1, 1), (3, 1), (3, 2)), (2, 4, 8, 16, 64), (128, 1024, 8192), (16, 64, 192), (8, 32, 128))
CPU_QUICK_GRID = Grid(((1, 1), (3, 1)), (4, 16), (64, 512), (8, 32), (8, 32))
CUDA_GRID = Grid(((1, 1), (3, 1), (3, 2)), (4, 8, 16, 32, 128), (4096, 32768, 262144), (32, 128, 512),
                 (32, 128, 512))
CUDA_QUICK_GRID = Grid(((1, 1), (3, 1)), (8, 32), (1024, 16384), (32, 128), (32, 128))


BLOCKS = (2, 4, 8, 16, 32)
FIGURE_BLOCK = 8          # the block whose rates are the plain gather_gbps / scatter_gbps / mask_gbps


def indexed_probes(channels: int, side: int, blocks, word: int) -> tuple[Indexed, ...]:
    """Gather and scatter at every block size (half the blocks active, at least two), the reduction at
    FIGURE_BLOCK."""
    active = lambda b: max(2, (side // b) ** 2 // 2)  # noqa: E731
    return (*(Indexed(op, channels, side, active(b), b, word) for b in blocks for op in ("gather", "scatter")),
            Indexed("reduce", channels, side, active(FIGURE_BLOCK), FIGURE_BLOCK, word))


def _bytes(x: float) -> int:
    return max(4096, int(x) // 4096 * 4096)


def cpu_plan(caches: Mapping[str, int], threads: int, quick: bool, word: int = 4) -> Plan:
    """Copies that sit in L1, L2 (per core: the working set split over `threads`), the last-level cache
    and DRAM (several times the LLC, at most 1 GiB); the indexed passes as the gather-scatter strategy
    runs them; a tiny copy and a tiny conv (their fixed costs, taken off the copies and convs) and the
    steps of a tiny layer (the cost per launch)."""
    llc, l2 = caches.get("llc", 32 * MiB), caches.get("l2", MiB)
    dram = min(max(4 * llc, 64 * MiB), 1024 * MiB) if not quick else 32 * MiB
    # the LLC's working set: well past the L2s, well inside the LLC (a VM may report its host's whole L3,
    # of which it holds a share: half of it would measure DRAM)
    llc_set = min(llc / 2, max(4 * l2 * threads, 8 * MiB))
    sizes = {"l1": caches.get("l1", 32 * 1024) * threads / 4, "l2": l2 * threads / 4, "llc": llc_set / 2,
             "dram": dram / 2}
    if quick:
        sizes = {k: min(v, 4 * MiB) for k, v in sizes.items()}
    # a layer of the size the kernels are measured on (64 channels at 64 x 64: 1 MiB, cache-resident; a map
    # of 9 MiB halves the figures), every block size: the indexed passes' rate per byte grows with the
    # block (longer rows per index), which is what ranks block sizes
    return Plan(copies=tuple(Copy(level, _bytes(size)) for level, size in sizes.items()),
                overheads=(Overhead("copy"), Overhead("conv"), Overhead("step", 4)),
                indexed=indexed_probes(16 if quick else 64, 32 if quick else 64, (2, 8) if quick else BLOCKS, word),
                reference=Conv(3, 1, 24, 576, 16, 16) if quick else Conv(3, 1, 80, 96 * 80, 64, 64),
                grid=CPU_QUICK_GRID if quick else CPU_GRID)


def cuda_plan(caches: Mapping[str, int], threads: int, quick: bool, word: int = 4) -> Plan:
    """A GPU: copies inside its L2 and in HBM (8x the L2), the indexed passes on a large map, the launch
    rate of back-to-back tiny kernels."""
    l2 = caches.get("l2", 40 * MiB)
    sizes = {"l2": l2 / 4, "dram": (8 * l2 if not quick else 2 * l2) / 2}
    return Plan(copies=tuple(Copy(level, _bytes(size)) for level, size in sizes.items()),
                overheads=(Overhead("copy"), Overhead("launch", 64)),
                indexed=indexed_probes(64 if quick else 128, 256 if quick else 512, (2, 8) if quick else BLOCKS, word),
                reference=Conv(3, 1, 64, 64 * 64, 128, 128) if quick else Conv(3, 1, 128, 128 * 128 * 8, 256, 256),
                grid=CUDA_QUICK_GRID if quick else CUDA_GRID)
