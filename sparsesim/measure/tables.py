"""Names in `sparsesim measure` tables, readable without torch (validation and reports import this).

Kernels are named as the cost model names its strategies: `dense`, `gather-scatter` (SBNet's reduce ->
gather -> conv -> scatter) and `fused` (one Triton kernel over the block list). Tables written before the
strategies had names call gather-scatter `sparse`; `normalise` renames it, so old tables stay readable.
"""
from __future__ import annotations

import pandas as pd

DENSE, GATHER_SCATTER, FUSED = "dense", "gather-scatter", "fused"
KERNELS = (DENSE, GATHER_SCATTER, FUSED)
LEGACY = {"sparse": GATHER_SCATTER}
# Energy columns (GPU runs with --energy; NaN elsewhere): per call of the whole layer, over a timed loop.
ENERGY_COLUMNS = ("energy_j", "static_j", "dynamic_j", "power_w", "idle_w", "energy_loop_s", "energy_calls")


def normalise(m: pd.DataFrame) -> pd.DataFrame:
    """The table with legacy kernel names replaced by the strategy names."""
    if "kernel" not in m.columns or not m["kernel"].isin(list(LEGACY)).any():
        return m
    return m.assign(kernel=m["kernel"].replace(LEGACY))
