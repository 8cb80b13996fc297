"""Systolic arrays (TPU-like, Gemmini-like), simulated fold by fold and buffer miss by buffer miss.

The GEMM of a layer (M output pixels x K reduction x N output channels) is folded onto an R x C array
as SCALE-Sim does: weight-stationary maps K on rows and N on columns and streams the M pixels;
output-stationary maps M on rows and N on columns and streams K; input-stationary maps K on rows and
M on columns and streams N. Each fold costs its streaming length plus fill and drain (and, where the
stationary operand is not double-buffered, the cycles to load it).

Memory: one double-buffered SRAM per operand. A read buffer holds a window of its operand's fetch
stream and serves a word from any copy of it it holds (an im2col stream holds an input word once per
window that reads it); a request for a word it does not hold slides the window by the prefetch half,
one DRAM transfer each (`sim.readbuf`). The output buffer drains one half to DRAM while the array
fills the other. With `run_ahead` (SCALE-Sim's files) the timing is SCALE-Sim's own, event by event
(`sim.runahead`); sparsesim's own arrays refetch a half only once it is free (`sim.buffers`).
Everything happens at the granularity of folds, misses and buffer halves: no loop per cycle or per PE.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import SparsesimError
from . import runahead
from .buffers import OPERANDS, read_batches, run_batches, write_batches
from .folds import DATAFLOWS, Conv, Folds, Gemm, SystolicConfig, fold
from .operands import operands
from .readbuf import Misses, Window, walk

__all__ = ["DATAFLOWS", "Conv", "Gemm", "SystolicConfig", "SystolicResult", "simulate_gemm"]
READS = ("ifmap", "filter")


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
    weight_fill_cycles: int = 0          # of overall_cycles, the wait for the first weights alone
    weight_channel_free: int = 0         # cycles before the end during which the weight channel idles

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
    words = dict(zip(OPERANDS, cfg.sram_words))
    bw = dict(zip(OPERANDS, cfg.bandwidth))
    if not cfg.limited_bandwidth:
        return _unlimited(g, cfg, f, words, bw)
    ops = operands(g, cfg)
    # sparsesim's own arrays hold each input word once: a buffer of B words spans B x (entries per
    # distinct word) positions of the im2col stream, and a transfer carries distinct words only
    dup = {"ifmap": max(ops["ifmap"].stack.entries / g.ifmap_unique, 1.0) if g.ifmap_unique and not cfg.run_ahead
           else 1.0, "filter": 1.0}
    span = {op: int(words[op] * dup[op]) for op in READS}
    misses = {op: walk(ops[op], f.demand[op], Window.of(ops[op].words, span[op], cfg.sets_per_buffer))
              for op in READS}
    half = {op: math.ceil(span[op] / 2) for op in READS}
    if cfg.run_ahead:     # SCALE-Sim: transfers are whole lines of `bandwidth` words
        lines = {op: math.ceil((span[op] - half[op]) / bw[op]) for op in READS}
        first = {op: min(math.ceil(half[op] / bw[op]), math.ceil(ops[op].stack.entries / bw[op])) for op in READS}
    else:
        lines = {op: (span[op] - half[op]) / dup[op] / bw[op] for op in READS}
        first = {op: min(half[op], ops[op].stack.entries) / dup[op] / bw[op] for op in READS}
    dram_reads = {op: int(round((first[op] + lines[op] * misses[op].total) * bw[op])) for op in READS}
    if cfg.run_ahead:
        return _scalesim_timing(g, cfg, f, misses, lines, first, words, bw, dram_reads)
    return _own_timing(g, cfg, f, misses, lines, first, words, bw, dram_reads)


def _result(g: Gemm, cfg: SystolicConfig, f: Folds, stall: int, overall: int, dram_reads: dict,
            dram_writes: int, stalls: dict, fill: int = 0, free: int = 0) -> SystolicResult:
    n = len(f.cycles)
    return SystolicResult(
        compute_cycles=int(f.cycles.sum()), stall_cycles=stall, overall_cycles=overall, folds=n,
        mapping_efficiency=float((f.row_used * f.col_used).sum() / (n * cfg.rows * cfg.cols)),
        compute_utilisation=float((f.macs_cycles / (cfg.rows * cfg.cols * f.cycles)).mean()),
        macs=g.macs, sram_reads={op: int(round(f.reads[op].sum())) for op in READS},
        sram_writes={"ofmap": int(f.writes.sum())}, dram_reads=dram_reads, dram_writes={"ofmap": dram_writes},
        stalls={f"{op}_bandwidth": int(round(stalls.get(op, 0))) for op in OPERANDS}, weight_fill_cycles=fill,
        weight_channel_free=free)


def _scalesim_timing(g, cfg, f, misses: dict[str, Misses], lines, first, words, bw, dram_reads) -> SystolicResult:
    """SCALE-Sim's USER-bandwidth timing: every fold is `length` demand lines, prefetches run ahead."""
    length = int(f.cycles[0])
    reads = {op: runahead.Reads(misses[op].fold * length + misses[op].line, misses[op].slides, lines[op])
             for op in READS}
    writes = runahead.Writes(f.out_rows, f.col_used.astype(np.int64), f.lead, length)
    n_lines = len(f.cycles) * length
    t = runahead.run(n_lines, reads, writes, words["ofmap"], int(bw["ofmap"]))
    start = min(-first[op] for op in READS)          # the first prefetches land before cycle 0
    return _result(g, cfg, f, t.total_cycles - n_lines, int(t.last_drain - start), dram_reads, t.dram_writes,
                   t.stalls)


