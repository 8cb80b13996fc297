"""SCALE-Sim 3.0.0's memory timing, event by event (double_buffered_scratchpad.service_memory_requests).

The array issues one demand line per cycle; line i starts at cycle i + the stalls so far. A read
buffer that misses issues prefetches back to back whatever the buffer holds: each lands one transfer
(plus a cycle) after the previous one, and the line waits for it (read_buffer.service_reads adds a
positive wait twice, which is kept: it is what SCALE-Sim reports). The output buffer stores words
as the array writes them; once more than its active half holds and no drain runs, it drains the
prefetch half's worth of lines, and it stalls the array only when it is full while draining
(write_buffer.service_writes). A line's stall is the largest of the three.

Only lines where something happens are visited: read misses (from the address-holding read
buffers) and output-buffer events, found from closed forms of the words written up to a line
(each fold writes a skewed block: a trapezoid of words per line).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Writes:
    """The ofmap demand: per fold a block of `rows` x `cols` words written along anti-diagonals
    starting `lead` lines into the fold; folds are `length` lines long."""
    rows: np.ndarray
    cols: np.ndarray
    lead: np.ndarray
    length: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "_before", np.concatenate([[0], np.cumsum(self.rows * self.cols)]))

    @property
    def total(self) -> int:
        return int(self._before[-1])

    def before(self, line: int) -> int:
        """Words written in lines < line."""
        f = min(line // self.length, len(self.rows))
        if f == len(self.rows):
            return self.total
        x = line - f * self.length - int(self.lead[f])
        return int(self._before[f]) + _trapezoid(x, int(self.rows[f]), int(self.cols[f]))

    def line_of(self, word: int) -> int:
        """The line that writes word number `word` (0-based); past the end: the line count."""
        if word >= self.total:
            return len(self.rows) * self.length
        f = int(np.searchsorted(self._before, word, side="right")) - 1
        h, w, inside = int(self.rows[f]), int(self.cols[f]), word - int(self._before[f])
        lo, hi = 0, h + w - 1                 # smallest x with trapezoid(x + 1) > inside
        while lo < hi:
            mid = (lo + hi) // 2
            if _trapezoid(mid + 1, h, w) > inside:
                hi = mid
            else:
                lo = mid + 1
        return f * self.length + int(self.lead[f]) + lo


def _trapezoid(x: int, h: int, w: int) -> int:
    """Entries (i, c) of an h x w block with i + c < x."""
    def g(y: int) -> int:
        return 0 if y <= 0 else y * (y + 1) // 2 if y <= h else h * (h + 1) // 2 + (y - h) * h
    return g(x) - g(x - w)


@dataclass(frozen=True)
class Reads:
    """One read buffer's misses as global demand lines (sorted), slides per miss, and the lines one
    prefetch takes on its channel."""
    lines: np.ndarray
    slides: np.ndarray
    transfer: int


@dataclass(frozen=True)
class Timing:
    total_cycles: int          # SCALE-Sim's "total cycles" + 1 (the count, not the last index)
    stalls: dict[str, int]     # by the operand that set each stalled line's wait
    dram_writes: int
    last_drain: float          # when the last output drain ends


class _OutputBuffer:
    """write_buffer's state: words held, DRAM lines formed (forced partial lines kept), drains."""

    def __init__(self, words: int, bandwidth: int):
        self.total, self.bw = words, bandwidth
        self.drain = words - math.ceil(words * 0.5)
        self.stored = self.drained = self.lines = self.in_line = self.next_line = 0
        self.partial: dict[int, int] = {}
        self.drain_end = 0.0
        self.ends: list[float] = []

    def add(self, n: int) -> None:
        t = self.in_line + n
        self.lines += t // self.bw
        self.in_line = t % self.bw
        self.stored += n

    def start_drain(self, cycle: float) -> None:
        if self.in_line:                                  # append_to_trace_mat(force=True)
            self.partial[self.lines] = self.in_line
            self.lines, self.in_line = self.lines + 1, 0
        end = min(self.next_line + math.ceil(self.drain / self.bw), self.lines)
        k = end - self.next_line
        if k <= 0:
            return
        self.drained += k * self.bw - (self.bw - self.partial.get(end - 1, self.bw))
        self.next_line = end
        self.drain_end = cycle + k - 1
        self.ends.append(self.drain_end)

    def event_word(self, draining: bool) -> int:
        """The next word at which something happens: the buffer fills up while draining, or (not
        draining) more than the active half holds."""
        limit = self.total - 1 if draining else self.drain
        return max(self.stored, self.drained + limit)


