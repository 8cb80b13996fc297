"""`sparsesim simulate TRACE`: trace -> block maps -> cycle-level simulator beside the analytical model.

Per layer and frame: simulated and analytical latency and energy, the simulator's stalls by cause,
and the cause that explains most of the gap. Systolic hardware runs `sim.systolic` on each layer's
implicit GEMM (active blocks' pixels streamed; the ifmap buffer fetches the active blocks' input
tiles, halos shared where blocks touch), spatial hardware `sim.spatial` over the real block maps,
GPUs `sim.gpu`. CPU descriptions have no simulator (their analytical model is already measured).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from . import hardware, trace, workload
from .atomic import table_path, write_frame
from .cost.estimate import estimate_one
from .cost.geometry import Geometry
from .cost.traffic import backing_level, dense_work, inner_accesses, overhead_bytes, sparse_work
from .errors import SparsesimError
from .estimating import companion
from .hardware import EnergyTable, Hardware
from .sim.gpu import simulate_gpu
from .sim.spatial import simulate_spatial
from .sim.systolic import Gemm, SystolicConfig, simulate_gemm

SIMULATED_KINDS = ("gpu", "systolic", "spatial")


@dataclass(frozen=True)
class SimulateOptions:
    trace: str
    hardware: Sequence[str]
    block: int
    layers: Sequence[str] | None = None
    frames: int | None = None
    output: str | None = None
    schedule: str | None = None        # spatial arrays: static | dynamic (None: the hardware's own)
    progress: bool = False


@dataclass(frozen=True)
class SimulateResult:
    rows: pd.DataFrame        # hw x layer x frame
    layers: pd.DataFrame      # hw x layer: totals over frames, gap, main cause
    summary: pd.DataFrame     # hw: totals
    outputs: tuple[Path, ...]


def block_maps(masks: np.ndarray, block: int) -> np.ndarray:
    """(T, H, W) gate masks -> (T, ceil(H/B), ceil(W/B)) active output blocks."""
    t, h, w = masks.shape
    hb, wb = -(-h // block), -(-w // block)
    padded = np.zeros((t, hb * block, wb * block), dtype=bool)
    padded[:, :h, :w] = masks
    return padded.reshape(t, hb, block, wb, block).any(axis=(2, 4))


def input_coverage(maps: np.ndarray, block: int, layer: pd.Series) -> np.ndarray | None:
    """Input pixels the active blocks read, halos shared where blocks touch: (T,) counts."""
    if layer["op"] == "conv_transpose2d":          # scatter-style: no simple footprint, no sharing
        return None
    out = np.repeat(np.repeat(maps, block, axis=1), block, axis=2)[:, : layer["out_h"], : layer["out_w"]]
    x = torch.from_numpy(out[:, None].astype(np.float32))
    ones = torch.ones(1, 1, int(layer["kernel_h"]), int(layer["kernel_w"]))
    cover = F.conv_transpose2d(x, ones, stride=(int(layer["stride_h"]), int(layer["stride_w"])),
                               padding=(int(layer["padding_h"]), int(layer["padding_w"])),
                               dilation=(int(layer["dilation_h"]), int(layer["dilation_w"])))
    cover = cover[:, 0, : layer["in_h"], : layer["in_w"]]
    return (cover > 0).sum(dim=(1, 2)).numpy().astype(np.float64)


def systolic_config(hw: Hardware, backing: int = 0) -> SystolicConfig:
    """A systolic description as the simulator's array: its buffer split evenly between the three
    operands, stationary weights double-buffered, partial sums accumulated on chip. Weights come from DRAM; inputs and outputs from
    the layer's backing level (the buffer itself where the layer's working set fits, as in the cost
    model). Operands that share a level share its channel."""
    buffer = hw.level("buffer")
    words = int(buffer.size_bytes / hw.word_bytes / 3)
    per_cycle = [lv.bandwidth / hw.word_bytes / hw.clock_hz for lv in hw.levels]
    return SystolicConfig(rows=hw.rows, cols=hw.cols, dataflow="ws", sram_words=(words, words, words),
                          bandwidth=(per_cycle[backing], per_cycle[0], per_cycle[backing]),
                          shared_channel=backing == 0, preload_overlap=True, accumulate=True)


@lru_cache(maxsize=65536)
def _gemm_cycles(g: Gemm, cfg: SystolicConfig, on_chip: bool) -> tuple[float, dict[str, float], float, float]:
    """(cycles, stalls by cause, DRAM words, buffer words) of one GEMM; `on_chip`: inputs and outputs
    live in the buffer level (only the weights cross DRAM)."""
    r = simulate_gemm(g, cfg)
    fill = r.overall_cycles - r.total_cycles
    stalls = {"dram_bandwidth": float(r.stall_cycles), "first_fill_last_drain": float(fill)}
    activations = r.dram_reads["ifmap"] + r.dram_writes["ofmap"]
    dram = r.dram_reads["filter"] + (0 if on_chip else activations)
    sram = sum(r.sram_reads.values()) + sum(r.sram_writes.values()) + (activations if on_chip else 0)
    return float(r.overall_cycles), stalls, float(dram), float(sram)


def _systolic(layer: pd.Series, geo: Geometry, hw: Hardware, work, block: int | None,
              maps: np.ndarray | None, schedule: str = "") -> dict[str, np.ndarray]:
    cfg_level = int(np.asarray(backing_level(geo, hw, work)).reshape(-1)[0])
    cfg = systolic_config(hw, cfg_level)
    k = int(round(float(geo.gemm_k.item())))
    cout = int(layer["out_channels"])
    if block is None:
        ms = np.array([int(layer["out_h"] * layer["out_w"])])
        streams = np.array([float(geo.in_elems.item())])
    else:
        ms = np.asarray(work.padded_pixels).reshape(-1).astype(np.int64)
        cover = input_coverage(maps, block, layer)
        per_block = float(geo.tile_in_elems(np.array(float(block))).item())
        blocks = np.asarray(work.blocks).reshape(-1)
        streams = blocks * per_block if cover is None else cover * float(geo.cin.item())
    out = [_gemm_cycles(Gemm(int(m), k, cout, ifmap_stream=int(s)), cfg, cfg_level > 0) for m, s in zip(ms, streams)]
    streaming, indexed = overhead_bytes(geo, hw, work)
    over = np.asarray(streaming + indexed).reshape(-1) / hw.levels[cfg_level].bandwidth * hw.clock_hz
    cycles = np.array([o[0] for o in out]) + over
    stalls = {key: np.array([o[1][key] for o in out]) for key in out[0][1]}
    stalls["overhead"] = over + np.zeros_like(cycles)
    return {"seconds": cycles / hw.clock_hz, "stalls": {k: v / hw.clock_hz for k, v in stalls.items()},
            "dram_words": np.array([o[2] for o in out]), "buffer_words": np.array([o[3] for o in out]),
            "kernel_level": "dram"}


def _spatial(layer, geo, hw, work, block, maps, schedule) -> dict[str, np.ndarray]:
    if block is None:              # dense: the whole map is one block, its rows down the PE columns
        shape, maps = (int(layer["out_h"]), int(layer["out_w"])), np.ones((1, 1, 1), dtype=bool)
    else:
        shape = (block, block)
    r = simulate_spatial(geo, hw, work, shape, maps, schedule)
    return {"seconds": r.seconds, "stalls": {k: v / hw.clock_hz for k, v in r.stalls.items()},
            "dram_words": r.dram_words, "buffer_words": r.buffer_words}


def _gpu(layer, geo, hw, work, block, maps, schedule) -> dict[str, np.ndarray]:
    r = simulate_gpu(geo, hw, work)
    n = max(np.size(r.seconds), 1)
    flat = lambda a: np.broadcast_to(a, np.shape(r.seconds)).reshape(n)  # noqa: E731
    return {"seconds": flat(r.seconds), "stalls": {k: flat(v) for k, v in r.stalls.items()},
            "dram_words": flat(r.dram_bytes) / hw.word_bytes, "buffer_words": None}


def _backing_kind(geo: Geometry, hw: Hardware, work) -> str:
    """The memory kind a layer's tensors live in (L2 or the global buffer where they fit, else DRAM)."""
    return hw.levels[int(np.asarray(backing_level(geo, hw, work)).reshape(-1)[0])].kind


