"""SCALE-Sim 3.0.0's memory system, written out the long way, as the yardstick for sparsesim's
event-level systolic simulator on layers SCALE-Sim itself was never run on.

`streams` builds the prefetch and demand matrices as systolic_compute_{ws,os,is} do (operand_matrix
addresses, sections, null padding, anti-diagonal roll-outs, skewed demand); `read_misses` replays
read_buffer.service_reads request by request over its hashed sets; `service` replays
double_buffered_scratchpad.service_memory_requests line by line with write_buffer's drains. Checked
during development against SCALE-Sim's own matrices (dumped from its classes) and against all 46
cached USER-bandwidth runs, every reported figure exact; test_sim_fidelity re-checks two of them.
"""
from __future__ import annotations

import math

import numpy as np


def _sections(x: np.ndarray, width: int) -> tuple[np.ndarray, int]:
    n = math.ceil(x.shape[1] / width)
    parts = [x[:, s * width:(s + 1) * width] for s in range(n)]
    return np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1])), constant_values=-1) for p in parts]), n


def _diagonal(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = p.shape
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    order = np.lexsort((j.ravel(), (i + j).ravel()))
    pos = np.empty(p.size, np.int64)
    pos[order] = np.arange(p.size)
    return p.ravel()[order], pos.reshape(p.shape)


def _demand(parts: list) -> tuple[np.ndarray, np.ndarray]:
    a = np.concatenate([x[0].ravel() for x in parts])
    line = np.concatenate([x[1].ravel() for x in parts])
    col = np.concatenate([x[2].ravel() for x in parts])
    o = np.lexsort((col, line))
    a, line = a[o], line[o]
    return a[a != -1], line[a != -1]


def streams(h: int, w: int, fh: int, fw: int, c: int, n: int, s: int, R: int, C: int, df: str,
            sparsity: tuple[int, int] = (1, 1)) -> dict:
    """Prefetch streams (with -1 padding), demand (address, line) per read operand, output words per
    line, and the demand line count."""
    oh, ow = math.ceil((h - fh + s) / s), math.ceil((w - fw + s) / s)
    m = np.arange(oh * ow)[:, None]
    k = np.arange(fh * fw * c)[None, :]
    if sparsity != (1, 1):
        k = k[:, (k[0] % sparsity[1]) < sparsity[0]]
    oy, ox = np.divmod(m, ow)
    kh, rem = np.divmod(k, fw * c)
    kw, ch = np.divmod(rem, c)
    x = np.where((oy * s + kh < h) & (ox * s + kw < w), ((oy * s + kh) * w + ox * s + kw) * c + ch, -1)
    M, K = x.shape
    wm = np.arange(K)[:, None] + np.arange(n)[None, :] * K + 10_000_000
    o = np.arange(M)[:, None] * n + np.arange(n)[None, :] + 20_000_000
    ie, fe, oe, base = [], [], [], 0
    if df == "ws":
        p, nfr = _sections(x, R)
        ist, _ = _diagonal(p)
        fs, nfc = _sections(wm, C)
        fst = fs.ravel()
        length = 2 * R + M + C - 2
        for fc in range(nfc):
            for fr in range(nfr):
                i, j = np.meshgrid(np.arange(M), np.arange(R), indexing="ij")
                ie.append((p[fr * M + i, j], base + R + i + j, j))
                rr, cc = np.meshgrid(np.arange(R), np.arange(C), indexing="ij")
                krow = fr * R + R - 1 - rr
                fe.append((np.where(krow < K, fs[fc * K + np.minimum(krow, K - 1), cc], -1), base + rr, cc))
                blk = np.pad(o[:, fc * C:(fc + 1) * C], ((0, 0), (0, C - o[:, fc * C:(fc + 1) * C].shape[1])),
                             constant_values=-1)
                i2, j2 = np.meshgrid(np.arange(M), np.arange(C), indexing="ij")
                oe.append((blk, base + 2 * R - 1 + i2 + j2, j2))
                base += length
    elif df == "os":
        p, nfr = _sections(x.T.copy(), R)
        ist, _ = _diagonal(p)
        fs, nfc = _sections(wm, C)
        fst, _ = _diagonal(fs)
        length = K + R + C - 2
        for fc in range(nfc):
            for fr in range(nfr):
                i, j = np.meshgrid(np.arange(K), np.arange(R), indexing="ij")
                ie.append((p[fr * K + i, j], base + i + j, j))
                i, j = np.meshgrid(np.arange(K), np.arange(C), indexing="ij")
                fe.append((fs[fc * K + i, j], base + i + j, j))
                blk = -np.ones((R, C), np.int64)
                sub = o[fr * R:(fr + 1) * R, fc * C:(fc + 1) * C]
                blk[:sub.shape[0], :sub.shape[1]] = sub
                i2, j2 = np.meshgrid(np.arange(R), np.arange(C), indexing="ij")
                oe.append((blk[::-1], base + K - 1 + i2 + j2, j2))
                base += length
    else:
        p, nfc = _sections(x.T.copy(), C)
        ist = p.ravel()
        fs, nfr = _sections(wm.T.copy(), R)
        fst, _ = _diagonal(fs)
        length = 2 * R + n + C - 2
        for fc in range(nfc):
            for fr in range(nfr):
                rr, cc = np.meshgrid(np.arange(R), np.arange(C), indexing="ij")
                krow = fr * R + R - 1 - rr
                ie.append((np.where(krow < K, p[fc * K + np.minimum(krow, K - 1), cc], -1), base + rr, cc))
                i, j = np.meshgrid(np.arange(n), np.arange(R), indexing="ij")
                fe.append((fs[fr * n + i, j], base + R + i + j, j))
                ob = o.T[:, fc * C:(fc + 1) * C]
                ob = np.pad(ob, ((0, 0), (0, C - ob.shape[1])), constant_values=-1)
                i2, j2 = np.meshgrid(np.arange(n), np.arange(C), indexing="ij")
                oe.append((ob, base + 2 * R - 1 + i2 + j2, j2))
                base += length
    out_lines = _demand(oe)[1]
    return {"ifmap": (ist, *_demand(ie)), "filter": (fst, *_demand(fe)),
            "writes": np.bincount(out_lines, minlength=base), "lines": base}


def read_misses(stream: np.ndarray, requests: np.ndarray, lines: np.ndarray, total: int) -> list[tuple[int, int]]:
    """read_buffer: every request checked against the active sets; (line, slides) per miss."""
    valid = stream[stream != -1]
    eps = math.ceil(total / 100)
    n = len(valid) // eps + 1
    A = min(math.ceil(math.ceil(total / 2) / eps), n)
    P = min(math.ceil((total - math.ceil(total / 2)) / eps), n - A)
    sets_of: dict[int, set[int]] = {}
    for pos, a in enumerate(valid.tolist()):
        sets_of.setdefault(a, set()).add(pos // eps)
    w, out = 0, []
    if P <= 0:
        return out
    for a, line in zip(requests.tolist(), lines.tolist()):
        have = sets_of[a]
        k = 0
        while not any((t - w) % n < A for t in have):
            w, k = (w + P) % n, k + 1
        if k:
            out.append((line, k))
    return out


def service(st: dict, words: tuple[int, int, int], bw: tuple[int, int, int]) -> dict:
    """service_memory_requests, line by line: total cycles (the count), stalls, DRAM traffic, and
    cycles including the first prefetch and the last drain."""
    miss, res, first, L, last = {}, {}, {}, {}, {}
    for op, tot, b in (("ifmap", words[0], bw[0]), ("filter", words[1], bw[1])):
        stream, req, line = st[op]
        got = read_misses(stream, req, line, tot)
        L[op] = math.ceil((tot - math.ceil(tot / 2)) / b)
        first[op] = min(math.ceil(math.ceil(tot / 2) / b), math.ceil(stream.size / b))
        res[f"dram_{op}_reads"] = (first[op] + L[op] * sum(k for _, k in got)) * b
        miss[op] = {}
        for ln, k in got:
            miss[op].setdefault(ln, []).append(k)
        last[op] = -1
    tot, b = words[2], bw[2]
    drain = tot - math.ceil(tot / 2)
    free, in_line, nlines, partial, start, drain_end, ends, drained = tot, 0, 0, {}, 0, 0.0, [], 0

    def empty(cycle):
        nonlocal start, free, drained
        end = min(start + math.ceil(drain / b), nlines)
        k = end - start
        data = k * b - (b - partial.get(end - 1, b))
        drained, free, start = drained + data, free + data, end
        ends.append(cycle + k - 1)
        return cycle + k - 1

    stall, out = 0, 0.0
    for i, count in enumerate(st["writes"].tolist()):
        c = i + stall
        waits = []
        for op in ("ifmap", "filter"):
            off = 1.0
            for k in miss[op].get(i, ()):
                for _ in range(k):
                    last[op] += L[op] + 1
                    p = last[op] - (c + off)
                    off += p + max(p, 0)
            waits.append(off - 1)
        cur, off = c, 0.0
        for _ in range(count):
            free -= 1
            in_line += 1
            if in_line == b:
                nlines, in_line = nlines + 1, 0
            if cur < drain_end:
                if free <= 0:
                    off, cur = off + drain_end - cur, drain_end
            elif free < tot - drain:
                if in_line:
                    partial[nlines], nlines, in_line = in_line, nlines + 1, 0
                drain_end = empty(cur)
        out = cur
        stall += int(max(*waits, off))
    if in_line:
        partial[nlines], nlines = in_line, nlines + 1
    cycle = out
    while start < nlines:
        cycle = empty(cycle) + 1
    res.update(total_cycles=int(out) + 1, dram_ofmap_writes=drained,
               overall_cycles=int(max(ends) + max(first.values())))
    return res
