"""Typed hardware descriptions: memory levels, the stated tiling, and a per-kind part.

`Hardware` holds what every kind has (clock, data type, units, peak, memory hierarchy, tiling, energy
tables); what only one kind has (a GPU's launch cost, a CPU's sustained rate, an array's rows and
columns) lives in `part`, a dataclass of that kind (`sparsesim.hardware.kinds`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import SparsesimError

LEVEL_KINDS = ("dram", "l2", "buffer", "noc", "rf")
DATAFLOWS = ("implicit-gemm", "weight-stationary", "output-stationary", "input-stationary", "row-stationary")
DTYPE_BITS = {"fp32": 32, "tf32": 32, "fp16": 16, "bf16": 16, "int16": 16, "int8": 8}


class HardwareError(SparsesimError):
    """A hardware or energy-table file that is missing or malformed."""


@dataclass(frozen=True)
class MemoryLevel:
    name: str
    kind: str                  # dram | l2 | buffer | noc | rf
    size_bytes: float          # whole chip
    bandwidth: float           # bytes/s, whole chip (the spec sheet's peak)
    shared: bool = True        # False: per-unit storage (SM shared memory, PE scratchpads)
    sustained: float = 0.0     # bytes/s a streaming kernel reaches (a measured copy); 0: the peak

    @property
    def rate(self) -> float:
        """Bytes/s the cost model times traffic at: the sustained rate where one is known."""
        return self.sustained or self.bandwidth


@dataclass(frozen=True)
class Tiling:
    dataflow: str
    tile_m: int                # output pixels per buffer-resident tile; 0 = all (weights read once)
    tile_n: int                # output channels per buffer-resident tile (inputs re-read per N tile)
    reuse_m: int               # inner reuse of a weight across pixels; 0 = unbounded
    reuse_n: int               # inner reuse of an input across output channels
    tile_k: int = 0            # reduction length per pass below the buffer (partial sums spill per pass);
                               # 0 = the whole reduction, or what the kind's array holds (its rows)
    bypass: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (level kind, data types that skip it)

    def bypasses(self, level_kind: str, data_type: str) -> bool:
        return data_type in dict(self.bypass).get(level_kind, ())


@dataclass(frozen=True)
class Hardware:
    name: str
    kind: str                         # a registered kind's name (sparsesim.hardware.kinds)
    description: str
    clock_hz: float
    dtype: str
    units: int
    peak_flops: dict[str, float]      # per data type, FLOP/s
    levels: tuple[MemoryLevel, ...]   # outermost first
    tiling: Tiling
    energy_table: str
    energy_tables: tuple[str, ...]
    path: str
    part: Any = None                  # the kind's own fields (GpuPart, CpuPart, ArrayPart, ...)
    static_w: float = 0.0             # power drawn whatever runs (idle board power, leakage), W

    def __getattr__(self, name: str) -> Any:
        """A kind's own field read through the hardware (`hw.rows` on an array), never on another kind."""
        if name.startswith("__") or name == "part":
            raise AttributeError(name)
        try:
            return getattr(self.part, name)
        except AttributeError:
            raise AttributeError(f"{self.kind} hardware {self.name!r} has no field {name!r}") from None

    @property
    def word_bytes(self) -> int:
        return DTYPE_BITS[self.dtype] // 8

    @property
    def peak_macs_per_s(self) -> float:
        return self.peak_flops[self.dtype] / 2

    def level(self, level_kind: str) -> MemoryLevel | None:
        """The outermost level of a kind (dram, l2, buffer, noc, rf), or None."""
        return {lv.kind: lv for lv in reversed(self.levels)}.get(level_kind)
