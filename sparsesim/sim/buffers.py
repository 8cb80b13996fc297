"""The double-buffered SRAMs of sparsesim's own systolic arrays, at the granularity of buffer halves.

A read buffer's miss (`sim.readbuf`) slides its window onto the prefetch half, which must have
arrived from DRAM (or the array stalls); the next half is fetched once the slid-off half is free.
The output buffer drains one half while the array fills the other. Marks within a fold are evenly
spaced, so each fold's output marks are one batch with a closed form: no loop per mark or per cycle.
"""
from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from .folds import Folds, SystolicConfig

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


def read_batches(fold: np.ndarray, at: np.ndarray, slides: np.ndarray, operand: str) -> list[Batch]:
    """A read buffer's misses (`sim.readbuf`, in time order) as marks where its window slides onto a
    prefetched half: one batch per fold, its slides spread evenly from its first miss to its last."""
    if not len(at):
        return []
    cut = np.flatnonzero(np.diff(fold)) + 1
    first, last = np.split(at, cut), np.split(slides, cut)
    out = []
    for times, k in zip(first, last):
        count = int(k.sum())
        step = (times[-1] - times[0]) / (count - 1) if count > 1 else 0.0
        out.append(Batch(float(times[0]), float(step), count, operand))
    return out


def write_batches(f: Folds, starts: np.ndarray, buffer_words: int) -> tuple[list[Batch], float]:
    """When each half of the output buffer fills (it must drain while the other fills), and the
    words left for the final drain."""
    half = buffer_words / 2
    offset, length = f.out_phase
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


def run_batches(batches: list[Batch], cfg: SystolicConfig, transfer: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Walk the marks in time order. At a mark the operand waits for its pending transfer (a read's
    prefetch half, or the previous output half's drain), then starts the next on its DRAM channel;
    every stall delays all later marks. Within a batch, marks `step` apart with transfers of L cycles
    settle to one every max(step, L): closed form, no loop per mark. Returns the stalls by operand and
    when each operand's DRAM channel is last busy."""
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
    return stalls, {op: free[channel(op)] for op in OPERANDS}
