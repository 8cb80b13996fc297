"""The analytical cost model: energy by memory level, Eyexam-style latency bounds, memory footprint.

`estimate(workload, hardware, tables)` returns an `Estimate` of three pandas tables; `run_estimate`
is the `sparsesim estimate` stage (trace in, tables on disk). Modules: latency (the steps, each
kind's own down to occupancy), energy (the cost model's accesses, priced by the one pricer), memory
(footprint), elementwise (Sparseloop-style data-space sparsity), estimate (the tables), run (the stage).
"""
from .estimate import Estimate, estimate
from .run import EstimateOptions, EstimateResult, run_estimate

__all__ = ["Estimate", "EstimateOptions", "EstimateResult", "estimate", "run_estimate"]
