"""`sparsesim simulate`: workload (a trace, or shapes with synthetic masks) -> block maps -> cycle-level
simulator beside the analytical model, for each kernel strategy the hardware runs.

Per layer and frame: simulated and analytical latency and energy, the simulator's stalls by cause,
and the cause that explains most of the gap. Each layer's block maps are computed once and serve
every hardware, kernel and the analytical model alike (a region kernel runs its chain on the union
of the chain's maps). Kinds without a simulator (the CPU: its analytical model is measured instead)
are refused up front.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from .. import hardware
from ..cost.estimate import estimate_one, runs
from ..cost.run import check_kernels, output_tables, write_tables
from ..errors import require
from ..hardware import Hardware, kinds
from ..workload import block_map, from_block_maps
from ..workload.blocks import region_maps
from ..workload.regions import region_shape
from ..workload.source import Masks, Source
from ..workload.strategies import Kernel, get as strategy, parse_kernels
from ..workload.traffic import RegionShape
from .layer import simulate_maps, simulator_of

SCHEDULES = ("static", "dynamic")


@dataclass(frozen=True)
class SimulateOptions:
    trace: str | None
    hardware: Sequence[str]
    block: int
    layers: Sequence[str] | None = None
    frames: int | None = None
    output: str | None = None
    schedule: str | None = None        # spatial arrays: static | dynamic (None: the hardware's own)
    progress: bool = False
    kernels: Sequence[str] = ()        # as `estimate`
    mask_source: str = "residual"
    shapes: Sequence[str] = ()         # trace-free workloads, as `estimate`
    topology: str | None = None
    densities: Sequence[float] = (0.1,)
    mask: str = "square"
    seed: int = 0

    @property
    def source(self) -> Source:
        return Source(self.trace, tuple(self.shapes), self.topology, tuple(self.densities), self.mask, self.frames,
                      self.seed)

    def validate(self) -> None:
        self.source.validate()
        require(self.block >= 1, "block", f"must be >= 1, got {self.block}")
        require(self.schedule in (None, *SCHEDULES), "schedule",
                f"must be {' or '.join(SCHEDULES)}, got {self.schedule!r}")
        parse_kernels(self.kernels or (), self.mask_source)


@dataclass(frozen=True)
class SimulateResult:
    rows: pd.DataFrame        # hw x layer x frame
    layers: pd.DataFrame      # hw x layer: totals over frames, gap, main cause
    summary: pd.DataFrame     # hw: totals
    outputs: tuple[Path, ...]


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
    kernels = parse_kernels(options.kernels or (), options.mask_source)
    check_kernels(specs, kernels)
    parts = [_simulate_workload(m, specs, kernels, options) for m in options.source.layer_masks(options.layers)]
    rows = pd.concat(parts, ignore_index=True)
    layer_totals, summary = _totals(rows)
    return SimulateResult(rows, layer_totals, summary, write_tables(out, rows, layer_totals, summary))


def _row(shape: RegionShape, i: int) -> RegionShape:
    return RegionShape(*(np.asarray(a)[i: i + 1] for a in (shape.first, shape.last, shape.extra_h, shape.extra_w)))


def _simulate_workload(m: Masks, specs: list[Hardware], kernels: Sequence[Kernel],
                       options: SimulateOptions) -> pd.DataFrame:
    """Every hardware x kernel x layer of one workload, simulated and beside the analytical model."""
    maps = [block_map(stack, options.block) for stack in m.masks]   # once per layer
    fused = region_shape(m.layers, m.regions)
    union = region_maps(maps, m.regions)
    parts = []
    steps = [(hw, k, i) for hw in specs for k in runs(hw, kernels) for i in range(len(m.layers))]
    for hw, kernel, i in tqdm(steps, desc="simulate", unit="layer", disable=not options.progress):
        layer = m.layers.iloc[i]
        table = hardware.energy_table(hw.energy_table)
        schedule = options.schedule or kinds.of(hw).default_schedule
        regional = strategy(kernel.strategy).fuses_regions
        rows = simulate_maps(layer, union[i] if regional else maps[i], hw, table, options.block, schedule, kernel,
                             _row(fused, i) if regional else None)
        for j, (key, value) in enumerate((("workload", m.name), ("hw", hw.name), ("kernel", kernel.name),
                                          ("layer_id", int(layer["id"])), ("layer", layer["name"]),
                                          ("frame", m.frames[: len(rows)]), ("block", options.block))):
            rows.insert(j, key, value)
        parts.append(rows)
    rows = _carry_weights(pd.concat(parts, ignore_index=True), specs,
                          (int(m.layers["id"].min()), int(m.layers["id"].max())))
    return _with_analytical(rows, m, maps, specs, kernels, options.block)


def _carry_weights(rows: pd.DataFrame, specs: list[Hardware], ends: tuple[int, int]) -> pd.DataFrame:
    """Arrays that prefetch the next layer's weights (`array.weight_prefetch`) load them while the
    layer before computes: a layer's wait for its first weights shrinks by the window the previous
    layer leaves (its weight channel idle, room in its buffer), layer after layer and frame after
    frame (the workload's last layer precedes its first). `sim_prefetched_s` is the time hidden."""
    helpers = ["sim_weight_fill_s", "sim_weight_window_s", "sim_dense_weight_fill_s", "sim_dense_weight_window_s"]
    if "sim_weight_fill_s" not in rows:
        return rows
    rows = rows.copy()
    rows["sim_prefetched_s"] = 0.0
    for hw in specs:
        if not getattr(hw.part, "weight_prefetch", False):
            continue
        for _, sub in rows[rows["hw"] == hw.name].groupby("kernel", sort=False):
            _carry_one(rows, sub.sort_values(["frame", "layer_id"]), ends, hw.static_w)
    return rows.drop(columns=helpers)


def _carry_one(rows: pd.DataFrame, sub: pd.DataFrame, ends: tuple[int, int], static_w: float) -> None:
    """One hardware and kernel's layers in running order: hide what the previous window can (and
    the static energy of the time saved)."""
    ids, frames = sub["layer_id"].to_numpy(), sub["frame"].to_numpy()
    follows = np.zeros(len(sub), bool)
    follows[1:] = ((frames[1:] == frames[:-1]) & (ids[1:] == ids[:-1] + 1)) | \
                  ((frames[1:] == frames[:-1] + 1) & (ids[1:] == ends[0]) & (ids[:-1] == ends[1]))
    hidden = _hidden(sub["sim_weight_fill_s"].to_numpy(), sub["sim_weight_window_s"].to_numpy(), follows)
    dense = _hidden(sub["sim_dense_weight_fill_s"].to_numpy(), sub["sim_dense_weight_window_s"].to_numpy(), follows)
    first = sub.groupby("layer_id")["frame"].transform("min").to_numpy() == frames   # dense: one run a layer
    dense_by_layer = pd.Series(np.where(first, dense, 0.0), index=sub.index).groupby(sub["layer_id"]).transform("max")
    new = sub["sim_s"] - hidden
    rows.loc[sub.index, "sim_utilisation"] = sub["sim_utilisation"] * sub["sim_s"] / new.where(new > 0)
    rows.loc[sub.index, "sim_s"] = new
    rows.loc[sub.index, "stall_first_weights_s"] = sub["stall_first_weights_s"] - hidden
    rows.loc[sub.index, "sim_dense_s"] = sub["sim_dense_s"] - dense_by_layer
    rows.loc[sub.index, "sim_prefetched_s"] = hidden
    for column in ("sim_energy_pj", "sim_static_pj"):
        rows.loc[sub.index, column] = sub[column] - static_w * 1e12 * hidden


def _hidden(fill: np.ndarray, window: np.ndarray, follows: np.ndarray) -> np.ndarray:
    """The part of each layer's first-weights wait that the previous layer's window hides."""
    before = np.concatenate([[0.0], window[:-1]])
    return np.where(follows, np.minimum(fill, before), 0.0)


def _with_analytical(rows: pd.DataFrame, m: Masks, maps: list[np.ndarray], specs: list[Hardware],
                     kernels: Sequence[Kernel], block: int) -> pd.DataFrame:
    """The cost model's latency and energy for the same layers, frames, kernels and block, joined per row."""
    wl = from_block_maps(m.name, m.layers, maps, block, np.zeros((len(maps), maps[0].shape[0])), m.frames, m.regions)
    parts = []
    for hw in specs:
        for kernel in runs(hw, kernels):
            est, _, _ = estimate_one(wl, hw, hardware.energy_table(hw.energy_table), kernel)
            parts.append(est[["hw", "kernel", "layer_id", "frame", "latency_s", "latency_dense_s", "energy_pj",
                              "energy_dense_pj"]].rename(columns={"latency_s": "analytical_s",
                                                                 "latency_dense_s": "analytical_dense_s",
                                                                 "energy_pj": "analytical_energy_pj",
                                                                 "energy_dense_pj": "analytical_dense_energy_pj"}))
    merged = rows.merge(pd.concat(parts, ignore_index=True), on=["hw", "kernel", "layer_id", "frame"], how="left")
    merged["gap"] = merged["sim_s"] / merged["analytical_s"].where(merged["analytical_s"] > 0) - 1
    causes = [c for c in merged.columns if c.startswith("stall_")]
    merged[causes] = merged[causes].fillna(0.0)
    merged["main_cause"] = [_main_cause(r, causes) for _, r in merged[causes].iterrows()]
    return merged


def _totals(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    causes = [c for c in rows.columns if c.startswith("stall_")]
    sums = ["sim_s", "analytical_s", "sim_energy_pj", "analytical_energy_pj", *causes]
    keys = ["workload", "hw", "kernel", "block"]
    layers = rows.groupby([*keys[:3], "layer_id", "layer", "block"], sort=True).agg(
        {**{c: "sum" for c in sums}, "sim_dense_s": "first", "analytical_dense_s": "first",
         "frame": "count"}).reset_index().rename(columns={"frame": "frames"})
    layers["gap"] = layers["sim_s"] / layers["analytical_s"].where(layers["analytical_s"] > 0) - 1
    layers["main_cause"] = [_main_cause(r, causes) for _, r in layers[causes].iterrows()]
    summary = rows.groupby(keys, sort=True)[sums].sum().reset_index()
    frames = rows.groupby(keys)["frame"].nunique().to_numpy()
    dense = rows.groupby([*keys, "layer_id"])[["sim_dense_s", "analytical_dense_s"]].first() \
        .groupby(keys).sum().to_numpy()
    summary["sim_dense_s"] = dense[:, 0] * frames
    summary["analytical_dense_s"] = dense[:, 1] * frames
    summary["gap"] = summary["sim_s"] / summary["analytical_s"] - 1
    summary["sim_speedup"] = summary["sim_dense_s"] / summary["sim_s"]
    summary["analytical_speedup"] = summary["analytical_dense_s"] / summary["analytical_s"]
    summary["main_cause"] = [_main_cause(r, causes) for _, r in summary[causes].iterrows()]
    return layers, summary

