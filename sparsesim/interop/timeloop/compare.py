"""`sparsesim estimate --engine timeloop`: Timeloop's figures beside sparsesim's, per layer."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from ... import hardware, workload
from ...atomic import write_frame
from ...cost.run import EstimateResult, companion
from ...cost.mapper import best_mapping
from ...cost.mapspace import Problem
from ...errors import SparsesimError
from .export import export, read_problem
from .run import find_mapper, run_layer


def _mapped(hw, problem: Path) -> dict:
    """sparsesim's own mapper on the dense layer, where the hardware states mapping constraints: the
    figures to hold against timeloop-mapper's (the estimate's come from the YAML's fixed tiling)."""
    if getattr(hw.part, "loop_arch", None) is None:
        return {}
    instance, _ = read_problem(problem)
    try:
        m = best_mapping(hw, Problem(**instance))
    except SparsesimError:
        return {}
    return {"sparsesim_mapper_cycles": m.cycles, "sparsesim_mapper_energy_pj": m.energy_pj}


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
                             "sparsesim_energy_pj": float(mine["energy_pj"].mean()), **_mapped(hw, problem)})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if output:
        write_frame(companion(Path(output), "timeloop"), table)
    return table
