"""What a systolic array's read buffers fetch and what its folds ask for, as addresses, in closed form.

Each read operand is stored as SCALE-Sim lays out its prefetch matrix: the operand matrix cut into
sections (R or C columns wide, the last one padded with null entries), stacked, and fetched either
along anti-diagonals of the stack (a skewed operand) or row by row (a stationary operand SCALE-Sim
loads last row first). The valid entries (neither padding nor a window position outside the input)
get ranks 0..S-1 in fetch order: a read buffer's sets are runs of those ranks. A fold asks for one
section (diagonal layouts: all of it, in fetch order; row layouts: R of its rows, last one first).

Inputs are addressed as SCALE-Sim's operand_matrix addresses them, ((y * W + x) * C + c) for input
pixel (y, x), so the copies of a word that an im2col matrix holds are the same word: a buffer that
holds one copy serves them all. Weights have one copy each.

Nothing here is as long as the stream: positions, ranks and addresses are computed from the layout
(per diagonal or per row at most) for the entries a buffer walk looks at.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import SparsesimError
from .folds import Conv, Gemm, SystolicConfig


class Im2col:
    """Input words of a GEMM's ifmap: row m (a streamed output pixel) and kept column k (the
    reduction index N:M sparsity keeps) read input pixel (iy[m] + kh[k], ix[m] + kw[k]), channel
    c[k], where the window is inside the input (and the pixel inside the output: whole blocks stream
    pixels past the map's edge). Two entries that read the same input word are copies of it."""

    def __init__(self, g: Gemm):
        cv = g.conv or Conv(g.m, g.k, 1, g.k, 1, 1)     # a plain GEMM: SCALE-Sim's GEMM-as-conv
        if cv.fh * cv.fw * cv.c != g.k or (g.pixels is None and cv.out[0] * cv.out[1] != g.m):
            raise SparsesimError(f"GEMM {g.m} x {g.k} x {g.n} is not the im2col of {cv}")
        self.cv, (self.oh, self.ow) = cv, cv.out
        n_keep, m_keep = g.sparsity
        k = np.arange(g.k)
        self.kept = k if (n_keep, m_keep) == (1, 1) else k[(k % m_keep) < n_keep]
        self.row_of = None
        if g.pixels is None:
            self.oy, self.ox = np.divmod(np.arange(g.m), self.ow)
        else:
            at = np.frombuffer(g.pixels, np.int32).reshape(-1, 2).astype(np.int64)
            self.oy, self.ox = at[:, 0], at[:, 1]
            inside = (self.oy < self.oh) & (self.ox < self.ow)
            self.row_of = np.full((self.oh, self.ow), -1, np.int64)
            self.row_of[self.oy[inside], self.ox[inside]] = np.flatnonzero(inside)
        self.iy, self.ix = self.oy * cv.stride, self.ox * cv.stride
        kh, rem = np.divmod(self.kept, cv.fw * cv.c)
        self.kh, self.kw = kh, rem // cv.c
        self.sparsity = (n_keep, m_keep)

    def valid(self, m: np.ndarray, k: np.ndarray) -> np.ndarray:
        d = self.cv.dilation
        ok = (self.iy[m] + d * self.kh[k] < self.cv.h) & (self.ix[m] + d * self.kw[k] < self.cv.w)
        return ok if self.row_of is None else ok & (self.oy[m] < self.oh) & (self.ox[m] < self.ow)

    def invalid(self) -> tuple[np.ndarray, np.ndarray]:
        """(m, k) of every window outside the input: the last output rows and columns of a layer
        whose stride does not divide its input, and pixels past the output's edge."""
        cv, K, parts = self.cv, len(self.kept), []
        for pos, reach, size in ((self.iy, cv.dilation * self.kh, cv.h), (self.ix, cv.dilation * self.kw, cv.w)):
            order = np.argsort(reach, kind="stable")
            bad = np.flatnonzero(pos + reach.max(initial=0) >= size)
            first = np.searchsorted(reach[order], size - pos[bad])
            count = K - first
            at = np.repeat(first - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
            parts.append(np.repeat(bad, count) * K + order[at])
        if self.row_of is not None:
            out = np.flatnonzero((self.oy >= self.oh) | (self.ox >= self.ow))
            parts.append((out[:, None] * K + np.arange(K)[None, :]).ravel())
        flat = np.unique(np.concatenate(parts))
        return flat // K, flat % K

    @property
    def has_copies(self) -> bool:
        """Whether neighbouring windows share input words (the im2col holds copies)."""
        return len(self.shifts()[0]) > 0

    def shifts(self) -> tuple[np.ndarray, np.ndarray]:
        """The window shifts (u output rows, v output columns) under which another window reads a
        word: stride x shift must be a whole number of dilated filter taps, within the filter and
        within the output."""
        if not hasattr(self, "_shifts"):
            cv, s, d = self.cv, self.cv.stride, self.cv.dilation
            u = np.arange(-(cv.fh - 1) * d // s, (cv.fh - 1) * d // s + 1)
            v = np.arange(-(cv.fw - 1) * d // s, (cv.fw - 1) * d // s + 1)
            u, v = (a.ravel() for a in np.meshgrid(u, v, indexing="ij"))
            keep = (((u != 0) | (v != 0)) & ((s * u) % d == 0) & ((s * v) % d == 0)
                    & (np.abs(u) < self.oh) & (np.abs(v) < self.ow))
            self._shifts = u[keep], v[keep]
        return self._shifts

    def where(self, m: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, ...]:
        """(output row, output column, filter row, filter column, original k) of im2col entries."""
        return self.oy[m], self.ox[m], self.kh[k], self.kw[k], self.kept[k]

    def copies(self, at: tuple[np.ndarray, ...], u, v) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The (m', k') reading the same word as the entries `at` (from `where`) from the window
        shifted by (u, v), and whether it exists (numpy broadcasting between the two)."""
        cv, s, d = self.cv, self.cv.stride, self.cv.dilation
        oy, ox, kh, kw, k_orig = at
        kh, kw, oy, ox = kh - s * u // d, kw - s * v // d, oy + u, ox + v
        ok = (kh >= 0) & (kh < cv.fh) & (kw >= 0) & (kw < cv.fw) & (oy >= 0) & (oy < self.oh) & (ox >= 0) & (ox < self.ow)
        k_orig = k_orig - (s * u // d * cv.fw + s * v // d) * cv.c
        n_keep, m_keep = self.sparsity
        if (n_keep, m_keep) != (1, 1):
            ok &= (k_orig % m_keep) < n_keep
            k_orig = (k_orig // m_keep) * n_keep + k_orig % m_keep
        if self.row_of is None:
            return oy * self.ow + ox, k_orig, ok
        row = self.row_of[np.where(ok, oy, 0), np.where(ok, ox, 0)]
        return row, k_orig, ok & (row >= 0)

    def reachable(self, at: tuple[np.ndarray, ...], u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Shifts under which some of these entries may have a copy (a superset, from the ranges
        of their window and filter positions)."""
        cv, s, d = self.cv, self.cv.stride, self.cv.dilation
        oy, ox, kh, kw, _ = at
        du, dv = s * u // d, s * v // d
        return ((oy.min() + u < self.oh) & (oy.max() + u >= 0) & (ox.min() + v < self.ow) & (ox.max() + v >= 0)
                & (kh.min() - du < cv.fh) & (kh.max() - du >= 0) & (kw.min() - dv < cv.fw) & (kw.max() - dv >= 0))


class Stack:
    """Stacked sections (`rows` x `width` each, `used[s]` columns valid) in fetch order, in closed
    form: raw position of an entry, the entry at a raw position, and ranks (positions among valid
    entries: the padding columns of a section and the windows outside the input are skipped)."""

    def __init__(self, used: np.ndarray, rows: int, width: int, diagonal: bool, invalid: tuple[np.ndarray, np.ndarray]):
        self.used, self.rows, self.width, self.diagonal = used, rows, width, diagonal
        self.n_rows = len(used) * rows
        self.entries = self.n_rows * width
        if diagonal:
            d = np.arange(self.n_rows + width - 1)
            self.lo = np.maximum(0, d - self.n_rows + 1)
            self.start = np.concatenate([[0], np.cumsum(np.minimum(d, width - 1) - self.lo + 1)])
        padded = np.flatnonzero(used < width)                 # padding: one rectangle per section
        self.pads = [(int(s) * rows, int(used[s])) for s in padded]
        self.pad_from = min((int(self.raw(np.array(r0), np.array(c0))) for r0, c0 in self.pads), default=self.entries)
        self.invalid_raw = np.sort(self.raw(*invalid)) if len(invalid[0]) else np.zeros(0, np.int64)
        self.words = self.entries - len(self.invalid_raw) - sum(rows * (width - u) for _, u in self.pads)

    def raw(self, i: np.ndarray, c: np.ndarray) -> np.ndarray:
        if not self.diagonal:
            return i * self.width + c
        d = i + c
        return self.start[d] + c - self.lo[d]

    def at(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.diagonal:
            return np.divmod(raw, self.width)
        d = np.searchsorted(self.start, raw, side="right") - 1
        c = self.lo[d] + raw - self.start[d]
        return d - c, c

    def _excluded_before(self, raw: np.ndarray) -> np.ndarray:
        """Padding entries and windows outside the input at raw positions before `raw`."""
        raw = np.asarray(raw)
        out = np.searchsorted(self.invalid_raw, raw) if len(self.invalid_raw) else np.zeros(raw.shape, np.int64)
        late = raw > self.pad_from                      # only these can come after padding
        if not late.any():
            return out
        sel = np.flatnonzero(late) if raw.ndim else None
        r = raw[sel] if sel is not None else raw
        i, c = self.at(np.minimum(r, self.entries - 1))
        extra = sum(_block_before(i, c, r >= self.entries, r0, self.rows, c0, self.width - c0, self.diagonal)
                    for r0, c0 in self.pads)
        if sel is None:
            return out + extra
        out = out.copy()
        out[sel] += extra
        return out

    def rank(self, raw: np.ndarray) -> np.ndarray:
        """Rank of a valid entry (of an excluded one: the next valid entry's)."""
        return raw - self._excluded_before(raw) if self.words < self.entries else raw

    def raw_of(self, rank: np.ndarray) -> np.ndarray:
        """Raw position of the valid entry of each rank (bisection on the closed-form count)."""
        lo, hi = np.asarray(rank, np.int64), np.asarray(rank, np.int64) + (self.entries - self.words)
        while lo.size and np.any(lo < hi):
            mid = (lo + hi) // 2
            enough = (mid + 1 - self._excluded_before(mid + 1)) >= rank + 1
            hi, lo = np.where(enough, mid, hi), np.where(enough, lo, mid + 1)
        return lo


def _block_before(i: np.ndarray, c: np.ndarray, past: np.ndarray, r0: int, h: int, c0: int, w: int,
                  diagonal: bool) -> np.ndarray:
    """Entries of the block rows r0..r0+h-1 x columns c0..c0+w-1 that come before entry (i, c) in
    fetch order (`past`: after the last entry, so all of them)."""
    if diagonal:
        d = i + c
        whole = _trapezoids(d - r0 - c0, h, w)
        lo, hi = np.maximum(c0, d - r0 - h + 1), np.minimum(c0 + w - 1, d - r0)
        part = np.clip(np.minimum(c, hi + 1) - lo, 0, None)
    else:
        whole = np.clip(i - r0, 0, h) * w
        part = np.where((i >= r0) & (i < r0 + h), np.clip(c - c0, 0, w), 0)
    return np.where(past, h * w, whole + part)


def _trapezoids(x: np.ndarray, h: int, w: int) -> np.ndarray:
    """Entries (i, c) of an h x w block with i + c < x, vectorised."""
    def g(y):
        y = np.maximum(y, 0)
        return np.where(y <= h, y * (y + 1) // 2, h * (h + 1) // 2 + (y - h) * h)
    return g(x) - g(x - w)


@dataclass(frozen=True)
class Operand:
    """One read operand's fetch stream and how the folds read it. `entry(m, k)` and `element(i, c)`
    map operand-matrix coordinates to stacked entries and back."""
    name: str
    stack: Stack
    line_before: int                     # diagonal: demand lines before a fold's first diagonal
    element: Callable                    # stacked (i, c) -> operand (m, k)
    entry: Callable                      # operand (m, k) -> stacked (i, c)
    im2col: Im2col | None                # the input's addresses (None: weights)

    @property
    def copies(self) -> bool:
        """Whether a word can sit at several places of the stream (an input read by overlapping windows)."""
        return self.im2col is not None and self.im2col.has_copies

    @property
    def diagonal(self) -> bool:
        return self.stack.diagonal

    @property
    def words(self) -> int:
        return self.stack.words


def _used(total: int, tile: int) -> np.ndarray:
    return np.minimum(tile, total - tile * np.arange(math.ceil(total / tile)))


def _sectioned(along: int, rows: int, width: int):
    """(i, c) <-> (row index, section index * width + c): the column `along` is cut in sections."""
    def element(i, c):
        return i % rows, (i // rows) * width + c

    def entry(t, x):
        return (x // width) * rows + t, x % width
    return _used(along, width), element, entry


def operands(g: Gemm, cfg: SystolicConfig) -> dict[str, Operand]:
    """The ifmap and filter streams of a GEMM on an array, as SCALE-Sim 3.0.0 builds them
    (systolic_compute_{ws,os,is}.create_*_prefetch_mat)."""
    R, C = cfg.rows, cfg.cols
    x = Im2col(g)
    K = len(x.kept)
    if cfg.dataflow == "ws":     # ifmap: K in sections of R over the pixels, diagonal; filter: N in sections of C, rows
        used, el, en = _sectioned(K, g.m, R)           # element(i, c) -> (m, k)
        inv_m, inv_k = x.invalid()
        ifmap = Operand("ifmap", Stack(used, g.m, R, True, en(inv_m, inv_k)), R, el, en, x)
        used_f, el_f, en_f = _sectioned(g.n, K, C)
        filt = Operand("filter", Stack(used_f, K, C, False, _none()), 0, el_f, en_f, None)
    elif cfg.dataflow == "os":   # ifmap: pixels in sections of R over K, diagonal; filter: N in sections of C, diagonal
        used, el, en = _sectioned(g.m, K, R)           # element(i, c) -> (k, m)
        inv_m, inv_k = x.invalid()
        ifmap = Operand("ifmap", Stack(used, K, R, True, en(inv_k, inv_m)), 0, _out(el), _in(en), x)
        used_f, el_f, en_f = _sectioned(g.n, K, C)
        filt = Operand("filter", Stack(used_f, K, C, True, _none()), 0, el_f, en_f, None)
    else:                        # is: ifmap: pixels in sections of C over K, rows; filter: K in sections of R over N, diagonal
        used, el, en = _sectioned(g.m, K, C)
        inv_m, inv_k = x.invalid()
        ifmap = Operand("ifmap", Stack(used, K, C, False, en(inv_k, inv_m)), 0, _out(el), _in(en), x)
        used_f, el_f, en_f = _sectioned(K, g.n, R)
        filt = Operand("filter", Stack(used_f, g.n, R, True, _none()), R, _out(el_f), _in(en_f), None)
    return {"ifmap": ifmap, "filter": filt}


def _out(f: Callable) -> Callable:
    """A layout whose rows run along the operand's second index: its (row, column) pairs reversed."""
    return lambda i, c: f(i, c)[::-1]


def _in(f: Callable) -> Callable:
    return lambda a, b: f(b, a)


def _none() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)
