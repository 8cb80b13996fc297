"""Trace + hardware + block sizes -> the cost table (one row per layer x frame x hardware x block)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from ..hardware import EnergyTable, Hardware
from ..workload import BlockWorkload, Geometry, dense_work, sparse_work, traffic
from .energy import energy
from .latency import STEPS, latency
from .memory import footprint

LEVEL_ENERGY = ("e_dram", "e_l2", "e_buffer", "e_noc", "e_rf", "e_mac")
BREAK_EVEN_STEPS = 200  # density resolution of the break-even search: 1/200


@dataclass(frozen=True)
class Estimate:
    rows: pd.DataFrame      # layer x frame x hw x block
    layers: pd.DataFrame    # layer x hw x block: totals over frames, break-even density
    summary: pd.DataFrame   # hw x block: totals over the video, speed-up, energy saving, memory


def _costs(geo: Geometry, hw: Hardware, table: EnergyTable, work, block) -> dict[str, np.ndarray]:
    moved = traffic(geo, hw, work)   # once: latency and energy read the same traffic
    return {**latency(geo, hw, work, block, moved), **energy(geo, hw, table, work, moved=moved),
            "bytes_backing": moved.kernel_bytes + moved.overhead_bytes}


def _break_even(geo: Geometry, hw: Hardware, wl: BlockWorkload, dense_latency: np.ndarray) -> np.ndarray:
    """Per layer and block, the lowest active-block density at which block-sparse is no faster than
    dense (1.0 where it always wins, 0.0 where even an empty mask loses)."""
    density = np.linspace(0.0, 1.0, BREAK_EVEN_STEPS + 1).reshape(1, -1, 1)
    total = wl.total_blocks[:, None, :].astype(np.float64)
    blocks = np.round(density * total)
    pixels_per_block = (geo.out_pixels / total)
    work = sparse_work(geo, np.asarray(wl.blocks, float).reshape(1, 1, -1), blocks,
                       blocks * pixels_per_block, total)
    t = latency(geo, hw, work, np.asarray(wl.blocks, float).reshape(1, 1, -1))["latency_s"]
    loses = t >= dense_latency
    first = np.where(loses.any(axis=1), loses.argmax(axis=1), BREAK_EVEN_STEPS)
    return first / BREAK_EVEN_STEPS   # (L, Nb)


def estimate_one(wl: BlockWorkload, hw: Hardware, table: EnergyTable) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    geo = Geometry.from_layers(wl.layers)
    block = np.asarray(wl.blocks, float).reshape(1, 1, -1)
    dense = _costs(geo, hw, table, dense_work(geo), None)
    sparse_w = sparse_work(geo, block, wl.active_blocks.astype(float), wl.active_pixels.astype(float),
                           wl.total_blocks[:, None, :].astype(float))
    sparse = _costs(geo, hw, table, sparse_w, block)
    shape = wl.active_blocks.shape
    L, T, NB = shape
    grid = lambda a: np.broadcast_to(a, shape).reshape(-1)  # noqa: E731
    columns = {
        "hw": hw.name, "energy_table": table.name,
        "layer_id": grid(wl.layers["id"].to_numpy().reshape(-1, 1, 1)),
        "layer": grid(wl.layers["name"].to_numpy().reshape(-1, 1, 1)),
        "frame": grid(wl.frames.reshape(1, -1, 1)),
        "block": grid(block).astype(np.int64),
        "active_blocks": wl.active_blocks.reshape(-1), "total_blocks": grid(wl.total_blocks[:, None, :]),
        "density": wl.density.reshape(-1),
        "macs": grid(sparse_w.macs), "macs_dense": grid(geo.dense_macs),
    }
    columns["macs_skipped"] = columns["macs_dense"] - columns["macs"]
    for k in (*STEPS, "t_overhead", "latency_s"):
        columns[k] = grid(sparse[k])
    columns["latency_dense_s"] = grid(dense["latency_s"])
    for k in sparse:
        if k.startswith("e_") or k == "energy_pj":
            columns[k] = grid(sparse[k])
    columns["energy_dense_pj"] = grid(dense["energy_pj"])
    columns["bytes_backing"] = grid(sparse["bytes_backing"])
    columns["bytes_backing_dense"] = grid(dense["bytes_backing"])
    rows = pd.DataFrame(columns)

    agg = rows.groupby(["layer_id", "layer", "block"], sort=True).agg(
        density_mean=("density", "mean"), density_max=("density", "max"), macs=("macs", "sum"),
        macs_dense=("macs_dense", "sum"), latency_s=("latency_s", "sum"), latency_dense_s=("latency_dense_s", "sum"),
        latency_worst_s=("latency_s", "max"), energy_pj=("energy_pj", "sum"),
        energy_dense_pj=("energy_dense_pj", "sum")).reset_index()
    agg.insert(0, "hw", hw.name)
    agg.insert(1, "energy_table", table.name)
    agg["break_even_density"] = _break_even(geo, hw, wl, dense["latency_s"]).reshape(-1)
    agg["speedup"] = agg["latency_dense_s"] / agg["latency_s"]
    agg["energy_saving"] = 1 - agg["energy_pj"] / agg["energy_dense_pj"]

    summary = []
    for j, b in enumerate(wl.blocks):
        sel = rows[rows["block"] == b]
        per_frame = sel.groupby("frame")[["latency_s", "latency_dense_s"]].sum()
        mem = footprint(geo, hw, b, wl.active_blocks[:, :, j], wl.active_pixels[:, :, j], wl.total_blocks[:, j])
        summary.append({
            "hw": hw.name, "energy_table": table.name, "block": b, "frames": T,
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


def estimate(wl: BlockWorkload, hardware: Sequence[Hardware], tables: Sequence[EnergyTable]) -> Estimate:
    """The cost model for every (hardware, energy table) pair given, in order."""
    parts = [estimate_one(wl, hw, table) for hw, table in zip(hardware, tables)]
    rows, layers, summary = (pd.concat(p, ignore_index=True) for p in zip(*parts))
    return Estimate(rows=rows, layers=layers, summary=summary)