def run(n_lines: int, reads: dict[str, Reads], writes: Writes, out_words: int, out_bw: int) -> Timing:
    """Walk the lines where a read misses or the output buffer acts; everything between is a cycle
    a line."""
    buf = _OutputBuffer(out_words, out_bw)
    last = {op: -1 for op in reads}
    events = sorted({int(x) for r in reads.values() for x in r.lines})
    per_line = {op: _group(r) for op, r in reads.items()}
    stalls = {op: 0 for op in (*reads, "ofmap")}
    stall, line, e_read, out_last = 0, 0, 0, None
    while line < n_lines:
        next_read = events[e_read] if e_read < len(events) else n_lines
        draining = buf.drain_end > line + stall
        word = buf.event_word(draining)
        next_write = writes.line_of(word)
        if not draining:
            next_write = max(next_write, line)
        elif next_write + stall >= buf.drain_end:     # the drain ends first: then the trigger check
            word = max(buf.stored, buf.drained + buf.drain, writes.before(max(line, math.ceil(buf.drain_end - stall))))
            next_write = writes.line_of(word)
        at = min(next_read, next_write)
        if at >= n_lines:
            break
        buf.add(writes.before(at) - buf.stored)
        cycle = at + stall
        waits = {op: _read_wait(per_line[op].get(at, ()), cycle, last, op, reads[op].transfer) for op in reads}
        waits["ofmap"] = _write_line(buf, writes, at, cycle)
        worst = max(waits, key=lambda op: waits[op])
        if waits[worst] > 0:
            stalls[worst] += int(waits[worst])
            stall += int(waits[worst])
        if at == n_lines - 1:
            out_last = cycle + waits["ofmap"]
        if at == next_read:
            e_read += 1
        line = at + 1
    buf.add(writes.total - buf.stored)
    if out_last is None:
        out_last = n_lines - 1 + stall
    cycle = out_last                                      # empty_all_buffers
    if buf.in_line:
        buf.partial[buf.lines] = buf.in_line
        buf.lines, buf.in_line = buf.lines + 1, 0
    while buf.next_line < buf.lines:
        buf.start_drain(cycle)
        cycle = buf.drain_end + 1
    return Timing(int(out_last) + 1, stalls, buf.drained, max(buf.ends, default=float(out_last)))


def _group(r: Reads) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for line, k in zip(r.lines.tolist(), r.slides.tolist()):
        out.setdefault(line, []).append(k)
    return out


def _read_wait(misses, cycle: float, last: dict, op: str, transfer: int) -> float:
    """read_buffer.service_reads on one line: every slide is a prefetch landing transfer + 1 cycles
    after the previous one; the line's offset grows by the wait (twice when positive)."""
    offset = 1.0
    for k in misses:
        for _ in range(k):
            last[op] += transfer + 1
            wait = last[op] - (cycle + offset)
            offset += wait
            if wait > 0:
                offset += wait
    return offset - 1


def _write_line(buf: _OutputBuffer, writes: Writes, line: int, cycle: float) -> float:
    """write_buffer.service_writes on one line: store its words; a full buffer waits for the running
    drain; past the active half with no drain running, a drain starts. Returns the line's wait."""
    end = writes.before(line + 1)
    current, offset = cycle, 0.0
    while buf.stored < end:
        draining = current < buf.drain_end
        word = buf.event_word(draining)
        if word >= end:
            buf.add(end - buf.stored)
            break
        buf.add(word + 1 - buf.stored)
        if draining:
            offset += buf.drain_end - current
            current = buf.drain_end
        else:
            buf.start_drain(current)
    return offset
