"""Measured kernel timings and the cost model checked against them.

- `kernels`: dense conv, the gather-scatter steps and the fused strategy's block list (torch);
- `fused_triton`: the fused block-sparse conv kernel (Triton; CUDA, or the interpreter in tests);
- `strategies`: the registry of kernels measured (dense, gather-scatter, fused) and their steps;
- `timing`: warm-up, medians of many, rotating inputs, CUDA events on a GPU;
- `energy`: NVML's energy counter over a loop, idle power subtracted (static/dynamic split);
- `runner`: `sparsesim measure` (shapes x blocks x densities x kernels, one row per step);
- `plan`: `sparsesim measure --plan` (several runs from a YAML file, a time budget, a log);
- `tables` (names in the tables) and `validate`: predictions beside measurements (no torch).
`ConvShape`, `MeasureOptions` and `run_measure` are importable from here; they load torch on first use.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"ConvShape": "kernels", "MeasureOptions": "runner", "run_measure": "runner"}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:   # torch loads only when measuring, not when validating
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