def _energy(geo: Geometry, hw: Hardware, table: EnergyTable, work, dram_words: np.ndarray,
            buffer_words: np.ndarray | None, backing: str, kernel_level: str) -> np.ndarray:
    """The simulator's accesses priced with the cost model's energy table: the kernel's traffic at the
    level it crosses (`kernel_level`), the skipping overheads' at the level the layer lives in
    (`backing`), buffer accesses at the buffer; the register file and
    interconnect are charged per MAC as the cost model does (the simulators do not count them)."""
    bits = 8 * hw.word_bytes
    inner = inner_accesses(geo, hw, work)
    flat = lambda a: np.broadcast_to(a, np.shape(work.macs)).reshape(-1)  # noqa: E731
    streaming, indexed = overhead_bytes(geo, hw, work)       # mask reduction, gather, scatter, metadata
    e = flat(work.macs * table.mac(hw.dtype))
    e = e + dram_words * bits * table.mean_per_bit(kernel_level)
    e = e + flat(streaming + indexed) / hw.word_bytes * bits * table.mean_per_bit(backing)
    if buffer_words is None:
        buffer_words = flat(sum(inner["buffer"].values()))
    e = e + buffer_words * bits * table.mean_per_bit("buffer")
    for kind in ("noc", "rf"):
        if hw.level(kind) is not None:
            e = e + flat(sum(inner[kind].values())) * bits * table.mean_per_bit(kind)
    return e


