"""The cost model over traces x hardware x energy tables (x kernels), each combination a task, gathered in order.

No model runs here: a sweep imports neither torch nor PyAV (Ray only when it runs on workers)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from .. import hardware, trace, workload
from ..atomic import write_frame
from ..cost import estimate
from ..cost.run import output_tables
from ..cost.run import check_kernels
from ..errors import require
from ..workload.strategies import Kernel, parse_kernels
from .cluster import map_tasks


def _estimate_task(trace_path: str, hw_name: str, table_name: str | None, blocks: tuple[int, ...],
                   kernels: tuple[Kernel, ...] = ()) -> pd.DataFrame:
    hw = hardware.load(hw_name)
    table = hardware.energy_table(table_name or hw.energy_table)
    wl = workload.from_trace(trace.open(trace_path), blocks)
    rows = estimate(wl, [hw], [table], kernels or None).rows
    rows.insert(0, "trace", Path(trace_path).name)
    return rows


def sweep(traces: Sequence[str], hw_names: Sequence[str], blocks: Sequence[int],
          energy_tables: Sequence[str] | None = None, thresholds: Sequence[float] | None = None,
          workers: int = 1, address: str | None = None, progress: bool = True,
          kernels: Sequence[Kernel] = ()) -> pd.DataFrame:
    """The cost model over trace x hardware x energy table (blocks and kernels vectorised inside each task)."""
    chosen = [t for t in traces if thresholds is None or
              trace.open(t).meta["gate"].get("threshold") in set(thresholds)]
    require(bool(chosen), "thresholds", "no trace matches {thresholds}")
    specs = [hardware.load(name) for name in hw_names]   # fail early and clearly on a bad name, not in a worker
    check_kernels(specs, kernels)
    tasks = [(t, hw, tab, tuple(blocks), tuple(kernels)) for t in chosen for hw in hw_names
             for tab in (energy_tables or [None])]
    results = map_tasks(_estimate_task, tasks, workers, address, progress)
    return pd.concat(results, ignore_index=True)




@dataclass(frozen=True)
class SweepOptions:
    traces: Sequence[str]
    hardware: Sequence[str]
    blocks: Sequence[int]
    output: str
    energy_tables: Sequence[str] | None = None
    thresholds: Sequence[float] | None = None
    workers: int = 1
    address: str | None = None
    progress: bool = True
    kernels: Sequence[str] = ()
    mask_source: str = "residual"

    def validate(self) -> None:
        require(bool(self.hardware), "hardware", "names no hardware")
        require(bool(self.blocks) and min(self.blocks) >= 1, "blocks", f"must be integers >= 1, got {list(self.blocks)}")
        require(self.workers >= 1, "workers", f"must be >= 1, got {self.workers}")
        parse_kernels(self.kernels, self.mask_source)


def run_sweep(options: SweepOptions) -> tuple[pd.DataFrame, Path]:
    """`sparsesim sweep`: the rows of every combination, written to one table."""
    options.validate()
    out = output_tables(options.output)
    rows = sweep(options.traces, options.hardware, options.blocks, options.energy_tables, options.thresholds,
                 options.workers, options.address, options.progress, parse_kernels(options.kernels, options.mask_source))
    write_frame(out, rows)
    return rows, out