def _own_timing(g, cfg, f, misses: dict[str, Misses], lines, first, words, bw, dram_reads) -> SystolicResult:
    """sparsesim's arrays: a slide waits for its prefetch half, which is fetched once the half is
    free; the output buffer drains a half while the array fills the other (`sim.buffers`)."""
    starts = np.concatenate([[0], np.cumsum(f.cycles)[:-1]])
    skipped = cfg.rows - f.load                       # demand lines a double-buffered load saves
    batches = []
    for op in READS:
        m = misses[op]
        at = starts[m.fold] + np.maximum(m.line - skipped[m.fold], 0)
        batches += read_batches(m.fold, at, m.slides, op)
    writes, leftover = write_batches(f, starts, words["ofmap"])
    transfer = {op: lines[op] for op in READS}
    transfer["ofmap"] = words["ofmap"] / 2 / bw["ofmap"]
    stalls, busy = run_batches(batches + writes, cfg, transfer)
    stall = int(round(sum(stalls.values())))
    ready = max(first[op] for op in READS)
    end = int(f.cycles.sum()) + stall
    overall = int(math.ceil(ready + end + leftover / bw["ofmap"]))
    fill = max(first["filter"] - first["ifmap"], 0)   # what weights fetched ahead would save
    free = max(int(end - busy["filter"]), 0)
    return _result(g, cfg, f, stall, overall, dram_reads, int(f.outputs.sum()), stalls, fill, free)


def _unlimited(g: Gemm, cfg: SystolicConfig, f: Folds, words: dict, bw: dict) -> SystolicResult:
    """SCALE-Sim's CALC mode: no bandwidth limit, each distinct word fetched once while it stays
    buffered (bandwidth is an output); the first fill and the last drain still take their time."""
    m_keep, n_keep = g.sparsity[1], g.sparsity[0]
    unique = {"ifmap": g.ifmap_unique or g.m * g.k * n_keep // m_keep, "filter": g.k_stored * g.n}
    reads = {op: int(unique[op] * (1 if unique[op] <= words[op] else f.passes[op])) for op in READS}
    ops = operands(g, cfg)
    first = max(min(math.ceil(words[op] / 2), ops[op].stack.entries) / bw[op] for op in READS)
    _, leftover = write_batches(f, np.zeros(len(f.cycles)), words["ofmap"])
    overall = int(math.ceil(first + f.cycles.sum() + leftover / bw["ofmap"]))
    return _result(g, cfg, f, 0, overall, reads, int(f.outputs.sum()), {})