SIMULATORS = {"systolic": _systolic, "spatial": _spatial, "gpu": _gpu}


def simulate_layer(layer: pd.Series, masks: np.ndarray, hw: Hardware, table: EnergyTable, block: int,
                   schedule: str) -> pd.DataFrame:
    """One layer, every frame: simulated seconds, energy and stalls (and the dense baseline's seconds)."""
    one = pd.DataFrame([layer])
    geo = Geometry.from_layers(one)
    maps = block_maps(masks, block)
    wl = workload.from_masks("sim", one, [masks], [block])
    b = np.array(float(block)).reshape(1, 1, 1)
    work = sparse_work(geo, b, wl.active_blocks.astype(float), wl.active_pixels.astype(float),
                       wl.total_blocks[:, None, :].astype(float))
    dense = dense_work(geo)
    run = SIMULATORS[hw.kind]
    backing = _backing_kind(geo, hw, work)
    sparse_out = run(layer, geo, hw, work, block, maps, schedule)
    dense_out = run(layer, geo, hw, dense, None, None, schedule)
    frame = {"active_blocks": wl.active_blocks.reshape(-1), "total_blocks": int(wl.total_blocks[0, 0]),
             "sim_s": sparse_out["seconds"], "sim_dense_s": float(np.asarray(dense_out["seconds"]).reshape(-1)[0]),
             "sim_energy_pj": _energy(geo, hw, table, work, sparse_out["dram_words"], sparse_out["buffer_words"],
                                      backing, sparse_out.get("kernel_level", backing)),
             "sim_utilisation": np.asarray(work.macs).reshape(-1) / (hw.peak_macs_per_s * sparse_out["seconds"]),
             "sim_backing_level": sparse_out.get("kernel_level", backing),
             "sim_backing_words": sparse_out["dram_words"],
             **{f"stall_{k}_s": np.asarray(v).reshape(-1) for k, v in sparse_out["stalls"].items()}}
    if sparse_out["buffer_words"] is not None:
        frame["sim_buffer_words"] = sparse_out["buffer_words"]
    return pd.DataFrame(frame)


def _trace_masks(tr: trace.Trace, layers: pd.DataFrame, frames: int | None) -> dict[int, np.ndarray]:
    """Every selected layer's masks, (T, H, W) each, read chunk by chunk once."""
    wanted = set(layers["id"])
    per_layer: dict[int, list[np.ndarray]] = {i: [] for i in wanted}
    for m in tr.masks(list(wanted)):
        if frames is not None and m.frame >= frames:
            break
        per_layer[m.layer].append(m.mask)
    n = min(len(v) for v in per_layer.values())
    if n == 0:
        raise SparsesimError(f"trace {tr.path} holds no frames")
    return {i: np.stack(v[:n]) for i, v in per_layer.items()}


def _select_layers(layers: pd.DataFrame, names: Sequence[str] | None) -> pd.DataFrame:
    if not names:
        return layers
    keep = []
    for name in names:
        hit = layers[(layers["name"] == name) | (layers["id"].astype(str) == name)]
        if hit.empty:
            raise SparsesimError(f"no layer {name!r} in the trace (see `sparsesim info TRACE`)")
        keep.append(hit)
    return pd.concat(keep).drop_duplicates("id").sort_values("id")


SHARED_COSTS = ("overhead", "launch")   # charged the same way by the cost model: never the cause of a gap


def _main_cause(row: pd.Series, causes: list[str]) -> str:
    """The largest stall the cost model does not also charge."""
    values = {c[len("stall_"):-len("_s")]: row[c] for c in causes if pd.notna(row[c])}
    values = {k: v for k, v in values.items() if k not in SHARED_COSTS}
    if not values:
        return ""
    cause, value = max(values.items(), key=lambda kv: kv[1])
    return cause if value > 0 else ""


