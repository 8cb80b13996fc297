"""Measured kernel timings and the cost model checked against them.

- `kernels`: dense conv vs the block-sparse reduce -> gather -> conv -> scatter steps (torch);
- `timing`: warm-up, medians of many, rotating inputs, CUDA events on a GPU;
- `runner`: `sparsesim measure` (shapes x blocks x densities, one row per step);
- `validate`: predictions beside measurements, errors on held-out shapes (no torch).
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
