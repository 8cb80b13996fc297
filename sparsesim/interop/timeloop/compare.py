"""`sparsesim estimate --engine timeloop`: Timeloop's figures beside sparsesim's, per layer."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from ... import hardware, workload
from ...atomic import write_frame
from ...cost.run import EstimateResult, companion
from .export import export
from .run import find_mapper, run_layer


def compare_with_timeloop(result: EstimateResult, output: str | None) -> pd.DataFrame:
    mapper = find_mapper()  # a clear error before any work when Timeloop is missing
    est = result.estimate
    rows = []
    for hw_name in est.summary["hw"].unique():
        hw = hardware.load(hw_name)
        block = int(est.summary[est.summary["hw"] == hw_name].sort_values("latency_s")["block"].iloc[0])
        wl = workload.from_trace(result.trace, [block])
        with tempfile.TemporaryDirectory() as tmp:
            files = export(wl, hw, block, Path(tmp))
            for problem in (f for f in files if f.name.endswith(".problem.yaml")):
                layer = problem.name.removesuffix(".problem.yaml")
                stats = run_layer(mapper, Path(tmp), problem)
                mine = est.rows[(est.rows["hw"] == hw_name) & (est.rows["block"] == block) & (est.rows["layer"] == layer)]
                rows.append({"hw": hw_name, "layer": layer, "block": block,
                             "timeloop_cycles": stats.cycles, "timeloop_energy_pj": stats.energy_pj,
                             "sparsesim_cycles": float(mine["latency_s"].mean()) * hw.clock_hz,
                             "sparsesim_energy_pj": float(mine["energy_pj"].mean())})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if output:
        write_frame(companion(Path(output), "timeloop"), table)
    return table
