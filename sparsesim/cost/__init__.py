"""The analytical cost model: energy by memory level, Eyexam-style latency bounds, memory footprint.

`estimate(workload, hardware, tables)` returns an `Estimate` of three pandas tables. Modules:
geometry (layer shapes), traffic (data movement and energy), latency (bounds per hardware kind),
memory (footprint), estimate (the tables).
"""
from .estimate import Estimate, estimate

__all__ = ["Estimate", "estimate"]
