"""A layer's GEMM folded onto a systolic array, as SCALE-Sim folds it, and the operands' fetch streams.

Weight-stationary maps K on rows and N on columns and streams the M pixels; output-stationary maps M
on rows and N on columns and streams K; input-stationary maps K on rows and M on columns and streams
N. Each fold costs its streaming length plus fill and drain (and, where the stationary operand is not
double-buffered, the cycles to load it). A fetch stream is the order in which a buffer fetches an
operand; each fold reads a range of it.
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
class Gemm:
    """One layer as a GEMM. `ifmap_stream`: words of input the ifmap buffer fetches per pass (None:
    the im2col matrix itself, duplicates included, as SCALE-Sim streams it). `sparsity` (n, m): n of
    every m weights along K are kept (SCALE-Sim's N:M mode). Without a bandwidth limit (SCALE-Sim's
    CALC mode) the buffers fetch distinct words only: `ifmap_unique` of them for the input."""
    m: int
    k: int
    n: int
    ifmap_stream: int | None = None
    sparsity: tuple[int, int] = (1, 1)
    name: str = ""
    ifmap_unique: int | None = None    # distinct input words (for unlimited-bandwidth runs; None: the stream)

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n

    @property
    def k_stored(self) -> int:
        """Rows of the (compressed) weight matrix the array holds."""
        n, m = self.sparsity
        return self.k if n == m else n * (self.k // m) + min(n, self.k % m)   # a partial block keeps up to n


@dataclass(frozen=True)
class Stream:
    """An operand's fetch stream (the order its buffer fetches it in) and the range each fold reads."""
    words: float               # words in one pass, null padding excluded
    entries: float             # fetch-matrix entries with SCALE-Sim's null padding (what DRAM lines carry)
    lo: np.ndarray             # per fold: first stream position read
    hi: np.ndarray             # per fold: one past the last
    reverse: bool = False      # folds read their range last row first (SCALE-Sim flips stationary loads)


def _diagonal_stream(used: np.ndarray, t: int, width: int, section: np.ndarray) -> Stream:
    """Sections of t rows x `width` columns (the first used[s] valid) stacked and rolled out along
    anti-diagonals, as SCALE-Sim orders a skewed operand's prefetches; fold i reads section[i], from
    its first row's diagonal to its last row's."""
    rows = len(used) * t
    first = np.arange(rows)
    valid = np.repeat(used, t)
    per_diag = np.zeros(rows + width + 1, np.int64)
    np.add.at(per_diag, first, 1)
    np.add.at(per_diag, first + valid, -1)
    starts = np.concatenate([[0], np.cumsum(np.cumsum(per_diag))])   # valid entries before diagonal d
    lo = starts[section * t]
    hi = starts[(section + 1) * t + used[section] - 1]
    return Stream(words=float(valid.sum()), entries=float(rows * width), lo=lo.astype(np.float64),
                   hi=hi.astype(np.float64))


def _rowmajor_stream(rows: int, widths: np.ndarray, section: np.ndarray, row_lo: np.ndarray,
                     row_hi: np.ndarray, padded: int, reverse: bool = False) -> Stream:
    """Sections of `rows` x widths[s] stacked row-major (no skew); fold i reads rows [row_lo, row_hi)."""
    offsets = np.concatenate([[0], np.cumsum(rows * widths)])
    w = widths[section]
    return Stream(words=float(offsets[-1]), entries=float(rows * padded * len(widths)),
                   lo=(offsets[section] + row_lo * w).astype(np.float64),
                   hi=(offsets[section] + row_hi * w).astype(np.float64), reverse=reverse)


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
    phase: dict[str, tuple[np.ndarray, np.ndarray]]   # operand -> (start offset, length) within a fold
    streams: dict[str, Stream]


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
        phase = {"filter": (0 * load, R + 0 * load), "ifmap": (load, t + R - 1 + 0 * load),
                 "ofmap": (load + R - 1, t + C - 1 + 0 * load)}
        streams = {"ifmap": _diagonal_stream(np.maximum(k_rows, 1), t, R, fr),
                   "filter": _rowmajor_stream(g.k_stored, cu, fc, fr * R, fr * R + rows, C, reverse=True)}
    elif cfg.dataflow == "os":        # M on rows, N on columns, K streams
        ru, cu = _used(g.m, R), _used(g.n, C)
        fc, fr = _fold_grid(len(cu), len(ru))
        rows, cols, t = ru[fr], cu[fc], g.k
        cycles = np.full(len(fc), t + R + C - 2)
        reads = {"ifmap": t * rows, "filter": t * cols}
        outputs = rows * cols
        writes = outputs + R + C           # SCALE-Sim counts R + C more per fold (systolic_compute_os.py)
        zero = np.zeros(len(fc))
        phase = {"ifmap": (zero, zero + t + R - 1), "filter": (zero, zero + t + C - 1),
                 "ofmap": (zero + t - 1, zero + R + C - 1)}
        streams = {"ifmap": _diagonal_stream(ru, t, R, fr),
                   "filter": _diagonal_stream(cu, t, C, fc)}
    else:                             # "is": K on rows, M on columns, N streams
        ru, cu = _used(g.k, R), _used(g.m, C)
        fc, fr = _fold_grid(len(cu), len(ru))
        rows, cols, t = ru[fr], cu[fc], g.n
        load = _stationary_load(len(fc), cfg)
        cycles = load + R + C + t - 2
        reads = {"ifmap": rows * cols, "filter": t * rows}
        writes = outputs = t * cols
        phase = {"ifmap": (0 * load, R + 0 * load), "filter": (load, t + R - 1 + 0 * load),
                 "ofmap": (load + R - 1, t + C - 1 + 0 * load)}
        streams = {"ifmap": _rowmajor_stream(g.k, cu, fc, fr * R, fr * R + rows, C, reverse=True),
                   "filter": _diagonal_stream(ru, t, R, fr)}
    as_float = lambda a: np.broadcast_to(np.asarray(a, np.float64), cycles.shape)  # noqa: E731
    return Folds(row_used=rows, col_used=cols, cycles=np.asarray(cycles, np.int64),
                  reads={k: as_float(v) for k, v in reads.items()}, writes=as_float(writes),
                  outputs=as_float(outputs), macs_cycles=as_float(rows * cols * t),
                  phase={op: (as_float(a), as_float(b)) for op, (a, b) in phase.items()}, streams=streams)
