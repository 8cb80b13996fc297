"""Workload + hardware + kernels + block sizes -> the cost table (one row per layer x frame x hardware x
kernel x block), with the per-layer and per-hardware summaries."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..hardware import EnergyTable, Hardware, kinds
from ..workload import BlockWorkload, Geometry, dense_work, sparse_work, traffic
from ..workload.regions import region_shape
from ..workload.strategies import Kernel, get as strategy
from .energy import energy
from .latency import ALGORITHM, HIDDEN, OVERHEADS, STEPS, latency
from .memory import footprint

LEVEL_ENERGY = ("e_dram", "e_l2", "e_buffer", "e_noc", "e_rf", "e_mac", "e_static")
BREAK_EVEN_STEPS = 200  # density resolution of the break-even search: 1/200
KEYS = ("workload", "hw", "energy_table", "kernel")   # what one configuration is keyed by


@dataclass(frozen=True)
class Estimate:
    rows: pd.DataFrame      # layer x frame x hw x kernel x block
    layers: pd.DataFrame    # layer x hw x kernel x block: totals over frames, break-even density
    summary: pd.DataFrame   # hw x kernel x block: totals over the video, speed-up, energy saving, memory


def _costs(geo: Geometry, hw: Hardware, table: EnergyTable, work, block) -> dict[str, np.ndarray]:
    moved = traffic(geo, hw, work)   # once: latency and energy read the same traffic
    t = latency(geo, hw, work, block, moved)
    return {**t, **energy(geo, hw, table, work, moved=moved, seconds=t["latency_s"]),
            "bytes_backing": moved.kernel_bytes + moved.overhead_bytes}


def block_work(geo: Geometry, wl: BlockWorkload, kernel: Kernel, blocks=None, pixels=None):
    """The sparse work of a workload under a kernel: a region fuses its chains (their blocks are the
    union of the chain's masks and each tile grows by the halo of the layers after it)."""
    block = np.asarray(wl.blocks, float).reshape(1, 1, -1)
    total = wl.total_blocks[:, None, :].astype(float)
    fused = strategy(kernel.strategy).fuses_regions and wl.regions is not None
    if blocks is None:
        blocks = (wl.region_blocks if fused else wl.active_blocks).astype(float)
        pixels = (wl.region_pixels if fused else wl.active_pixels).astype(float)
    region = region_shape(wl.layers, wl.regions) if fused else None
    return sparse_work(geo, block, blocks, pixels, total, kernel, region)


def _latency_curve(geo: Geometry, hw: Hardware, wl: BlockWorkload, kernel: Kernel) -> np.ndarray:
    """Per layer, density step and block: the block-sparse latency with that fraction of the layer's
    blocks active, (L, BREAK_EVEN_STEPS + 1, Nb)."""
    density = np.linspace(0.0, 1.0, BREAK_EVEN_STEPS + 1).reshape(1, -1, 1)
    total = wl.total_blocks[:, None, :].astype(np.float64)
    blocks = np.round(density * total)
    work = block_work(geo, wl, kernel, blocks, blocks * geo.out_pixels / total)
    return latency(geo, hw, work, np.asarray(wl.blocks, float).reshape(1, 1, -1))["latency_s"]


def _break_even(curve: np.ndarray, dense_latency: np.ndarray) -> np.ndarray:
    """The lowest active-block density at which block-sparse is no faster than dense (1.0 where it always
    wins, 0.0 where even an empty mask loses), per row of `curve` and block."""
    loses = curve >= dense_latency
    first = np.where(loses.any(axis=1), loses.argmax(axis=1), BREAK_EVEN_STEPS)
    return first / BREAK_EVEN_STEPS


def _model_break_even(curve: np.ndarray, dense_latency: np.ndarray) -> np.ndarray:
    """Per block, the density at which the whole model's block-sparse latency (every layer at that
    density, summed) reaches the whole model's dense latency, (Nb,)."""
    dense = np.broadcast_to(dense_latency, (curve.shape[0], 1, curve.shape[2])).sum(axis=0, keepdims=True)
    return _break_even(curve.sum(axis=0, keepdims=True), dense)[0]


def _rows(wl: BlockWorkload, hw: Hardware, table: EnergyTable, kernel: Kernel, geo: Geometry,
          dense: dict, sparse: dict, sparse_w) -> pd.DataFrame:
    shape = wl.active_blocks.shape
    grid = lambda a: np.broadcast_to(a, shape).reshape(-1)  # noqa: E731
    block = np.asarray(wl.blocks, float).reshape(1, 1, -1)
    columns = {
        "workload": wl.name, "hw": hw.name, "energy_table": table.name, "kernel": kernel.name,
        "mask_source": kernel.mask_source,
        "layer_id": grid(wl.layers["id"].to_numpy().reshape(-1, 1, 1)),
        "layer": grid(wl.layers["name"].to_numpy().reshape(-1, 1, 1)),
        "frame": grid(wl.frames.reshape(1, -1, 1)),
        "block": grid(block).astype(np.int64),
        "active_blocks": grid(sparse_w.blocks).astype(np.int64), "total_blocks": grid(wl.total_blocks[:, None, :]),
        "density": grid(sparse_w.blocks / wl.total_blocks[:, None, :]),
        "macs": grid(sparse_w.macs), "macs_dense": grid(geo.dense_macs),
    }
    columns["macs_skipped"] = columns["macs_dense"] - columns["macs"]
    for k in (*STEPS, ALGORITHM, *OVERHEADS, HIDDEN, "t_overhead", "latency_s", "launches"):
        columns[k] = grid(sparse[k])
    columns["conv_algorithm"] = grid(sparse["algorithm"])
    columns["latency_dense_s"] = grid(dense["latency_s"])
    columns["conv_algorithm_dense"] = grid(dense["algorithm"])
    for k in sparse:
        if k.startswith("e_") or k == "energy_pj":
            columns[k] = grid(sparse[k])
    columns["energy_dense_pj"] = grid(dense["energy_pj"])
    columns["bytes_backing"] = grid(sparse["bytes_backing"])
    columns["bytes_backing_dense"] = grid(dense["bytes_backing"])
    return pd.DataFrame(columns)


def estimate_one(wl: BlockWorkload, hw: Hardware, table: EnergyTable, kernel: Kernel | None = None
                 ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    kernel = kernel or Kernel(kinds.of(hw).strategies[0])
    geo = Geometry.from_layers(wl.layers)
    block = np.asarray(wl.blocks, float).reshape(1, 1, -1)
    dense = _costs(geo, hw, table, dense_work(geo, kernel), None)
    sparse_w = block_work(geo, wl, kernel)
    sparse = _costs(geo, hw, table, sparse_w, block)
    rows = _rows(wl, hw, table, kernel, geo, dense, sparse, sparse_w)
    T = wl.active_blocks.shape[1]

    agg = rows.groupby(["layer_id", "layer", "block"], sort=True).agg(
        density_mean=("density", "mean"), density_max=("density", "max"), macs=("macs", "sum"),
        macs_dense=("macs_dense", "sum"), latency_s=("latency_s", "sum"), latency_dense_s=("latency_dense_s", "sum"),
        latency_worst_s=("latency_s", "max"), energy_pj=("energy_pj", "sum"),
        energy_dense_pj=("energy_dense_pj", "sum")).reset_index()
    for i, key in enumerate(KEYS):
        agg.insert(i, key, rows[key].iloc[0])
    curve = _latency_curve(geo, hw, wl, kernel)
    agg["break_even_density"] = _break_even(curve, dense["latency_s"]).reshape(-1)
    model_break_even = _model_break_even(curve, dense["latency_s"])
    agg["speedup"] = agg["latency_dense_s"] / agg["latency_s"]
    agg["energy_saving"] = 1 - agg["energy_pj"] / agg["energy_dense_pj"]

    dense_frames = int((wl.active_pixels[:, :, 0] == wl.layers["out_h"].to_numpy()[:, None] *
                        wl.layers["out_w"].to_numpy()[:, None]).all(axis=0).sum())
    summary = []
    for j, b in enumerate(wl.blocks):
        sel = rows[rows["block"] == b]
        per_frame = sel.groupby("frame")[["latency_s", "latency_dense_s"]].sum()
        mem = footprint(geo, hw, b, wl.active_blocks[:, :, j], wl.active_pixels[:, :, j], wl.total_blocks[:, j],
                        kernel)
        summary.append({
            "workload": wl.name, "hw": hw.name, "energy_table": table.name, "kernel": kernel.name, "block": b,
            "frames": T, "break_even_density": float(model_break_even[j]),
            "dense_frames": dense_frames,
            "macs": sel["macs"].sum(), "macs_dense": sel["macs_dense"].sum(),
            "latency_s": sel["latency_s"].sum(), "latency_dense_s": sel["latency_dense_s"].sum(),
            "latency_worst_frame_s": per_frame["latency_s"].max(),
            "latency_best_frame_s": per_frame["latency_s"].min(),
            "energy_pj": sel["energy_pj"].sum(), "energy_dense_pj": sel["energy_dense_pj"].sum(),
            **{f"{k}_pj": sel[k].sum() for k in LEVEL_ENERGY},
            **{f"{k}_dense_pj": float(dense[k].sum()) * T for k in LEVEL_ENERGY}, **mem})
    summary = pd.DataFrame(summary)
    summary["speedup"] = summary["latency_dense_s"] / summary["latency_s"]
    summary["speedup_worst_frame"] = summary["latency_dense_s"] / T / summary["latency_worst_frame_s"]
    summary["speedup_best_frame"] = summary["latency_dense_s"] / T / summary["latency_best_frame_s"]
    summary["energy_saving"] = 1 - summary["energy_pj"] / summary["energy_dense_pj"]
    summary["mem_overhead"] = summary["mem_sparse_bytes"] / summary["mem_dense_bytes"] - 1
    return rows, agg, summary


def runs(hw: Hardware, kernels: Sequence[Kernel] | None) -> list[Kernel]:
    """The kernels a hardware runs, of those asked for (None: its natural one)."""
    if not kernels:
        return [Kernel(kinds.of(hw).strategies[0])]
    return [k for k in kernels if k.strategy in kinds.of(hw).strategies]


def estimate(wl: BlockWorkload, hardware: Sequence[Hardware], tables: Sequence[EnergyTable],
             kernels: Sequence[Kernel] | None = None) -> Estimate:
    """The cost model for every (hardware, energy table) pair given, in order, and every kernel each
    hardware runs (None: each one's natural kernel)."""
    parts = [estimate_one(wl, hw, table, k) for hw, table in zip(hardware, tables) for k in runs(hw, kernels)]
    rows, layers, summary = (pd.concat(p, ignore_index=True) for p in zip(*parts))
    return Estimate(rows=rows, layers=layers, summary=summary)
