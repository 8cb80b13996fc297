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

DATAFLOWS = ("ws", "os", "is")
OPERANDS = ("ifmap", "filter", "ofmap")


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
    every m weights along K are kept (SCALE-Sim's N:M mode)."""
    m: int
    k: int
    n: int
    ifmap_stream: int | None = None
    sparsity: tuple[int, int] = (1, 1)
    name: str = ""

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n

    @property
    def k_stored(self) -> int:
        """Rows of the (compressed) weight matrix the array holds."""
        n, m = self.sparsity
        return self.k if n == m else math.ceil(self.k / m) * n


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


@dataclass(frozen=True)
class _Folds:
    """Folds in the order the array runs them, with per-fold cycles and per-operand reads/writes."""
    row_used: np.ndarray
    col_used: np.ndarray
    cycles: np.ndarray
    reads: dict[str, np.ndarray]       # SRAM words per fold
    writes: np.ndarray
    macs_cycles: np.ndarray            # mapped cells x streamed length (SCALE-Sim's compute cycles)
    phase: dict[str, tuple[np.ndarray, np.ndarray]]   # operand -> (start offset, length) within a fold
    section: dict[str, np.ndarray]     # operand -> which section of its fetch stream a fold reads


def _used(total: int, tile: int) -> np.ndarray:
    return np.minimum(tile, total - tile * np.arange(math.ceil(total / tile)))


def _fold_grid(outer: np.ndarray, inner: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Folds run column-fold outer, row-fold inner (SCALE-Sim's loop order)."""
    fc, fr = np.meshgrid(np.arange(len(outer)), np.arange(len(inner)), indexing="ij")
    return fc.ravel(), fr.ravel(), outer[fc.ravel()], inner[fr.ravel()]


def _folds(g: Gemm, cfg: SystolicConfig) -> _Folds:
    R, C = cfg.rows, cfg.cols
    n_keep, m_keep = g.sparsity
    if cfg.dataflow == "ws":          # K' on rows, N on columns, M streams
        fc, fr, cols, rows = _fold_grid(_used(g.n, C), _used(g.k_stored, R))
        t = g.m
        load = np.where((np.arange(len(fc)) > 0) & cfg.preload_overlap, 0, R)
        cycles = load + R + C + t - 2
        ifmap_rows = np.minimum(R, np.maximum(g.k - fr * R, 0))   # SCALE-Sim reads K columns of the ifmap
        reads = {"ifmap": t * ifmap_rows * (m_keep / n_keep), "filter": rows * cols}
        writes = t * cols
        phase = {"filter": (np.zeros_like(load), np.full_like(load, R)), "ifmap": (load, t + R - 1),
                 "ofmap": (load + R - 1, t + C - 1)}
        section = {"ifmap": fr, "filter": fc * len(np.unique(fr)) + fr}
    elif cfg.dataflow == "os":        # M on rows, N on columns, K streams
        fc, fr, cols, rows = _fold_grid(_used(g.n, C), _used(g.m, R))
        t = g.k
        cycles = np.full(len(fc), t + R + C - 2)
        reads = {"ifmap": t * rows, "filter": t * cols}
        writes = rows * cols + R + C            # SCALE-Sim adds R + C per fold (systolic_compute_os.py)
        zero = np.zeros_like(cycles)
        phase = {"ifmap": (zero, t + R - 1), "filter": (zero, t + C - 1), "ofmap": (zero + t - 1, R + C - 1)}
        section = {"ifmap": fr, "filter": fc}
    else:                             # "is": K on rows, M on columns, N streams
        fc, fr, cols, rows = _fold_grid(_used(g.m, C), _used(g.k, R))
        t = g.n
        load = np.where((np.arange(len(fc)) > 0) & cfg.preload_overlap, 0, R)
        cycles = load + R + C + t - 2
        reads = {"ifmap": rows * cols, "filter": t * rows}
        writes = t * cols
        phase = {"ifmap": (np.zeros_like(load), np.full_like(load, R)), "filter": (load, t + R - 1),
                 "ofmap": (load + R - 1, t + C - 1)}
        section = {"ifmap": fc * len(np.unique(fr)) + fr, "filter": fr}
    shape = cycles.shape
    phase = {op: (np.broadcast_to(np.asarray(a, np.float64), shape), np.broadcast_to(np.asarray(b, np.float64), shape))
             for op, (a, b) in phase.items()}
    return _Folds(row_used=rows, col_used=cols, cycles=cycles.astype(np.int64),
                  reads={k: np.asarray(v, np.float64) for k, v in reads.items()},
                  writes=np.asarray(writes, np.float64), macs_cycles=(rows * cols * t).astype(np.float64),
                  phase=phase, section=section)


@dataclass
class _Channel:
    free: float = 0.0


@dataclass
class _Event:
    time: float            # nominal cycle (without stalls)
    order: int
    operand: str
    kind: str              # "slide" (read buffer needs its prefetch half) | "full" | "need" (output)
    index: int


def _read_slides(f: _Folds, operand: str, stream_words: float, cfg: SystolicConfig, starts: np.ndarray,
                 buffer_words: int) -> tuple[list[float], int]:
    """Nominal cycles at which the read buffer's window must slide, and the words of the first fill.

    The fetch stream is cut into sections (one per distinct fold section); each fold reads its section
    linearly during its read phase. The window covers `active` words (the first half of the buffer,
    rounded to bookkeeping sets) and slides by the prefetch half."""
    per_set = math.ceil(buffer_words / cfg.sets_per_buffer)
    active = math.ceil(math.ceil(buffer_words / 2) / per_set) * per_set
    slide = math.ceil((buffer_words - math.ceil(buffer_words / 2)) / per_set) * per_set
    sections = f.section[operand]
    n_sections = int(sections.max()) + 1
    section_words = stream_words / n_sections
    first_fill = int(min(stream_words, math.ceil(buffer_words / 2)))
    if stream_words <= active:
        return [], first_fill
    offset, length = f.phase[operand]
    window = 0.0                       # absolute stream position where the window starts
    times: list[float] = []
    for i, s in enumerate(sections):
        lo = s * section_words
        hi = lo + section_words
        lap = math.floor(window / stream_words)
        lo_abs = lap * stream_words + lo
        if lo_abs < window:            # behind the window: the next lap of the stream
            lo_abs += stream_words
        hi_abs = lo_abs + (hi - lo)
        end = window + active
        if hi_abs <= end:
            continue
        n = math.ceil((hi_abs - end) / slide)
        need = end + slide * np.arange(n)              # the position each slide is needed at
        frac = np.clip((need - lo_abs) / (hi_abs - lo_abs), 0.0, 1.0)
        times.extend((starts[i] + offset[i] + frac * length[i]).tolist())
        window += n * slide
    return times, first_fill


def _write_events(f: _Folds, starts: np.ndarray, buffer_words: int) -> tuple[list[float], list[float], float]:
    """Nominal cycles at which the output buffer's k-th half fills (drain it) and at which the array
    needs the k-th half empty again (both halves full), and the words left for the final drain."""
    half = buffer_words / 2
    offset, length = f.phase["ofmap"]
    produced = np.concatenate([[0.0], np.cumsum(f.writes)])
    total = produced[-1]
    marks = half * np.arange(1, int(total // half) + 1)
    if not len(marks):
        return [], [], total

    def when(words: np.ndarray) -> list[float]:
        i = np.clip(np.searchsorted(produced, words, side="left") - 1, 0, len(f.writes) - 1)
        frac = (words - produced[i]) / np.maximum(f.writes[i], 1)
        return (starts[i] + offset[i] + frac * length[i]).tolist()

    fulls = when(marks)
    needs = when(marks[1:])            # the array writes into half k again once the next half is full
    return fulls, needs, total - marks[-1]


def simulate_gemm(g: Gemm, cfg: SystolicConfig) -> SystolicResult:
    """One GEMM on one array: cycles, stalls by cause, SRAM and DRAM accesses."""
    if min(g.m, g.k, g.n) < 0:
        raise SparsesimError(f"GEMM dimensions must be >= 0, got M={g.m} K={g.k} N={g.n}")
    empty = {k: 0 for k in OPERANDS}
    if min(g.m, g.k, g.n) == 0:
        return SystolicResult(0, 0, 0, 0, 0.0, 0.0, 0, dict(empty), dict(empty), dict(empty), dict(empty))
    f = _folds(g, cfg)
    starts = np.concatenate([[0], np.cumsum(f.cycles)[:-1]])
    compute = int(f.cycles.sum())
    streams = {"ifmap": float(g.ifmap_stream if g.ifmap_stream is not None else f.reads["ifmap"].sum()
                              / _passes(f, "ifmap")),
               "filter": float(g.k_stored * g.n)}
    words = dict(zip(OPERANDS, cfg.sram_words))
    bw = dict(zip(OPERANDS, cfg.bandwidth))
    events: list[_Event] = []
    first_fill: dict[str, int] = {}
    for op in ("ifmap", "filter"):
        times, first_fill[op] = _read_slides(f, op, streams[op], cfg, starts, words[op])
        events += [_Event(t, 0, op, "slide", i) for i, t in enumerate(times)]
    fulls, needs, leftover = _write_events(f, starts, words["ofmap"])
    events += [_Event(t, 1, "ofmap", "full", i) for i, t in enumerate(fulls)]
    events += [_Event(t, 2, "ofmap", "need", i) for i, t in enumerate(needs)]
    events.sort(key=lambda e: (e.time, e.order))
    chunk = {op: math.ceil((words[op] - math.ceil(words[op] / 2)) / bw[op]) * bw[op] for op in ("ifmap", "filter")}
    chunk["ofmap"] = words["ofmap"] / 2
    stalls = _run_events(events, cfg, chunk, bw) if cfg.limited_bandwidth else {op: 0.0 for op in OPERANDS}
    stall = int(round(sum(stalls.values())))
    fills = {op: math.ceil(first_fill[op] / bw[op]) * bw[op] for op in ("ifmap", "filter")}
    dram_reads = {op: int(round(fills[op] + chunk[op] * sum(e.operand == op for e in events)))
                  for op in ("ifmap", "filter")}
    first = max(fills[op] / bw[op] for op in ("ifmap", "filter"))
    overall = int(math.ceil(first + compute + stall + leftover / bw["ofmap"]))
    n = len(f.cycles)
    return SystolicResult(
        compute_cycles=compute, stall_cycles=stall, overall_cycles=overall, folds=n,
        mapping_efficiency=float((f.row_used * f.col_used).sum() / (n * cfg.rows * cfg.cols)),
        compute_utilisation=float((f.macs_cycles / (cfg.rows * cfg.cols * f.cycles)).mean()),
        macs=g.macs, sram_reads={op: int(round(f.reads[op].sum())) for op in ("ifmap", "filter")},
        sram_writes={"ofmap": int(f.writes.sum())}, dram_reads=dram_reads,
        dram_writes={"ofmap": int(f.writes.sum())},
        stalls={f"{op}_bandwidth": int(round(v)) for op, v in stalls.items()})


def _passes(f: _Folds, operand: str) -> int:
    """How many times the folds read each section of an operand's stream."""
    sections = f.section[operand]
    return int(len(sections) / (sections.max() + 1))


def _run_events(events: list[_Event], cfg: SystolicConfig, chunk: dict[str, float],
                bw: dict[str, float]) -> dict[str, float]:
    """Walk the buffer events in time order; every stall delays all later events."""
    channels = {op: _Channel() for op in OPERANDS}
    if cfg.shared_channel:
        shared = _Channel()
        channels = {op: shared for op in OPERANDS}
    ready: dict[str, float] = {}
    drain_end: dict[int, float] = {}
    stalls = {op: 0.0 for op in OPERANDS}
    shift = 0.0
    for op in ("ifmap", "filter"):      # the first prefetch half starts loading at cycle 0
        if any(e.operand == op for e in events):
            ready[op] = channels[op].free = channels[op].free + chunk[op] / bw[op]
    for e in events:
        now = e.time + shift
        ch = channels[e.operand]
        if e.kind == "slide":
            wait = max(0.0, ready[e.operand] - now)
            now += wait
            start = max(now, ch.free)                  # the freed half is refilled next
            ready[e.operand] = ch.free = start + chunk[e.operand] / bw[e.operand]
        elif e.kind == "full":
            start = max(now, ch.free)
            drain_end[e.index] = ch.free = start + chunk["ofmap"] / bw["ofmap"]
            wait = 0.0
        else:                                          # "need": half e.index must have drained
            wait = max(0.0, drain_end.get(e.index, 0.0) - now)
        stalls[e.operand] += wait
        shift += wait
    return stalls
