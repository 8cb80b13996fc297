"""A double-buffered read buffer that holds addresses, walked fold by fold (SCALE-Sim's read_buffer).

The fetch stream is cut into sets of ceil(size / 100) words; the active half covers A sets and a
miss slides it by the P sets of the prefetch half (around the stream, as a ring). A request hits when
its word is in any set of the active half, whichever copy of it the stream holds there; a miss
slides the window until it does, each slide one DRAM transfer of the prefetch half.

Event-level and vectorised: a fold's requests are runs ("pieces") of one set each; a piece whose set
is in the window hits whole. Only pieces outside it are looked at word by word, and only where the
stream holds copies of a word: the sets of every copy of each word come from the im2col's geometry
(one column per window shift), so "is it held" is a comparison. Misses are few (a window slide each);
nothing loops per word or per cycle.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .folds import Demand
from .operands import Operand


@dataclass(frozen=True)
class Window:
    """SCALE-Sim's read_buffer bookkeeping: sets of `per_set` words; the active half covers `active`
    sets and slides by `slide` sets; the stream has `sets` of them (the last one partial)."""
    per_set: int
    sets: int
    active: int
    slide: int

    @classmethod
    def of(cls, stream_words: float, buffer_words: int, sets_per_buffer: int = 100) -> "Window":
        per_set = math.ceil(buffer_words / sets_per_buffer)
        half = math.ceil(buffer_words / 2)
        sets = int(stream_words // per_set) + 1
        active = min(math.ceil(half / per_set), sets)
        slide = min(math.ceil((buffer_words - half) / per_set), sets - active)
        return cls(per_set, sets, active, slide)


@dataclass(frozen=True)
class Misses:
    """The requests that missed, in demand order: their fold, their demand line within the fold
    (cycles after the fold's start, SCALE-Sim's demand-matrix row) and the window slides each took."""
    fold: np.ndarray
    line: np.ndarray
    slides: np.ndarray

    @property
    def total(self) -> int:
        return int(self.slides.sum())


class _Pieces:
    """A fold's requests as runs of one set each, in demand order: piece i holds requests a[i]..b[i]
    (diagonal layouts: indices into the section's entries in fetch order; row layouts: ranks)."""

    def __init__(self, op: Operand, demand: Demand, index: int, per_set: int, cache: dict):
        self.op = op
        if op.diagonal:
            section = int(demand.section[index])
            if "bounds" not in cache:              # raw position of every set's first word
                b = np.arange(1, op.words // per_set + 1) * per_set
                cache["bounds"] = op.stack.raw_of(b[b < op.words])
            if section not in cache:
                cache[section] = _Section(op, section, per_set, cache["bounds"])
            self.section = sec = cache[section]
            self.set, self.a, self.b = sec.set, sec.a, sec.b
            return
        x, y = cache["rows"][0][index], cache["rows"][0][index + 1]
        self.set, self.a, self.b, self.row, self.stacked, self.first, self.clean = (v[x:y] for v in cache["rows"][1])

    @staticmethod
    def rows(op: Operand, folds: Demand, per_set: int) -> tuple[np.ndarray, tuple]:
        """Row layouts: every fold's pieces at once (where each fold's start, and per piece its set,
        requests, demand line, stacked row, the row's first rank, whether every column is valid): a
        fold reads its rows last first, each row's valid entries are consecutive ranks, cut where
        sets change."""
        st = op.stack
        sec, lo_row, hi_row, span = folds.section, folds.row_lo, folds.row_hi, folds.span
        count = hi_row - lo_row
        fold = np.repeat(np.arange(len(folds)), count)
        order = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)   # 0 = last row
        rows = hi_row[fold] - 1 - order + sec[fold] * st.rows
        bad = np.bincount(st.at(st.invalid_raw)[0], minlength=st.n_rows)
        n = st.used[sec[fold]] - bad[rows]
        lo = st.rank(rows * st.width)
        keep = n > 0
        lo, hi, order, fold = lo[keep], lo[keep] + n[keep], order[keep], fold[keep]
        first, last = lo // per_set, (hi - 1) // per_set
        k = last - first + 1
        idx = np.repeat(np.arange(len(lo)), k)
        s = first[idx] + np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
        a, b = np.maximum(lo[idx], s * per_set), np.minimum(hi[idx], (s + 1) * per_set)
        f = fold[idx]
        line = order[idx] + (lo_row + span - hi_row)[f]
        stacked, clean = rows[keep][idx], bad[rows[keep]][idx] == 0     # rows with every column valid
        return np.searchsorted(f, np.arange(len(folds) + 1)), (s, a, b, line, stacked, lo[idx], clean)

    def entries(self, i: int, j: int, last: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Stacked (row, column) of the requests from request j (in piece i) to the end of piece
        `last` - 1 (default: piece i; `last` == i: request j alone), in demand order."""
        alone = last == i
        if self.op.diagonal:
            return self.section.entries(j, j + 1 if alone else int(self.b[(i + 1 if last is None else last) - 1]))
        last = i + 1 if last is None or alone else last
        a, b = self.a[i:last].copy(), self.b[i:last].copy()
        a[0] = max(int(a[0]), j)
        if alone:
            b[0] = a[0] + 1
        n = b - a
        ranks = np.repeat(a - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
        if self.clean[i:last].all():                # rows with every column valid: no search
            piece = np.repeat(np.arange(i, last), n)
            return self.stacked[piece], ranks - self.first[piece]
        return self.op.stack.at(self.op.stack.raw_of(ranks))

    def locate(self, i: int, j: int, offset: int) -> tuple[int, int]:
        """The piece and request `offset` requests after request j of piece i."""
        n = np.concatenate([[self.b[i] - j], self.b[i + 1:] - self.a[i + 1:]])
        piece = int(np.searchsorted(np.cumsum(n), offset, side="right"))
        before = int(n[:piece].sum())
        return i + piece, (j if piece == 0 else int(self.a[i + piece])) + offset - before

    def lines(self, pieces: np.ndarray, requests: np.ndarray) -> np.ndarray:
        """Demand lines of these requests (one in each of these pieces) within their fold (SCALE-Sim's
        demand-matrix rows): the row of a row layout, the section's diagonal of a diagonal one."""
        if not self.op.diagonal:
            return self.row[pieces]
        return self.op.line_before + np.searchsorted(self.section.cum, requests, side="right") - 1


class _Section:
    """A diagonal layout's section: its band of entries along the stack's anti-diagonals, counted
    per diagonal (windows outside the input taken out), and cut into pieces of one set each."""

    def __init__(self, op: Operand, s: int, per_set: int, bounds: np.ndarray):
        st = op.stack
        self.op, self.s, T, used = op, s, st.rows, int(st.used[s])
        self.T, self.used = T, used
        d = np.arange(T + used - 1)
        self.clo, self.chi = np.maximum(0, d - T + 1), np.minimum(d, used - 1)
        inv_i, inv_c = st.at(st.invalid_raw)
        mine = (inv_i // T) == s
        self.inv_raw = st.invalid_raw[mine]
        bad = np.bincount(inv_i[mine] + inv_c[mine] - s * T, minlength=len(d))
        self.cum = np.concatenate([[0], np.cumsum(self.chi - self.clo + 1 - bad)])
        total = int(self.cum[-1])
        first = int(st.rank(st.raw(np.array([s * T]), np.array([0])))[0]) // per_set
        last = int(st.rank(st.raw(np.array([s * T + T - 1]), np.array([used - 1])))[0]) // per_set
        raws = bounds[first:last]                   # sets first+1 .. last start here
        at = np.full(last - first, total, np.int64)
        at[:len(raws)] = self._before(raws)
        idx = np.concatenate([[0], np.minimum(at, total), [total]])
        sets = np.arange(first, last + 1)
        keep = idx[1:] > idx[:-1]
        self.set, self.a, self.b = sets[keep], idx[:-1][keep], idx[1:][keep]

    def _before(self, raw: np.ndarray) -> np.ndarray:
        """Requests of this section at raw positions before `raw`."""
        st = self.op.stack
        i, c = st.at(raw)
        d = i + c - self.s * self.T
        inner = np.clip(d, 0, len(self.clo) - 1)
        part = np.clip(np.minimum(c, self.chi[inner] + 1) - self.clo[inner], 0, None)
        part -= np.searchsorted(self.inv_raw, raw) - np.searchsorted(self.inv_raw, st.start[i + c])
        n = self.cum[inner] + part
        return np.where(d < 0, 0, np.where(d >= len(self.clo), self.cum[-1], n))

    def entries(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Stacked (row, column) of the section's requests a..b-1, in demand order."""
        da = int(np.searchsorted(self.cum, a, side="right")) - 1
        db = int(np.searchsorted(self.cum, b - 1, side="right")) - 1
        d = np.arange(da, db + 1)
        n = self.chi[d] - self.clo[d] + 1
        dd = np.repeat(d, n)
        c = self.clo[dd] + np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        i = self.s * self.T + dd - c
        if len(self.inv_raw):
            ok = self.op.im2col.valid(*self.op.element(i, c))
            i, c = i[ok], c[ok]
        skip = a - int(self.cum[da])
        return i[skip:skip + b - a], c[skip:skip + b - a]


def walk(op: Operand, folds: Demand, win: Window) -> Misses:
    """Every miss of the read buffer over the folds, in order."""
    n, A, P, eps = win.sets, win.active, win.slide, win.per_set
    found: list[tuple] = []                      # (fold, pieces, requests, slides) per miss or run of misses
    if P <= 0 or op.words == 0:
        return Misses(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    w = 0
    cache: dict = {} if op.diagonal else {"rows": _Pieces.rows(op, folds, eps)}
    for f in range(len(folds)):
        pc = _Pieces(op, folds, f, eps, cache)
        q, j, batch = 0, 0, 0
        while q < len(pc.set):
            out = ((pc.set[q:] - w) % n) >= A
            if not out.any():
                break
            step = int(np.argmax(out))
            q, j = q + step, int(pc.a[q + step]) if step else max(j, int(pc.a[q]))
            if not op.copies:            # one copy per word: the piece's next request misses, and so
                pieces, requests, slides = _missing_run(pc, q, j, w, win)   # on along its rising run
                found.append((f, pieces, requests, slides))
                w = (w + int(slides.sum()) * P) % n
                q, j = int(pieces[-1]) + 1, 0
                continue
            run = q + int(np.argmin(np.append(out[step:], False)))   # pieces outside the window from q
            last = min(run, q + batch)            # first its next word alone, then more and more pieces
            batch = min(max(2 * batch, 1), BATCH_PIECES)
            miss = _first_unheld(op, pc, q, j, last, w, win)
            if miss is None:
                q, j = (q, j + 1) if last == q else (last, 0)
            else:
                q, j, k = miss
                batch = 0
                found.append((f, [q], [j], [k]))
                w = (w + k * P) % n
                j += 1
            if q < len(pc.set) and j >= pc.b[q]:
                q, j = q + 1, 0
    if not found:
        return Misses(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return Misses(np.concatenate([np.full(len(p), f) for f, p, _, _ in found]),
                  np.concatenate([_pieces_lines(op, folds, f, eps, cache, p, r) for f, p, r, _ in found]),
                  np.concatenate([np.asarray(k, np.int64) for *_, k in found]))


def _pieces_lines(op, folds, f, eps, cache, pieces, requests) -> np.ndarray:
    return _Pieces(op, folds, f, eps, cache).lines(np.asarray(pieces, np.int64), np.asarray(requests, np.int64))


def _missing_run(pc: "_Pieces", q: int, j: int, w: int, win: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where every word has one copy: piece q's next request misses, and so does each piece of the
    rising run of sets after it that the window has to slide to (closed form): (pieces, requests,
    slides)."""
    n, A, P = win.sets, win.active, win.slide
    rel = int((pc.set[q] - w) % n)
    k = -(-(rel - A + 1) // P)
    at, counts = _rising(pc.set, q, int(pc.set[q]) - rel + k * P, n, A, P)
    return np.concatenate([[q], at]), np.concatenate([[j], pc.a[at]]), np.concatenate([[k], counts])


def _first_unheld(op: Operand, pc: "_Pieces", q: int, j: int, last: int, w: int,
                  win: Window) -> tuple[int, int, int] | None:
    """Requests from j (in piece q) to piece `last`, all outside the window by their own entries:
    the first whose word no copy in the window holds, as (piece, request, slides until one does)."""
    n, A, P, eps = win.sets, win.active, win.slide, win.per_set
    rows, cols = pc.entries(q, j, last)
    held = _held(op, rows, cols, eps, lambda s: ((s - w) % n) < A)
    if held.all():
        return None
    first = int(np.argmin(held))
    piece, request = pc.locate(q, j, first)
    sets = _copy_sets(op, rows[first:first + 1], cols[first:first + 1], eps)[0]
    return piece, request, _slides_to_hold(sets[sets >= 0], w, n, A, P)


BATCH_PIECES = 64      # pieces outside the window checked in one vectorised pass


def _copy_sets(op: Operand, i: np.ndarray, c: np.ndarray, per_set: int) -> np.ndarray:
    """Per request (rows), the set of its own entry and of every copy of its word (-1: no copy)."""
    st, x = op.stack, op.im2col
    u, v = x.shifts()
    own = st.rank(st.raw(i, c)) // per_set
    at = tuple(a[:, None] for a in x.where(*op.element(i, c)))
    return np.concatenate([own[:, None], _shift_sets(op, at, u[None, :], v[None, :], per_set)], axis=1)


def _shift_sets(op: Operand, at: tuple, u, v, per_set: int) -> np.ndarray:
    """Sets of the copies the window shifts (u, v) give entries `at` (broadcast; -1: no copy)."""
    st = op.stack
    cm, ck, ok = op.im2col.copies(at, u, v)
    sets = np.full(ok.shape, -1, np.int64)
    sets[ok] = st.rank(st.raw(*op.entry(cm[ok], ck[ok]))) // per_set
    return sets


def _held(op: Operand, i: np.ndarray, c: np.ndarray, per_set: int, inside) -> np.ndarray:
    """Whether each request's word is in the window (`inside(sets)`), by its own entry or a copy.
    The window shifts that serve the first few requests go first, each for the requests still
    unserved; once few are left, they meet every remaining shift at once."""
    st, x = op.stack, op.im2col
    held = inside(st.rank(st.raw(i, c)) // per_set)
    todo = np.flatnonzero(~held)
    u, v = x.shifts()
    at = x.where(*op.element(i[todo], c[todo]))
    order = np.arange(len(u))
    if len(todo) > SAMPLE:
        sets = _shift_sets(op, tuple(a[:SAMPLE, None] for a in at), u[None, :], v[None, :], per_set)
        order = np.argsort(-((sets >= 0) & inside(sets)).sum(axis=0), kind="stable")
        order = order[x.reachable(at, u, v)[order]]
    for n, s in enumerate(order):
        if len(todo) * (len(order) - n) <= MATRIX:
            rest = order[n:]
            sets = _shift_sets(op, tuple(a[:, None] for a in at), u[rest][None, :], v[rest][None, :], per_set)
            held[todo] = ((sets >= 0) & inside(sets)).any(axis=1)
            return held
        hit = np.flatnonzero((lambda t: (t >= 0) & inside(t))(_shift_sets(op, at, u[s], v[s], per_set)))
        held[todo[hit]] = True
        keep = np.ones(len(todo), bool)
        keep[hit] = False
        todo, at = todo[keep], tuple(a[keep] for a in at)
    return held


MATRIX = 4096   # (requests x shifts) small enough to try at once
SAMPLE = 64        # requests tried against every window shift before the rest go shift by shift


def _rising(sets: np.ndarray, q: int, start: int, n: int, A: int, P: int) -> tuple[np.ndarray, np.ndarray]:
    """After piece q is in a window starting at `start` (counted without wrapping round the ring),
    the pieces along the rising run of sets that follows which each need the window to slide, and
    how many slides each: a rising set s needs ceil((s - start - A + 1) / P) in all."""
    tail = sets[q + 1:]
    fall = np.flatnonzero((np.diff(np.concatenate([[sets[q]], tail])) < 0) | (tail >= start + n))
    tail = tail[:fall[0]] if len(fall) else tail
    need = np.maximum(-(-(tail - start - A + 1) // P), 0)
    step = np.diff(np.concatenate([[0], need]))
    at = np.flatnonzero(step > 0)
    return q + 1 + at, step[at]


def _slides_to_hold(sets: np.ndarray, w: int, n: int, A: int, P: int) -> int:
    """Fewest slides of P sets after which one of these sets is in the window."""
    rel = (sets - w) % n
    return int(np.min(-(-(rel - A + 1) // P)))