def run_simulate(options: SimulateOptions) -> SimulateResult:
    if options.block < 1:
        raise SparsesimError(f"--block must be >= 1, got {options.block}")
    out = table_path(options.output)
    if out is not None and not out.parent.is_dir():
        raise SparsesimError(f"cannot write {out}: directory {out.parent} does not exist")
    if options.schedule not in (None, "static", "dynamic"):
        raise SparsesimError(f"--schedule must be static or dynamic, got {options.schedule!r}")
    specs = [hardware.load(name) for name in options.hardware]
    for hw in specs:
        if hw.kind not in SIMULATED_KINDS:
            raise SparsesimError(f"hardware {hw.name} is a {hw.kind}: the simulator covers "
                                 f"{', '.join(SIMULATED_KINDS)} (the cpu model is measured, see `sparsesim validate`)")
    tr = trace.open(options.trace)
    layers = _select_layers(workload.kept_channels(tr.layers_df.sort_values("id").reset_index(drop=True),
                                                   tr.channels), options.layers)
    masks = _trace_masks(tr, layers, options.frames)
    first = next(iter(masks.values()))
    frames = np.arange(first.shape[0])
    parts = []
    steps = [(hw, layer) for hw in specs for _, layer in layers.iterrows()]
    for hw, layer in tqdm(steps, desc="simulate", unit="layer", disable=not options.progress):
        table = hardware.energy_table(hw.energy_table)
        schedule = options.schedule or ("static" if hw.kind == "spatial" else "dynamic")
        rows = simulate_layer(layer, masks[layer["id"]], hw, table, options.block, schedule)
        rows.insert(0, "hw", hw.name)
        rows.insert(1, "layer_id", int(layer["id"]))
        rows.insert(2, "layer", layer["name"])
        rows.insert(3, "frame", frames[: len(rows)])
        rows.insert(4, "block", options.block)
        parts.append(rows)
    rows = pd.concat(parts, ignore_index=True)
    rows = _with_analytical(rows, layers, masks, specs, options.block)
    layer_totals, summary = _totals(rows)
    written: tuple[Path, ...] = ()
    if out is not None:
        written = (out, companion(out, "layers"), companion(out, "summary"))
        for path, df in zip(written, (rows, layer_totals, summary)):
            write_frame(path, df)
    return SimulateResult(rows, layer_totals, summary, written)


def _with_analytical(rows: pd.DataFrame, layers: pd.DataFrame, masks: dict[int, np.ndarray],
                     specs: list[Hardware], block: int) -> pd.DataFrame:
    """The cost model's latency and energy for the same layers, frames and block, joined per row."""
    stacks = [masks[i] for i in layers["id"]]
    wl = workload.from_masks("sim", layers, stacks, [block])
    parts = []
    for hw in specs:
        est, _, _ = estimate_one(wl, hw, hardware.energy_table(hw.energy_table))
        parts.append(est[["hw", "layer_id", "frame", "latency_s", "latency_dense_s", "energy_pj",
                          "energy_dense_pj"]].rename(columns={"latency_s": "analytical_s",
                                                             "latency_dense_s": "analytical_dense_s",
                                                             "energy_pj": "analytical_energy_pj",
                                                             "energy_dense_pj": "analytical_dense_energy_pj"}))
    merged = rows.merge(pd.concat(parts, ignore_index=True), on=["hw", "layer_id", "frame"], how="left")
    merged["gap"] = merged["sim_s"] / merged["analytical_s"].where(merged["analytical_s"] > 0) - 1
    causes = [c for c in merged.columns if c.startswith("stall_")]
    merged[causes] = merged[causes].fillna(0.0)
    merged["main_cause"] = [_main_cause(r, causes) for _, r in merged[causes].iterrows()]
    return merged


def _totals(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    causes = [c for c in rows.columns if c.startswith("stall_")]
    sums = ["sim_s", "analytical_s", "sim_energy_pj", "analytical_energy_pj", *causes]
    layers = rows.groupby(["hw", "layer_id", "layer", "block"], sort=True).agg(
        {**{c: "sum" for c in sums}, "sim_dense_s": "first", "analytical_dense_s": "first",
         "frame": "count"}).reset_index().rename(columns={"frame": "frames"})
    layers["gap"] = layers["sim_s"] / layers["analytical_s"].where(layers["analytical_s"] > 0) - 1
    layers["main_cause"] = [_main_cause(r, causes) for _, r in layers[causes].iterrows()]
    summary = rows.groupby(["hw", "block"], sort=True)[sums].sum().reset_index()
    frames = rows.groupby(["hw", "block"])["frame"].nunique().to_numpy()
    dense = rows.groupby(["hw", "block", "layer_id"])[["sim_dense_s", "analytical_dense_s"]].first() \
        .groupby(["hw", "block"]).sum().to_numpy()
    summary["sim_dense_s"] = dense[:, 0] * frames
    summary["analytical_dense_s"] = dense[:, 1] * frames
    summary["gap"] = summary["sim_s"] / summary["analytical_s"] - 1
    summary["sim_speedup"] = summary["sim_dense_s"] / summary["sim_s"]
    summary["analytical_speedup"] = summary["analytical_dense_s"] / summary["analytical_s"]
    summary["main_cause"] = [_main_cause(r, causes) for _, r in summary[causes].iterrows()]
    return layers, summary

