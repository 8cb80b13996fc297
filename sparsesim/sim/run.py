"""`sparsesim simulate TRACE`: trace -> block maps -> cycle-level simulator beside the analytical model.

Per layer and frame: simulated and analytical latency and energy, the simulator's stalls by cause,
and the cause that explains most of the gap. Each layer's block maps are computed once and serve
every hardware and the analytical model alike. Kinds without a simulator (the CPU: its analytical
model is measured instead) are refused up front.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from .. import hardware, trace
from ..cost.estimate import estimate_one
from ..cost.run import output_tables, write_tables
from ..errors import SparsesimError, require
from ..hardware import Hardware, kinds
from ..workload import block_map, from_block_maps, kept_channels
from .layer import simulate_maps, simulator_of

SCHEDULES = ("static", "dynamic")


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

    def validate(self) -> None:
        require(self.block >= 1, "block", f"must be >= 1, got {self.block}")
        require(self.frames is None or self.frames >= 1, "frames", f"must be >= 1, got {self.frames}")
        require(self.schedule in (None, *SCHEDULES), "schedule",
                f"must be {' or '.join(SCHEDULES)}, got {self.schedule!r}")


@dataclass(frozen=True)
class SimulateResult:
    rows: pd.DataFrame        # hw x layer x frame
    layers: pd.DataFrame      # hw x layer: totals over frames, gap, main cause
    summary: pd.DataFrame     # hw: totals
    outputs: tuple[Path, ...]


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
    options.validate()
    out = output_tables(options.output)
    specs = [hardware.load(name) for name in options.hardware]
    for hw in specs:
        simulator_of(hw)      # a kind without a simulator fails here, before any work
    tr = trace.open(options.trace)
    layers = _select_layers(kept_channels(tr.layers_df.sort_values("id").reset_index(drop=True), tr.channels),
                            options.layers)
    masks = _trace_masks(tr, layers, options.frames)
    maps = {i: block_map(m, options.block) for i, m in masks.items()}   # once per layer
    frames = np.arange(next(iter(masks.values())).shape[0])
    parts = []
    steps = [(hw, layer) for hw in specs for _, layer in layers.iterrows()]
    for hw, layer in tqdm(steps, desc="simulate", unit="layer", disable=not options.progress):
        table = hardware.energy_table(hw.energy_table)
        schedule = options.schedule or kinds.of(hw).default_schedule
        rows = simulate_maps(layer, maps[layer["id"]], hw, table, options.block, schedule)
        rows.insert(0, "hw", hw.name)
        rows.insert(1, "layer_id", int(layer["id"]))
        rows.insert(2, "layer", layer["name"])
        rows.insert(3, "frame", frames[: len(rows)])
        rows.insert(4, "block", options.block)
        parts.append(rows)
    rows = pd.concat(parts, ignore_index=True)
    rows = _with_analytical(rows, layers, maps, specs, options.block)
    layer_totals, summary = _totals(rows)
    return SimulateResult(rows, layer_totals, summary, write_tables(out, rows, layer_totals, summary))


def _with_analytical(rows: pd.DataFrame, layers: pd.DataFrame, maps: dict[int, np.ndarray],
                     specs: list[Hardware], block: int) -> pd.DataFrame:
    """The cost model's latency and energy for the same layers, frames and block, joined per row."""
    stacks = [maps[i] for i in layers["id"]]
    wl = from_block_maps("sim", layers, stacks, block, np.zeros((len(stacks), stacks[0].shape[0])))
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

