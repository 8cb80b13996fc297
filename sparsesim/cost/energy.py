"""The cost model's energy: its access counts, priced by the one pricer (`sparsesim.hardware.price`).

Backing-level traffic is charged at the backing level; a buffer inside it is charged again for the
fills and drains, plus its operand reads; the interconnect and register file for their operands.
"""
from __future__ import annotations

import numpy as np

from ..hardware import Access, EnergyTable, Hardware, price
from ..workload import DATA_TYPES, Geometry, Traffic, Work, inner_accesses, traffic

ENERGY_TYPES = (*DATA_TYPES, "metadata")
FILLED_LEVELS = ("buffer",)   # levels every element moved further out passes through once


def accesses(geo: Geometry, hw: Hardware, w: Work, moved: Traffic) -> list[Access]:
    """Every access the cost model counts, level by level (outermost first)."""
    bits = 8 * hw.word_bytes
    inner = inner_accesses(geo, hw, w)
    out = []
    for i, lv in enumerate(hw.levels):
        at_backing = moved.backing == i
        out += [Access(i, dtype, elems * bits, at_backing) for dtype, elems in moved.layer.items()]
        out.append(Access(i, "metadata", moved.metadata * 8, at_backing))
        if lv.kind in FILLED_LEVELS:   # fills and drains of a layer backed further out
            out += [Access(i, dtype, elems * bits, moved.backing < i) for dtype, elems in moved.layer.items()]
        out += [Access(i, dtype, elems * bits) for dtype, elems in inner.get(lv.kind, {}).items()]
        if lv.kind in FILLED_LEVELS:   # a region's intermediate tiles kept in the buffer: written and read there
            out += [Access(i, dtype, elems * bits) for dtype, elems in moved.on_chip.items()]
    return out


def energy(geo: Geometry, hw: Hardware, table: EnergyTable, w: Work,
           scales: dict[tuple[str, str], float] | None = None, moved: Traffic | None = None,
           seconds: np.ndarray | float = 0.0) -> dict[str, np.ndarray]:
    """Energy in pJ by level kind (e_<kind>), by data type (e_type_<type>), for MACs (e_mac) and static
    power over `seconds` (e_static).

    `scales` multiplies the accesses of (level kind, data type) pairs, and ("mac", "compute") the MACs:
    element-wise sparsity (sparsesim.cost.elementwise) gates or compresses some of them."""
    moved = moved or traffic(geo, hw, w)
    return price(hw, table, accesses(geo, hw, w, moved), w.macs, ENERGY_TYPES, scales, seconds)
