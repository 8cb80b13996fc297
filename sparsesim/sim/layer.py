"""One layer, every frame, through its hardware kind's simulator, priced with the one energy pricer.

Each simulator is registered by the name a hardware kind gives (`Kind.simulator`) and returns a
typed `SimResult`: seconds, stalls by cause, and the words it moved at the layer's backing level and
at the buffer, by data type. Systolic arrays stream the active blocks' pixels through the layer's
implicit GEMM (the ifmap buffer fetches the active blocks' input tiles, halos shared where blocks
touch); spatial arrays schedule the real block maps over PE sets; GPUs deal tiles to SMs in waves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import SparsesimError
from ..hardware import Access, EnergyTable, Hardware, kinds, price
from ..workload import (DATA_TYPES, Geometry, Work, block_map, dense_work, from_block_maps, input_coverage,
                        inner_accesses, sparse_work, traffic)
from ..workload.strategies import Kernel
from ..workload.traffic import RegionShape
from .gpu import simulate_gpu
from .spatial import simulate_spatial
from .systolic import Conv, Gemm, SystolicConfig, simulate_gemm

DATAFLOW_CODES = {"weight-stationary": "ws", "output-stationary": "os", "input-stationary": "is"}
PRICED_TYPES = (*DATA_TYPES, "metadata")


@dataclass(frozen=True)
class SimResult:
    """What a simulator returns for one layer, every frame (arrays of shape (T,))."""
    seconds: np.ndarray
    stalls: dict[str, np.ndarray]                  # seconds by cause
    backing_level: str                             # the level kind the kernel's traffic crosses
    backing_words: dict[str, np.ndarray]           # words moved there, by data type
    buffer_words: dict[str, np.ndarray] | None     # buffer words by data type (None: not simulated)
    weight_fill_s: np.ndarray | None = None        # of `seconds`, the wait for the first weights alone
    weight_window_s: np.ndarray | None = None      # time before the end the next layer's weights can load


@dataclass(frozen=True)
class LayerRun:
    """The inputs of a simulator: one layer, its work per frame, its block maps (None: dense)."""
    layer: pd.Series
    geo: Geometry
    work: Work
    block: int | None
    maps: np.ndarray | None
    schedule: str


Simulator = Callable[[LayerRun, Hardware], SimResult]
SIMULATORS: dict[str, Simulator] = {}


def register_simulator(name: str) -> Callable[[Simulator], Simulator]:
    def add(fn: Simulator) -> Simulator:
        SIMULATORS[name] = fn
        return fn
    return add


def simulator_of(hw: Hardware) -> Simulator:
    kind = kinds.of(hw)
    if kind.simulator not in SIMULATORS:
        covered = ", ".join(k for k in kinds.names() if kinds.get(k).simulator in SIMULATORS)
        raise SparsesimError(f"hardware {hw.name} is a {hw.kind}: the simulator covers {covered} "
                             f"(the cpu model is measured, see `sparsesim validate`)")
    return SIMULATORS[kind.simulator]


def systolic_config(hw: Hardware, backing: int = 0) -> SystolicConfig:
    """A systolic description as the simulator's array, from its YAML: the dataflow, the buffer's
    split between the three operands, whether stationary operands are double-buffered, whether
    partial sums accumulate on chip. Weights come from DRAM; inputs and outputs from the layer's
    backing level (the buffer itself where the layer's working set fits, as in the cost model).
    Operands that share a level share its channel."""
    p = hw.part
    words = hw.level("buffer").size_bytes / hw.word_bytes
    split = tuple(int(words * share / sum(p.buffer_split)) for share in p.buffer_split)
    per_cycle = [lv.bandwidth / hw.word_bytes / hw.clock_hz for lv in hw.levels]
    return SystolicConfig(rows=p.rows, cols=p.cols, dataflow=DATAFLOW_CODES[hw.tiling.dataflow], sram_words=split,
                          bandwidth=(per_cycle[backing], per_cycle[0], per_cycle[backing]),
                          shared_channel=backing == 0, preload_overlap=p.preload_overlap, accumulate=p.accumulate)


@lru_cache(maxsize=65536)
def _gemm(g: Gemm, cfg: SystolicConfig, on_chip: bool) -> tuple:
    """(cycles, stalls by cause, DRAM words by type, buffer words by type, cycles waiting for the
    first weights, cycles the next layer's weights can load in) of one GEMM; `on_chip`: inputs and
    outputs live in the buffer level (only the weights cross DRAM)."""
    r = simulate_gemm(g, cfg)
    fill = float(r.weight_fill_cycles)
    stalls = {"dram_bandwidth": float(r.stall_cycles), "first_weights": fill,
              "first_fill_last_drain": float(r.overall_cycles - r.total_cycles) - fill}
    activations = {"inputs": r.dram_reads["ifmap"], "outputs": r.dram_writes["ofmap"]}
    dram = {"weights": r.dram_reads["filter"], **({"inputs": 0, "outputs": 0} if on_chip else activations)}
    sram = {"inputs": r.sram_reads["ifmap"], "weights": r.sram_reads["filter"], "outputs": r.sram_writes["ofmap"]}
    if on_chip:
        sram = {k: v + activations.get(k, 0) for k, v in sram.items()}
    # the next layer's weights can stream in while this layer's weight channel idles, into the
    # filter buffer's room: all but this layer's weights, or the prefetch half where they stream
    room = cfg.sram_words[1] - min(g.k_stored * g.n, math.ceil(cfg.sram_words[1] / 2))
    window = min(r.weight_channel_free, room / cfg.bandwidth[1])
    return float(r.overall_cycles), stalls, dram, sram, fill, float(window)


@register_simulator("systolic-folds")
def _systolic(run: LayerRun, hw: Hardware) -> SimResult:
    geo, work, layer = run.geo, run.work, run.layer
    moved = traffic(geo, hw, work)
    level = int(np.asarray(moved.backing).reshape(-1)[0])
    cfg = systolic_config(hw, level)
    k = int(round(float(geo.gemm_k.item())))
    conv = _conv(layer)
    if run.block is None:
        pixels = [None]
        distinct = np.array([float(geo.in_elems.item())])
    else:
        pixels = [_block_pixels(frame, run.block) if conv is not None else None for frame in run.maps]
        cover = input_coverage(run.maps, run.block, layer) if np.all(work.first) and np.all(work.last) else None
        per_block = float(np.asarray(work.tile_in).reshape(-1)[0])   # a region's tile, grown by its halo
        distinct = np.asarray(work.blocks).reshape(-1) * per_block if cover is None else cover * float(geo.cin.item())
    n = int(layer["out_channels"])
    ms = np.asarray(work.padded_pixels).reshape(-1) if run.block is not None else [int(layer["out_h"] * layer["out_w"])]
    out = [_gemm(Gemm(int(m), k, n, ifmap_unique=int(u), conv=conv, pixels=p), cfg, level > 0)
           for m, p, u in zip(ms, pixels, distinct)]
    over = np.asarray(moved.overhead_bytes).reshape(-1) / hw.levels[level].bandwidth * hw.clock_hz
    cycles = np.array([o[0] for o in out]) + over
    stalls = {key: np.array([o[1][key] for o in out]) for key in out[0][1]}
    stalls["overhead"] = over + np.zeros_like(cycles)
    by_type = lambda i: {t: np.array([o[i][t] for o in out], np.float64) for t in out[0][i]}  # noqa: E731
    return SimResult(seconds=cycles / hw.clock_hz, stalls={c: v / hw.clock_hz for c, v in stalls.items()},
                     backing_level="dram", backing_words=by_type(2), buffer_words=by_type(3),
                     weight_fill_s=np.array([o[4] for o in out]) / hw.clock_hz,
                     weight_window_s=np.array([o[5] for o in out]) / hw.clock_hz)


def _conv(layer: pd.Series) -> Conv | None:
    """The input a conv's im2col reads: the padded input its windows reach, input channels per group
    (one stride and dilation: the vertical ones). None for a transposed conv: its sub-pixel phases
    read no common window, so its words are taken as distinct (a plain GEMM)."""
    if layer["op"] == "conv_transpose2d":
        return None
    (kh, kw), (sh, _), (dh, dw) = ((int(layer[f"{k}_h"]), int(layer[f"{k}_w"])) for k in ("kernel", "stride", "dilation"))
    oh, ow = int(layer["out_h"]), int(layer["out_w"])
    c = int(layer["in_channels"]) // int(layer["groups"])
    return Conv((oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sh + (kw - 1) * dw + 1, kh, kw, c, sh, dh)


def _block_pixels(active: np.ndarray, block: int) -> bytes:
    """The output pixels a frame streams: every pixel of each active block, blocks in raster order,
    as int32 (row, column) pairs."""
    blocks = np.argwhere(active).astype(np.int32) * block
    inner = np.argwhere(np.ones((block, block), bool)).astype(np.int32)
    return (blocks[:, None, :] + inner[None, :, :]).reshape(-1, 2).tobytes()


@register_simulator("row-stationary-sets")
def _spatial(run: LayerRun, hw: Hardware) -> SimResult:
    if run.block is None:          # dense: the whole map is one block, its rows down the PE columns
        shape, maps = (int(run.layer["out_h"]), int(run.layer["out_w"])), np.ones((1, 1, 1), dtype=bool)
    else:
        shape, maps = (run.block, run.block), run.maps
    r = simulate_spatial(run.geo, hw, run.work, shape, maps, run.schedule)
    return SimResult(seconds=r.seconds, stalls={k: v / hw.clock_hz for k, v in r.stalls.items()},
                     backing_level=_backing_kind(run.geo, hw, run.work), backing_words=r.dram_by_type,
                     buffer_words=r.buffer_by_type, weight_fill_s=r.weight_fill / hw.clock_hz,
                     weight_window_s=r.weight_window / hw.clock_hz)


@register_simulator("gpu-waves")
def _gpu(run: LayerRun, hw: Hardware) -> SimResult:
    r = simulate_gpu(run.geo, hw, run.work)
    n = max(np.size(r.seconds), 1)
    flat = lambda a: np.broadcast_to(a, np.shape(r.seconds)).reshape(n)  # noqa: E731
    moved = traffic(run.geo, hw, run.work)
    # every word a tile loads from its backing level lands in shared memory first (when that is inside it)
    fills = int(np.asarray(moved.backing).reshape(-1)[0]) < _level_index(hw, "buffer")
    buffer = {t: flat(v + moved.kernel[t] * fills) for t, v in inner_accesses(run.geo, hw, run.work)["buffer"].items()}
    return SimResult(seconds=flat(r.seconds), stalls={k: flat(v) for k, v in r.stalls.items()},
                     backing_level=_backing_kind(run.geo, hw, run.work),
                     backing_words={k: flat(v) for k, v in moved.kernel.items()}, buffer_words=buffer)


def _backing_kind(geo: Geometry, hw: Hardware, work: Work) -> str:
    """The memory kind a layer's tensors live in (L2 or the global buffer where they fit, else DRAM)."""
    return hw.levels[int(np.asarray(traffic(geo, hw, work).backing).reshape(-1)[0])].kind


def _level_index(hw: Hardware, level_kind: str) -> int | None:
    return {lv.kind: i for i, lv in reversed(list(enumerate(hw.levels)))}.get(level_kind)


def sim_accesses(geo: Geometry, hw: Hardware, work: Work, r: SimResult) -> list[Access]:
    """The simulator's accesses for the pricer: the kernel's traffic at the level it crosses, the
    skipping overheads' at the level the layer lives in, buffer accesses at the buffer; the register
    file and interconnect per MAC as the cost model counts them (the simulators do not)."""
    bits = 8 * hw.word_bytes
    flat = lambda a: np.broadcast_to(a, np.shape(work.macs)).reshape(-1)  # noqa: E731  (T,) per frame
    moved = traffic(geo, hw, work)
    backing = _level_index(hw, _backing_kind(geo, hw, work))
    out = [Access(_level_index(hw, r.backing_level), t, words * bits) for t, words in r.backing_words.items()]
    out += [Access(backing, t, flat(moved.layer[t] - moved.kernel[t]) * bits) for t in moved.layer]
    out.append(Access(backing, "metadata", flat(moved.metadata) * 8))
    buffer_index = _level_index(hw, "buffer")
    if buffer_index is not None:   # a region's intermediate tiles kept in the buffer
        out += [Access(buffer_index, t, flat(v) * bits) for t, v in moved.on_chip.items()]
    inner = inner_accesses(geo, hw, work)
    buffer = r.buffer_words if r.buffer_words is not None else {t: flat(v) for t, v in inner["buffer"].items()}
    for level_kind, words in (("buffer", buffer), ("noc", {t: flat(v) for t, v in inner["noc"].items()}),
                              ("rf", {t: flat(v) for t, v in inner["rf"].items()})):
        index = _level_index(hw, level_kind)
        if index is not None:
            out += [Access(index, t, w * bits) for t, w in words.items()]
    return out


def sim_energy(geo: Geometry, hw: Hardware, table: EnergyTable, work: Work, r: SimResult) -> np.ndarray:
    """The simulator's accesses priced, plus static power over the simulated seconds."""
    macs = np.asarray(work.macs).reshape(-1)
    return price(hw, table, sim_accesses(geo, hw, work, r), macs, PRICED_TYPES,
                 seconds=np.asarray(r.seconds).reshape(-1))["energy_pj"]


def layer_work(layer: pd.Series, maps: np.ndarray, block: int, kernel: Kernel | None = None,
               region: RegionShape | None = None) -> tuple[Geometry, Work]:
    """A layer's geometry and block-sparse work per frame, from its block maps (counted once); inside
    a fused region, `maps` are the region's and `region` this layer's place in it."""
    one = pd.DataFrame([layer])
    geo = Geometry.from_layers(one)
    wl = from_block_maps("sim", one, [maps], block, np.zeros((1, maps.shape[0])))
    b = np.array(float(block)).reshape(1, 1, 1)
    return geo, sparse_work(geo, b, wl.active_blocks.astype(float), wl.active_pixels.astype(float),
                            wl.total_blocks[:, None, :].astype(float), kernel, region)


def simulate_maps(layer: pd.Series, maps: np.ndarray, hw: Hardware, table: EnergyTable, block: int,
                  schedule: str, kernel: Kernel | None = None, region: RegionShape | None = None) -> pd.DataFrame:
    """One layer, every frame, from its (T, hb, wb) block maps: simulated seconds, energy and stalls
    (and the dense baseline's seconds)."""
    geo, work = layer_work(layer, maps, block, kernel, region)
    run = simulator_of(hw)
    sparse = run(LayerRun(layer, geo, work, block, maps, schedule), hw)
    dense = run(LayerRun(layer, geo, dense_work(geo, kernel), None, None, schedule), hw)
    macs = np.asarray(work.macs).reshape(-1)
    frame = {"active_blocks": np.asarray(work.blocks).reshape(-1).astype(np.int64),
             "total_blocks": int(np.asarray(work.total_blocks).reshape(-1)[0]),
             "sim_s": sparse.seconds, "sim_dense_s": float(np.asarray(dense.seconds).reshape(-1)[0]),
             "sim_energy_pj": sim_energy(geo, hw, table, work, sparse),
             "sim_static_pj": hw.static_w * 1e12 * np.asarray(sparse.seconds).reshape(-1),
             "sim_utilisation": macs / (hw.peak_macs_per_s * sparse.seconds),
             "sim_backing_level": sparse.backing_level,
             "sim_backing_words": sum(sparse.backing_words.values()),
             **{f"stall_{k}_s": np.asarray(v).reshape(-1) for k, v in sparse.stalls.items()}}
    if sparse.buffer_words is not None:
        frame["sim_buffer_words"] = sum(sparse.buffer_words.values())
    if sparse.weight_fill_s is not None:      # what `sim.run` needs to carry weights across layers
        frame.update(sim_weight_fill_s=sparse.weight_fill_s, sim_weight_window_s=sparse.weight_window_s,
                     sim_dense_weight_fill_s=float(dense.weight_fill_s[0]),
                     sim_dense_weight_window_s=float(dense.weight_window_s[0]))
    return pd.DataFrame(frame)


def simulate_layer(layer: pd.Series, masks: np.ndarray, hw: Hardware, table: EnergyTable, block: int,
                   schedule: str) -> pd.DataFrame:
    """One layer, every frame, from its (T, H, W) gate masks (see `simulate_maps`)."""
    return simulate_maps(layer, block_map(masks, block), hw, table, block, schedule)
