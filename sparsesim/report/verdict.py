"""The block-size verdict for kernel authors: per layer and hardware, which block to skip with, or why
to run dense (`sparsesim blocks`). Reads the cost model's tables; decides nothing the model did not say."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..atomic import write_frame
from ..cost import Estimate
from ..cost.estimate import KEYS
from ..cost.run import EstimateOptions, output_tables, run_estimate
from ..measure.tables import DENSE, normalise

MODEL = "(whole model)"


def _verdict(speedup: float, kernel: str, block: int, density: float, break_even: float, worst: float) -> str:
    if speedup > 1:
        tail = f"; worst frame {worst:.2f}x" if worst < 1 else ""
        return f"skip with B={block}, {kernel} ({speedup:.2f}x{tail})"
    if break_even <= 0:
        return f"run dense: the skipping overheads cost more than the dense layer even with nothing active ({kernel})"
    return f"run dense: density {density:.2f} is above break-even {break_even:.2f} (B={block}, {kernel})"


def _frame_speedups(rows: pd.DataFrame) -> pd.DataFrame:
    """Per configuration, layer, block: the best and worst frame's speed-up."""
    ratio = rows.assign(s=rows["latency_dense_s"] / rows["latency_s"])
    return ratio.groupby([*KEYS, "layer", "block"])["s"].agg(best_frame="max", worst_frame="min")


def block_verdicts(est: Estimate) -> pd.DataFrame:
    """One row per workload x hardware (and energy table) x layer, the best kernel and block chosen, plus a
    whole-model row per hardware."""
    layers = est.layers.join(_frame_speedups(est.rows), on=[*KEYS, "layer", "block"])
    keys = [k for k in KEYS if k != "kernel"] + ["layer_id", "layer"]
    fast = layers.loc[layers.groupby(keys, sort=False)["latency_s"].idxmin()].set_index(keys)
    frugal = layers.loc[layers.groupby(keys, sort=False)["energy_pj"].idxmin()].set_index(keys)
    out = pd.DataFrame({
        "best_kernel": fast["kernel"], "best_block_time": fast["block"],
        "best_kernel_energy": frugal["kernel"], "best_block_energy": frugal["block"],
        "density": fast["density_mean"], "speedup": fast["speedup"],
        "speedup_best_frame": fast["best_frame"], "speedup_worst_frame": fast["worst_frame"],
        "break_even_density": fast["break_even_density"], "energy_saving": fast["energy_saving"],
        "energy_saving_best": frugal["energy_saving"],
    }).reset_index()
    out["verdict"] = [_verdict(r.speedup, r.best_kernel, r.best_block_time, r.density, r.break_even_density,
                               r.speedup_worst_frame) for r in out.itertuples()]
    return pd.concat([out, _model_rows(est)], ignore_index=True)


def _model_rows(est: Estimate) -> pd.DataFrame:
    s = est.summary
    rows = []
    for (workload, hw, table), group in s.groupby(["workload", "hw", "energy_table"], sort=False):
        fast, frugal = group.loc[group["latency_s"].idxmin()], group.loc[group["energy_pj"].idxmin()]
        at = est.layers[(est.layers["workload"] == workload) & (est.layers["hw"] == hw) &
                        (est.layers["kernel"] == fast["kernel"]) & (est.layers["block"] == fast["block"])]
        rows.append({"workload": workload, "hw": hw, "energy_table": table, "layer_id": -1, "layer": MODEL,
                     "best_kernel": fast["kernel"], "best_block_time": int(fast["block"]),
                     "best_kernel_energy": frugal["kernel"], "best_block_energy": int(frugal["block"]),
                     "density": float(at["density_mean"].mean()),
                     "speedup": fast["speedup"], "speedup_best_frame": fast["speedup_best_frame"],
                     "speedup_worst_frame": fast["speedup_worst_frame"],
                     "break_even_density": fast["break_even_density"],
                     "energy_saving": fast["energy_saving"], "energy_saving_best": frugal["energy_saving"],
                     "mem_overhead": fast["mem_overhead"]})
    for r in rows:
        best = f"B={r['best_block_time']}, {r['best_kernel']}"
        r["verdict"] = (f"skip with {best} ({r['speedup']:.2f}x, memory {r['mem_overhead']:+.0%})"
                        if r["speedup"] > 1 else f"run dense: {r['speedup']:.2f}x at the best kernel and block, {best}")
    return pd.DataFrame(rows)


def attach_measured(verdicts: pd.DataFrame, measurements: pd.DataFrame, hw: str) -> pd.DataFrame:
    """Measured speed-up beside the predicted one: for rows of hardware `hw`, the measured dense time
    over the measured block-sparse total, on the trace's own mask of that layer at the predicted best
    block (rows `sparsesim measure --trace` recorded with source 'trace')."""
    measurements = normalise(measurements)
    totals = measurements[(measurements["source"] == "trace") & (measurements["step"] == "total")]
    table = totals.pivot_table(index=["layer", "block"], columns="kernel", values="median_s")
    if DENSE not in table.columns or len(table.columns) < 2:
        return verdicts.assign(measured_speedup=np.nan)
    # dense over each measured kernel (gather-scatter, fused): comparable where that kernel is the best
    speedup = (1 / table.drop(columns=DENSE)).mul(table[DENSE], axis=0).stack().rename("measured_speedup")
    keyed = verdicts.join(speedup, on=["layer", "best_block_time", "best_kernel"])
    keyed.loc[keyed["hw"] != hw, "measured_speedup"] = np.nan
    return keyed


@dataclass(frozen=True)
class BlocksOptions:
    estimate: EstimateOptions
    measurements: Sequence[str] = ()     # `sparsesim measure` tables to put beside the predictions
    measured_hw: str | None = None       # the hardware they were taken on
    output: str | None = None            # the verdicts as a table (.csv or .parquet)


@dataclass(frozen=True)
class BlocksResult:
    verdicts: pd.DataFrame
    trace: str
    outputs: tuple[Path, ...]


def run_blocks(options: BlocksOptions) -> BlocksResult:
    """`sparsesim blocks`: estimate the trace, decide per layer, attach measured speed-ups, write."""
    out = output_tables(options.output)
    result = run_estimate(options.estimate)
    verdicts = block_verdicts(result.estimate)
    if options.measurements:
        from ..measure.validate import load_all
        measured = load_all(list(options.measurements), options.measured_hw)
        verdicts = attach_measured(verdicts, measured, options.measured_hw)
    if out is not None:
        write_frame(out, verdicts)
    return BlocksResult(verdicts, result.name, (out,) if out is not None else ())
