"""Energy tables and the one energy pricer both the cost model and the simulators use.

A table gives pJ per bit for each memory kind (optionally split by data type) and pJ per MAC. The
pricer turns access counts, each tagged with the level it happens at and the data type it moves,
into energy by level kind (`e_<kind>`), by data type (`e_type_<type>`) and for MACs (`e_mac`),
honouring the tiling's bypass directives (a data type a level does not hold costs nothing there).
Those are dynamic energies (Sze's per-access figures); given the run's seconds, the hardware's static
power (idle board power, leakage) adds `e_static` = static_w x seconds: a run slower than dense pays it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from .spec import LEVEL_KINDS, HardwareError

if TYPE_CHECKING:
    from .spec import Hardware


@dataclass(frozen=True)
class EnergyTable:
    name: str
    description: str
    mac_pj: dict[str, float]
    access_pj_per_bit: dict[str, float | dict[str, float]]   # kind -> pJ/bit, or data type -> pJ/bit

    def per_bit(self, kind: str, data_type: str) -> float:
        """Energy per bit of an access at a memory kind, for one data type where the table splits them."""
        value = self.access_pj_per_bit[kind]
        return value.get(data_type, sum(value.values()) / len(value)) if isinstance(value, dict) else value

    def mean_per_bit(self, kind: str) -> float:
        value = self.access_pj_per_bit[kind]
        return sum(value.values()) / len(value) if isinstance(value, dict) else value

    def mac(self, dtype: str) -> float:
        if dtype not in self.mac_pj:
            raise HardwareError(f"energy table {self.name} has no MAC energy for {dtype} "
                                f"(it has: {', '.join(self.mac_pj)})")
        return self.mac_pj[dtype]


@dataclass(frozen=True)
class Access:
    """`bits` moved at level `level` (an index into `hw.levels`) for one data type, counted only
    where `where` holds (the layers whose tensors live at that level, say)."""
    level: int
    data_type: str
    bits: np.ndarray | float
    where: np.ndarray | bool = True


def price(hw: "Hardware", table: EnergyTable, accesses: Iterable[Access], macs: np.ndarray,
          data_types: Sequence[str], scales: dict[tuple[str, str], float] | None = None,
          seconds: np.ndarray | float = 0.0) -> dict[str, np.ndarray]:
    """Energy in pJ of `accesses` and `macs` on `hw` with `table`, plus static power over `seconds`.
    `scales` multiplies the accesses of (level kind, data type) pairs and ("mac", "compute") the MACs
    (element-wise sparsity gates some)."""
    scales = scales or {}
    zero = np.zeros_like(macs, dtype=np.float64)
    out = {f"e_{k}": zero.copy() for k in LEVEL_KINDS}
    out.update({f"e_type_{k}": zero.copy() for k in data_types})
    for a in accesses:
        level_kind = hw.levels[a.level].kind
        if hw.tiling.bypasses(level_kind, a.data_type):
            continue   # the stated mapping sends this data type past the level
        scale = scales.get((level_kind, a.data_type), 1.0)
        pj = np.where(a.where, scale * a.bits * table.per_bit(level_kind, a.data_type), 0.0)
        out[f"e_{level_kind}"] += pj
        out[f"e_type_{a.data_type}"] += pj
    out["e_mac"] = macs * table.mac(hw.dtype) * scales.get(("mac", "compute"), 1.0)
    out["e_static"] = hw.static_w * 1e12 * (np.asarray(seconds) + zero)
    out["e_type_static"] = out["e_static"]   # its own category in the data-type breakdown too, so both sum up
    out["energy_pj"] = out["e_mac"] + out["e_static"] + sum(out[f"e_{k}"] for k in LEVEL_KINDS)
    return out
