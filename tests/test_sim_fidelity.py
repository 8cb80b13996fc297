"""The systolic simulator's buffers and timing against SCALE-Sim 3.0.0's algorithms replayed request by
request (tests/scalesim_oracle.py) on layers SCALE-Sim was never run on: every dataflow, strides
that overlap windows and strides that do not, N:M sparsity, buffers small enough to miss often.
Every figure must agree exactly; the oracle itself must reproduce cached SCALE-Sim runs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sparsesim.interop import scalesim
from sparsesim.sim import Gemm, SystolicConfig, simulate_gemm
from sparsesim.sim.systolic import Conv
from sparsesim.sim.operands import operands
from scalesim_oracle import _diagonal, service, streams

ROOT = Path(__file__).resolve().parents[1] / "benchmarks"

# (input h, w, filter fh, fw, channels, filters, stride, rows, cols, dataflow, sram words, sparsity)
CASES = [
    (12, 12, 3, 3, 4, 6, 1, 8, 4, "ws", (512, 256, 256), (1, 1)),
    (13, 13, 3, 3, 3, 5, 2, 4, 8, "os", (400, 300, 256), (1, 1)),
    (11, 9, 5, 5, 2, 7, 2, 8, 8, "is", (600, 200, 128), (1, 1)),
    (10, 10, 1, 1, 8, 12, 2, 4, 4, "ws", (300, 256, 200), (1, 1)),
    (14, 14, 3, 3, 4, 6, 3, 8, 4, "os", (256, 256, 256), (1, 1)),
    (9, 9, 4, 4, 3, 5, 1, 4, 4, "is", (500, 300, 300), (1, 1)),
    (12, 12, 3, 3, 8, 6, 1, 8, 4, "ws", (700, 300, 256), (2, 4)),
    (16, 16, 3, 3, 2, 9, 1, 16, 8, "ws", (900, 900, 512), (1, 1)),
    (30, 20, 1, 20, 1, 6, 1, 8, 4, "os", (400, 256, 256), (1, 1)),      # a GEMM (SCALE-Sim's GEMM-as-conv)
    (8, 8, 3, 3, 8, 8, 1, 16, 8, "ws", (1500, 900, 512), (1, 1)),      # words served from their copies
    (8, 8, 3, 3, 8, 8, 1, 8, 8, "is", (600, 900, 512), (1, 1)),
]


def _gemm(h, w, fh, fw, c, n, s, sparsity=(1, 1)) -> Gemm:
    oh, ow = math.ceil((h - fh + s) / s), math.ceil((w - fw + s) / s)
    return Gemm(oh * ow, fh * fw * c, n, sparsity=sparsity, conv=Conv(h, w, fh, fw, c, s))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[9]}-{c[2]}x{c[3]}s{c[6]}-{c[7]}x{c[8]}")
def test_every_figure_equals_scalesims_algorithm_replayed(case):
    h, w, fh, fw, c, n, s, R, C, df, words, sparsity = case
    bw = (4, 3, 5)
    cfg = SystolicConfig(R, C, df, sram_words=words, bandwidth=bw, run_ahead=True)
    r = simulate_gemm(_gemm(h, w, fh, fw, c, n, s, sparsity), cfg)
    ref = service(streams(h, w, fh, fw, c, n, s, R, C, df, sparsity), words, bw)
    assert r.dram_reads == {"ifmap": ref["dram_ifmap_reads"], "filter": ref["dram_filter_reads"]}
    assert r.dram_writes["ofmap"] == ref["dram_ofmap_writes"]
    assert r.total_cycles == ref["total_cycles"]
    assert r.overall_cycles == ref["overall_cycles"]
    assert r.dram_reads["ifmap"] > min(math.ceil(words[0] / 2), 1)     # the buffers did miss


@pytest.mark.parametrize("case", CASES[:6], ids=lambda c: f"{c[9]}-{c[2]}x{c[3]}s{c[6]}")
def test_the_closed_form_streams_are_scalesims_prefetch_order(case):
    """Every valid entry's rank (its place among the fetched words) from the closed forms equals its
    place in SCALE-Sim's materialised prefetch matrix, and back."""
    h, w, fh, fw, c, n, s, R, C, df, words, sparsity = case
    g = _gemm(h, w, fh, fw, c, n, s, sparsity)
    ops = operands(g, SystolicConfig(R, C, df))
    st = streams(h, w, fh, fw, c, n, s, R, C, df, sparsity)
    for name in ("ifmap", "filter"):
        stack = ops[name].stack
        full = st[name][0]
        assert stack.entries == full.size and stack.words == int((full != -1).sum())
        # rebuild the stacked matrix and its fetch order the long way
        ranks = np.cumsum(full != -1) - 1
        order = np.arange(full.size) if not stack.diagonal else None
        if stack.diagonal:
            _, pos = _diagonal(np.zeros((stack.n_rows, stack.width)))
            order = pos.ravel()
        i, cc = np.divmod(np.arange(full.size), stack.width)
        valid = full[order] != -1
        raw = stack.raw(i[valid], cc[valid])
        assert np.array_equal(raw, order[valid])
        assert np.array_equal(stack.rank(raw), ranks[order[valid]])
        assert np.array_equal(stack.raw_of(ranks[order[valid]]), raw)


def test_a_buffer_serves_a_word_from_whichever_copy_it_holds():
    """The same stream with every input word distinct (a GEMM with no overlapping windows) misses
    more: the im2col's copies of a word are one word to the buffer."""
    h, w, fh, fw, c, n, s, R, C = 8, 8, 3, 3, 8, 8, 1, 16, 8
    cfg = SystolicConfig(R, C, "ws", sram_words=(1500, 900, 512), bandwidth=(4, 3, 5), run_ahead=True)
    conv = simulate_gemm(_gemm(h, w, fh, fw, c, n, s), cfg)
    flat = simulate_gemm(Gemm(6 * 6, fh * fw * c, n), cfg)
    assert conv.dram_reads["ifmap"] < 0.6 * flat.dram_reads["ifmap"]
    assert conv.total_cycles < flat.total_cycles and conv.compute_cycles == flat.compute_cycles


@pytest.mark.parametrize("name", ["l2_proj1x1__a128_ws_user10", "l3_proj1x1__a128_os_user10"])
def test_the_oracle_reproduces_cached_scalesim_runs(name):
    topology, config = name.split("__")
    ref = json.loads((ROOT / "results" / "scalesim-3.0.0" / f"{name}.json").read_text())["layers"][0]
    layer = scalesim.read_topology(ROOT / "scalesim" / f"{topology}.csv")[0]
    cfg = scalesim.read_config(ROOT / "scalesim" / f"{config}.cfg").array
    st = streams(layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w, layer.channels, layer.filters,
                 layer.stride, cfg.rows, cfg.cols, cfg.dataflow)
    got = service(st, cfg.sram_words, tuple(int(b) for b in cfg.bandwidth))
    assert got["total_cycles"] - 1 == ref["total_cycles"]
    assert got["overall_cycles"] == ref["total_cycles_incl_prefetch"]
    for key in ("dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes"):
        assert got[key] == ref[key], key
