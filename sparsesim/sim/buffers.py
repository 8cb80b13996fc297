"""The double-buffered SRAMs of a systolic array, at the granularity of buffer halves.

A read buffer holds a window of its operand's fetch stream; when a fold needs data past the window,
the window slides by the prefetch half, and that half must have arrived from DRAM (or the array
stalls). The output buffer drains one half while the array fills the other. Marks within a fold are
evenly spaced, so each fold's marks are one batch with a closed form: no loop per mark or per cycle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np

from .folds import Folds, Stream, SystolicConfig

OPERANDS = ("ifmap", "filter", "ofmap")


@dataclass(frozen=True)
class Batch:
    """Marks at which an operand's buffer needs its previous DRAM transfer done and starts the next
    one: a read window slides onto its prefetched half, or an output half fills and drains. Within a
    fold the marks are evenly spaced, so a fold's marks are one batch, not one event each."""
    time: float            # nominal cycle of the first mark (without stalls)
    step: float            # nominal cycles between marks
    count: int
    operand: str


@dataclass(frozen=True)
class Window:
    """A read buffer's bookkeeping, as SCALE-Sim's read_buffer: the stream is cut into sets of
    ceil(size / 100) words; the active half covers `active` sets and slides by `slide` sets."""
    per_set: int
    sets: int
    active: int
    slide: int

    @classmethod
    def of(cls, stream_words: float, buffer_words: int, sets_per_buffer: int) -> "Window":
        per_set = math.ceil(buffer_words / sets_per_buffer)
        half = math.ceil(buffer_words / 2)
        sets = int(stream_words // per_set) + 1
        active = min(math.ceil(half / per_set), sets)
        slide = min(math.ceil((buffer_words - half) / per_set), sets - active)
        return cls(per_set, sets, active, slide)


def read_batches(f: Folds, operand: str, stream: Stream, scale: float, cfg: SystolicConfig,
                  starts: np.ndarray, buffer_words: int) -> list[Batch]:
    """When the read buffer's window must slide to hold what the folds read.

    A fold reads its range of the stream linearly during its read phase; a range that starts behind
    the window (a re-read, or the overlap of two sections' diagonals) runs the window around the stream
    at the fold's start. `scale` maps stream positions to fetched words (1, or unique input words per
    im2col word)."""
    win = Window.of(stream.words * scale, buffer_words, cfg.sets_per_buffer)
    if win.sets <= win.active or win.slide <= 0:
        return []
    n = win.sets
    offset, length = f.phase[operand]
    lo_set = np.floor(stream.lo * scale / win.per_set).astype(np.int64)
    hi_set = np.floor(np.maximum(stream.hi * scale - 1, stream.lo * scale) / win.per_set).astype(np.int64)
    w = 0
    batches: list[Batch] = []
    for i in range(len(lo_set)):
        t0 = float(starts[i] + offset[i])
        if stream.reverse:
            w = _walk_down(win, w, int(lo_set[i]), int(hi_set[i]), t0, float(length[i]), operand, batches)
            continue
        rel_lo = (lo_set[i] - w) % n
        if rel_lo >= win.active:                       # the fold's first data is not in the window
            k = -(-(rel_lo - win.active + 1) // win.slide)
            batches.append(Batch(t0, 0.0, int(k), operand))
            w += k * win.slide
            rel_lo = (lo_set[i] - w) % n
        rel_hi = rel_lo + (hi_set[i] - lo_set[i])
        if rel_hi >= win.active:
            k = -(-(rel_hi - win.active + 1) // win.slide)
            span = max(rel_hi - rel_lo, 1)
            batches.append(Batch(t0 + (win.active - rel_lo) / span * length[i], win.slide / span * length[i],
                                  int(k), operand))
            w += int(k) * win.slide
    return batches


def _walk_down(win: "Window", w: int, lo: int, hi: int, t0: float, length: float, operand: str,
               batches: list[Batch]) -> int:
    """A fold that reads its range from the top down: every set that falls behind the window runs it
    around the stream once more. Walked set by set (a fold spans tens of sets)."""
    span = max(hi - lo, 1)
    for s in range(hi, lo - 1, -1):
        rel = (s - w) % win.sets
        if rel >= win.active:
            k = -(-(rel - win.active + 1) // win.slide)
            batches.append(Batch(t0 + (hi - s) / span * length, 0.0, int(k), operand))
            w += k * win.slide
    return w


def write_batches(f: Folds, starts: np.ndarray, buffer_words: int) -> tuple[list[Batch], float]:
    """When each half of the output buffer fills (it must drain while the other fills), and the
    words left for the final drain."""
    half = buffer_words / 2
    offset, length = f.phase["ofmap"]
    produced = np.concatenate([[0.0], np.cumsum(f.outputs)])
    total = produced[-1]
    full = int(total // half)
    # the k-th half fills during fold i when produced[i] < k * half <= produced[i + 1]
    first = np.ceil(produced[:-1] / half + 1e-12)
    last = np.floor(produced[1:] / half)
    batches = []
    for i in np.nonzero(last >= np.maximum(first, 1))[0]:
        k0 = max(first[i], 1)
        rate = length[i] / f.outputs[i]
        batches.append(Batch(float(starts[i] + offset[i] + (k0 * half - produced[i]) * rate), half * rate,
                              int(last[i] - k0 + 1), "ofmap"))
    return batches, total - full * half


def run_batches(batches: list[Batch], cfg: SystolicConfig, transfer: dict[str, float]) -> dict[str, float]:
    """Walk the marks in time order. At a mark the operand waits for its pending transfer (a read's
    prefetch half, or the previous output half's drain), then starts the next on its DRAM channel;
    every stall delays all later marks. Within a batch, marks `step` apart with transfers of L cycles
    settle to one every max(step, L): closed form, no loop per mark."""
    shared = cfg.shared_channel
    free = {op: 0.0 for op in OPERANDS}                   # when each channel is next idle
    channel = (lambda op: "ifmap") if shared else (lambda op: op)  # noqa: E731
    pending: dict[str, float | None] = {"ifmap": None, "filter": None, "ofmap": None}
    for op in ("ifmap", "filter"):                        # the first prefetch half loads from cycle 0
        if any(b.operand == op for b in batches):
            start = free[channel(op)]
            pending[op] = free[channel(op)] = start + transfer[op]
    stalls = {op: 0.0 for op in OPERANDS}
    issued = {op: 0 for op in OPERANDS}                   # transfers started so far
    drained: list[float] = []                             # when the last two output drains end
    shift = 0.0
    for b in sorted(batches, key=lambda b: (b.time, OPERANDS.index(b.operand))):
        L = transfer[b.operand]
        now = b.time + shift
        nominal_last = b.time + (b.count - 1) * b.step + shift
        if cfg.run_ahead and b.operand != "ofmap":
            # the k-th prefetch has landed at 1 + k (L + 1) however late it was asked for
            lines = L + 1
            ready = 1 + (issued[b.operand] + 1) * lines
            last = max(nominal_last, ready + (b.count - 1) * max(lines, b.step))
        else:
            wait = pending[b.operand]
            if cfg.run_ahead and b.operand == "ofmap":    # SCALE-Sim frees a half when its drain starts
                wait = drained[-2] if len(drained) > 1 else None
            first = max(now, wait) if wait is not None else now
            last = first + (b.count - 1) * max(b.step, L)
        stall = last - nominal_last
        start = max(last, free[channel(b.operand)])
        pending[b.operand] = free[channel(b.operand)] = start + L
        if b.operand == "ofmap":
            drained = [start, start + L] if b.count > 1 else [*drained[-1:], start + L]
        issued[b.operand] += b.count
        stalls[b.operand] += stall
        shift += stall
    return stalls
