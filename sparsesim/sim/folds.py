"""A layer's GEMM folded onto a systolic array, as SCALE-Sim folds it, and the operands' fetch streams.

Weight-stationary maps K on rows and N on columns and streams the M pixels; output-stationary maps M
on rows and N on columns and streams K; input-stationary maps K on rows and M on columns and streams
N. Each fold costs its streaming length plus fill and drain (and, where the stationary operand is not
double-buffered, the cycles to load it). Which section of each read operand's fetch stream a fold
asks for, and which block of outputs it writes, is SCALE-Sim's demand matrix (sim.operands holds the
streams themselves).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import SparsesimError

DATAFLOWS = ("ws", "os", "is")


@dataclass(frozen=True)
class SystolicConfig:
    rows: int
    cols: int
    dataflow: str = "ws"
    sram_words: tuple[int, int, int] = (32768, 32768, 32768)   # ifmap, filter, ofmap buffers
    bandwidth: tuple[float, float, float] = (10.0, 10.0, 10.0)  # DRAM words/cycle per operand
    shared_channel: bool = False      # one DRAM channel for all operands (else one each, as SCALE-Sim)
    preload_overlap: bool = False     # the stationary operand is double-buffered (TPU, Gemmini)
    sets_per_buffer: int = 100        # read-buffer bookkeeping granularity (SCALE-Sim: 1/100 of it)
    limited_bandwidth: bool = True    # False: SCALE-Sim's CALC mode, no stalls (bandwidth is an output)
    accumulate: bool = False          # partial sums stay in the output buffer across row folds where a
                                      # column fold's outputs fit (Gemmini's accumulator); SCALE-Sim spills
    run_ahead: bool = False           # SCALE-Sim's read prefetches: back to back from cycle 0, whether or
                                      # not the buffer has room (else a half is refetched once it is freed)

    def __post_init__(self) -> None:
        if self.dataflow not in DATAFLOWS:
            raise SparsesimError(f"dataflow must be one of {', '.join(DATAFLOWS)}, got {self.dataflow!r}")
        if self.rows < 1 or self.cols < 1:
            raise SparsesimError(f"array must be at least 1 x 1, got {self.rows} x {self.cols}")
        if min(self.sram_words) < 2 or min(self.bandwidth) <= 0:
            raise SparsesimError("SRAM sizes must hold at least 2 words and bandwidths must be positive")


@dataclass(frozen=True)
class Conv:
    """The convolution behind a GEMM's input operand: input h x w x c (padding included), filter
    fh x fw, one stride and dilation (SCALE-Sim's conv topology, whose output side is
    ceil((h - reach + s) / s) with reach = (f - 1) * dilation + 1)."""
    h: int
    w: int
    fh: int
    fw: int
    c: int
    stride: int
    dilation: int = 1

    @property
    def out(self) -> tuple[int, int]:
        s, d = self.stride, self.dilation
        return (math.ceil((self.h - (self.fh - 1) * d - 1 + s) / s),
                math.ceil((self.w - (self.fw - 1) * d - 1 + s) / s))


@dataclass(frozen=True)
class Gemm:
    """One layer as a GEMM: M output pixels x K reduction x N output channels. `conv`: the
    convolution whose im2col the input operand is (its words have addresses, so copies of a word are
    one word; None: a plain GEMM, every input word distinct). `pixels`: the output pixels streamed,
    in order, as int32 (row, column) pairs (None: all of them in raster order; a block-sparse layer
    streams its active blocks' pixels, whole blocks). `sparsity` (n, m): n of every m weights along K
    are kept (SCALE-Sim's N:M mode). Without a bandwidth limit (SCALE-Sim's CALC mode) the buffers
    fetch distinct words only: `ifmap_unique` of them for the input."""
    m: int
    k: int
    n: int
    sparsity: tuple[int, int] = (1, 1)
    name: str = ""
    ifmap_unique: int | None = None    # distinct input words (for unlimited-bandwidth runs; None: the stream)
    conv: Conv | None = None
    pixels: bytes | None = None

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n

    @property
    def k_stored(self) -> int:
        """Rows of the (compressed) weight matrix the array holds."""
        n, m = self.sparsity
        return self.k if n == m else n * (self.k // m) + min(n, self.k % m)   # a partial block keeps up to n


@dataclass(frozen=True)
class Folds:
    """Folds in the order the array runs them, with per-fold cycles and per-operand reads/writes."""
    row_used: np.ndarray
    col_used: np.ndarray
    cycles: np.ndarray
    reads: dict[str, np.ndarray]       # SRAM words per fold
    writes: np.ndarray                 # SRAM words per fold (SCALE-Sim's count)
    outputs: np.ndarray                # output words per fold that reach DRAM
    macs_cycles: np.ndarray            # mapped cells x streamed length (SCALE-Sim's compute cycles)
    out_phase: tuple[np.ndarray, np.ndarray]   # (start offset, length) of a fold's output writes
    col_fold: np.ndarray               # per fold: its column fold and row fold (column folds outer)
    row_fold: np.ndarray
    load: np.ndarray                   # cycles a fold spends loading its stationary operand
    lead: np.ndarray                   # SCALE-Sim demand lines before a fold's first output write
    out_rows: np.ndarray               # the block of outputs a fold writes along anti-diagonals
    passes: dict[str, int]             # how many times the folds read each operand whole
    demand: dict[str, "Demand"]        # per read operand, what each fold asks of its fetch stream


@dataclass(frozen=True)
class Demand:
    """What the folds ask of a read operand's fetch stream, one entry per fold: a section, and for
    operands fetched row by row the rows it reads (row_lo..row_hi) out of the `span` rows of its
    demand (rows past the operand's end are padding, read first: SCALE-Sim flips the block)."""
    section: np.ndarray
    row_lo: np.ndarray
    row_hi: np.ndarray
    span: int = 0

    def __len__(self) -> int:
        return len(self.section)


def _whole(sections: np.ndarray) -> Demand:
    return Demand(sections, 0 * sections, 0 * sections)


def _rows(sections: np.ndarray, row_folds: np.ndarray, R: int, total: int) -> Demand:
    return Demand(sections, row_folds * R, np.minimum(row_folds * R + R, total), R)


def _used(total: int, tile: int) -> np.ndarray:
    return np.minimum(tile, total - tile * np.arange(math.ceil(total / tile)))


def _fold_grid(n_outer: int, n_inner: int) -> tuple[np.ndarray, np.ndarray]:
    """Folds run column-fold outer, row-fold inner (SCALE-Sim's loop order)."""
    fc, fr = np.meshgrid(np.arange(n_outer), np.arange(n_inner), indexing="ij")
    return fc.ravel(), fr.ravel()


def _stationary_load(folds: int, cfg: SystolicConfig) -> np.ndarray:
    """Cycles each fold spends loading its stationary operand (R rows): every fold, or only the first
    where the next fold's operand loads behind the current one (double-buffered PEs)."""
    first = np.arange(folds) == 0
    return np.where(first | (not cfg.preload_overlap), cfg.rows, 0)


def fold(g: Gemm, cfg: SystolicConfig) -> Folds:
    R, C = cfg.rows, cfg.cols
    n_keep, m_keep = g.sparsity
    if cfg.dataflow == "ws":          # K' on rows, N on columns, M streams
        ru, cu = _used(g.k_stored, R), _used(g.n, C)
        fc, fr = _fold_grid(len(cu), len(ru))
        rows, cols, t = ru[fr], cu[fc], g.m
        load = _stationary_load(len(fc), cfg)
        cycles = load + R + C + t - 2
        k_rows = np.maximum(np.minimum(R, g.k - np.arange(len(ru)) * R), 0)   # ifmap columns SCALE-Sim reads
        reads = {"ifmap": t * k_rows[fr] * (m_keep / n_keep), "filter": rows * cols}
        writes = outputs = t * cols
        if cfg.accumulate and t * C <= cfg.sram_words[2]:     # only a column fold's last row fold leaves
            outputs = np.where(fr == len(ru) - 1, outputs, 0)
        phase = (load + R - 1, t + C - 1 + 0 * load)
        lead, out_rows, passes = 2 * R - 1 + 0 * load, t + 0 * load, {"ifmap": len(cu), "filter": 1}
        demand = {"ifmap": _whole(fr), "filter": _rows(fc, fr, R, g.k_stored)}
    elif cfg.dataflow == "os":        # M on rows, N on columns, K streams
        ru, cu = _used(g.m, R), _used(g.n, C)
        fc, fr = _fold_grid(len(cu), len(ru))
        rows, cols, t = ru[fr], cu[fc], g.k
        cycles = np.full(len(fc), t + R + C - 2)
        reads = {"ifmap": t * rows, "filter": t * cols}
        outputs = rows * cols
        writes = outputs + R + C           # SCALE-Sim counts R + C more per fold (systolic_compute_os.py)
        load = np.zeros(len(fc), np.int64)
        phase = (load + t - 1, load + R + C - 1)
        lead, out_rows = t - 1 + R - rows, rows        # a fold's output block is written flipped
        passes = {"ifmap": len(cu), "filter": len(ru)}
        demand = {"ifmap": _whole(fr), "filter": _whole(fc)}
    else:                             # "is": K on rows, M on columns, N streams
        ru, cu = _used(g.k, R), _used(g.m, C)
        fc, fr = _fold_grid(len(cu), len(ru))
        rows, cols, t = ru[fr], cu[fc], g.n
        load = _stationary_load(len(fc), cfg)
        cycles = load + R + C + t - 2
        reads = {"ifmap": rows * cols, "filter": t * rows}
        writes = outputs = t * cols
        phase = (load + R - 1, t + C - 1 + 0 * load)
        lead, out_rows, passes = 2 * R - 1 + 0 * load, t + 0 * load, {"ifmap": 1, "filter": len(cu)}
        demand = {"ifmap": _rows(fc, fr, R, g.k), "filter": _whole(fr)}
    as_float = lambda a: np.broadcast_to(np.asarray(a, np.float64), cycles.shape)  # noqa: E731
    return Folds(row_used=rows, col_used=cols, cycles=np.asarray(cycles, np.int64),
                  reads={k: as_float(v) for k, v in reads.items()}, writes=as_float(writes),
                  outputs=as_float(outputs), macs_cycles=as_float(rows * cols * t),
                  out_phase=(as_float(phase[0]), as_float(phase[1])), col_fold=fc, row_fold=fr,
                  load=np.asarray(load, np.int64), lead=np.asarray(lead, np.int64) + 0 * fc,
                  out_rows=np.asarray(out_rows, np.int64) + 0 * fc, passes=passes, demand=demand)
