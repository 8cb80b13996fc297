"""Systolic arrays (TPU-like, Gemmini-like), simulated fold by fold and buffer chunk by buffer chunk.

The GEMM of a layer (M output pixels x K reduction x N output channels) is folded onto an R x C array
as SCALE-Sim does: weight-stationary maps K on rows and N on columns and streams the M pixels;
output-stationary maps M on rows and N on columns and streams K; input-stationary maps K on rows and
M on columns and streams N. Each fold costs its streaming length plus fill and drain (and, where the
stationary operand is not double-buffered, the cycles to load it).

Memory: one double-buffered SRAM per operand. A read buffer holds a window of its operand's fetch
stream (the order in which the folds need the data); when a fold needs data past the window, the
window slides by the prefetch half, and that half must have arrived from DRAM (or the array stalls).
A re-read of data the window has passed runs the stream around (the prefetcher only knows its order).
The output buffer drains one half to DRAM while the array fills the other; it stalls when both are full.
Everything happens at the granularity of folds and buffer chunks: no loop per cycle or per PE.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import SparsesimError
from .buffers import OPERANDS, Batch, read_batches, run_batches, write_batches
from .folds import DATAFLOWS, Folds, Gemm, SystolicConfig, fold

__all__ = ["DATAFLOWS", "Gemm", "SystolicConfig", "SystolicResult", "simulate_gemm"]


@dataclass(frozen=True)
class SystolicResult:
    compute_cycles: int                  # folds' streaming, fill and drain, no stalls
    stall_cycles: int
    overall_cycles: int                  # with the first buffer fill and the last drain to DRAM
    folds: int
    mapping_efficiency: float            # mean over folds of the array cells a fold maps
    compute_utilisation: float           # mean over folds of MAC cycles / (cells x fold cycles)
    macs: int
    sram_reads: dict[str, int]
    sram_writes: dict[str, int]
    dram_reads: dict[str, int]
    dram_writes: dict[str, int]
    stalls: dict[str, int] = field(default_factory=dict)   # by cause: '<operand>_bandwidth'

    @property
    def total_cycles(self) -> int:
        return self.compute_cycles + self.stall_cycles


def simulate_gemm(g: Gemm, cfg: SystolicConfig) -> SystolicResult:
    """One GEMM on one array: cycles, stalls by cause, SRAM and DRAM accesses."""
    if min(g.m, g.k, g.n) < 0:
        raise SparsesimError(f"GEMM dimensions must be >= 0, got M={g.m} K={g.k} N={g.n}")
    empty = {k: 0 for k in OPERANDS}
    if min(g.m, g.k, g.n) == 0:
        return SystolicResult(0, 0, 0, 0, 0.0, 0.0, 0, dict(empty), dict(empty), dict(empty), dict(empty))
    f = fold(g, cfg)
    starts = np.concatenate([[0], np.cumsum(f.cycles)[:-1]])
    compute = int(f.cycles.sum())
    words = dict(zip(OPERANDS, cfg.sram_words))
    bw = dict(zip(OPERANDS, cfg.bandwidth))
    scale = {"ifmap": 1.0 if g.ifmap_stream is None else g.ifmap_stream / f.streams["ifmap"].words, "filter": 1.0}
    batches: list[Batch] = []
    for op in ("ifmap", "filter"):
        batches += read_batches(f, op, f.streams[op], scale[op], cfg, starts, words[op])
    writes, leftover = write_batches(f, starts, words["ofmap"])
    batches += writes
    chunk = {op: math.ceil((words[op] - math.ceil(words[op] / 2)) / bw[op]) * bw[op] for op in ("ifmap", "filter")}
    chunk["ofmap"] = words["ofmap"] / 2
    stalls = run_batches(batches, cfg, {op: chunk[op] / bw[op] for op in OPERANDS}) if cfg.limited_bandwidth \
        else {op: 0.0 for op in OPERANDS}
    stall = int(round(sum(stalls.values())))
    fills = {op: min(math.ceil(math.ceil(words[op] / 2) / bw[op]), math.ceil(f.streams[op].entries * scale[op] / bw[op]))
             * bw[op] for op in ("ifmap", "filter")}
    slides = {op: sum(b.count for b in batches if b.operand == op) for op in ("ifmap", "filter")}
    dram_reads = {op: int(round(fills[op] + chunk[op] * slides[op])) for op in ("ifmap", "filter")}
    if not cfg.limited_bandwidth:     # fetched as needed, each distinct word once while it stays buffered
        unique = {"ifmap": g.ifmap_unique or f.streams["ifmap"].words * scale["ifmap"],
                  "filter": f.streams["filter"].words}
        dram_reads = {op: int(unique[op] * (1 if unique[op] <= words[op] else _passes(f, op))) for op in unique}
    first = max(fills[op] / bw[op] for op in ("ifmap", "filter"))
    outputs = int(f.outputs.sum())
    overall = int(math.ceil(first + compute + stall + leftover / bw["ofmap"]))
    n = len(f.cycles)
    return SystolicResult(
        compute_cycles=compute, stall_cycles=stall, overall_cycles=overall, folds=n,
        mapping_efficiency=float((f.row_used * f.col_used).sum() / (n * cfg.rows * cfg.cols)),
        compute_utilisation=float((f.macs_cycles / (cfg.rows * cfg.cols * f.cycles)).mean()),
        macs=g.macs, sram_reads={op: int(round(f.reads[op].sum())) for op in ("ifmap", "filter")},
        sram_writes={"ofmap": int(f.writes.sum())}, dram_reads=dram_reads, dram_writes={"ofmap": outputs},
        stalls={f"{op}_bandwidth": int(round(v)) for op, v in stalls.items()})


def _passes(f: Folds, operand: str) -> int:
    """How many times the folds read the whole of an operand's stream."""
    s = f.streams[operand]
    return max(int(round((s.hi - s.lo).sum() / s.words)), 1)


