"""Timeloop/Accelergy/Sparseloop interop: read their results, import their architectures and energy
tables, export sparsesim's workloads in their formats."""
from .stats import LevelStats, TimeloopStats, parse_stats

__all__ = ["LevelStats", "TimeloopStats", "parse_stats"]
