"""Typed hardware descriptions loaded from `accel_models/*.yaml` (schema: accel_models/README.md)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import SparsesimError

KINDS = ("gpu", "cpu", "systolic", "spatial")
LEVEL_KINDS = ("dram", "l2", "buffer", "noc", "rf")
DATAFLOWS = ("implicit-gemm", "weight-stationary", "row-stationary")
DTYPE_BITS = {"fp32": 32, "tf32": 32, "fp16": 16, "bf16": 16, "int16": 16, "int8": 8}


class HardwareError(SparsesimError):
    """A hardware or energy-table file that is missing or malformed."""


def models_dir() -> Path:
    """`$SPARSESIM_ACCEL_MODELS`, else the repository's accel_models/."""
    return Path(os.environ.get("SPARSESIM_ACCEL_MODELS", Path(__file__).resolve().parent.parent / "accel_models"))


@dataclass(frozen=True)
class MemoryLevel:
    name: str
    kind: str                  # dram | l2 | buffer | noc | rf
    size_bytes: float          # whole chip
    bandwidth: float           # bytes/s, whole chip
    shared: bool = True        # False: per-unit storage (SM shared memory, PE scratchpads)


@dataclass(frozen=True)
class Tiling:
    dataflow: str
    tile_m: int                # output pixels per buffer-resident tile; 0 = all (weights read once)
    tile_n: int                # output channels per buffer-resident tile (inputs re-read per N tile)
    reuse_m: int               # inner reuse of a weight across pixels; 0 = unbounded
    reuse_n: int               # inner reuse of an input across output channels
    tile_k: int = 0            # reduction length per pass below the buffer (partial sums spill per pass);
                               # 0 = the whole reduction, or the array rows for weight-stationary arrays
    bypass: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (level kind, data types that skip it)

    def bypasses(self, kind: str, data_type: str) -> bool:
        return any(k == kind and data_type in types for k, types in self.bypass)


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
class Hardware:
    name: str
    kind: str
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
    launch_s: float = 0.0             # gpu: per kernel launch; cpu: per operator dispatch
    max_blocks_per_sm: int = 0
    tiles_per_sm: int = 1
    sustained_flops: float = 0.0      # cpu: measured realistic roof
    rows: int = 0                     # arrays
    cols: int = 0
    gather_bandwidth: float = 0.0     # bytes/s of the gather/scatter kernels' indexed accesses (0: as streaming)
    rf_read_words: tuple[tuple[str, float], ...] = ()  # per PE and data type, words/cycle (imported arrays)

    @property
    def word_bytes(self) -> int:
        return DTYPE_BITS[self.dtype] // 8

    @property
    def peak_macs_per_s(self) -> float:
        return self.peak_flops[self.dtype] / 2

    def level(self, kind: str) -> MemoryLevel | None:
        return next((lv for lv in self.levels if lv.kind == kind), None)


class _Reader:
    """Typed access to a parsed YAML mapping; every error names the file and the key."""

    def __init__(self, path: Path, data: Any, prefix: str = "") -> None:
        self.path, self.data, self.prefix = path, data, prefix
        if not isinstance(data, dict):
            self.fail(prefix.rstrip(".") or "(top level)", "a mapping", data)

    def fail(self, key: str, expected: str, got: Any) -> None:
        raise HardwareError(f"{self.path}: key '{key}': expected {expected}, got {got!r}")

    def get(self, key: str, kind: type | tuple, default: Any = ..., positive: bool = False) -> Any:
        full = self.prefix + key
        if key not in self.data:
            if default is ...:
                self.fail(full, f"a {getattr(kind, '__name__', kind)} (missing)", None)
            return default
        value = self.data[key]
        accepted = (int, float) if kind is float else kind
        if kind is not bool and isinstance(value, bool) or not isinstance(value, accepted):
            self.fail(full, f"a {getattr(kind, '__name__', 'value')}", value)
        if positive and not value > 0:
            self.fail(full, "a positive number", value)
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            self.fail(self.prefix + key, f"one of {', '.join(choices)}", value)
        return value

    def sub(self, key: str, default: Any = ...) -> "_Reader":
        value = self.get(key, dict, default)
        return _Reader(self.path, value, f"{self.prefix}{key}.")

    def numbers(self, key: str) -> dict[str, float]:
        sub = self.sub(key)
        return {k: float(sub.get(k, float)) for k in sub.data}


def _parse(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise HardwareError(f"hardware file not found: {path}") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise HardwareError(f"{path}:{line} is not valid YAML ({getattr(e, 'problem', e)})") from None


def _level(path: Path, data: Any, index: int, units: int) -> MemoryLevel:
    """One memory level; per_unit sizes and bandwidths are multiplied by the unit count."""
    r = _Reader(path, data, f"memory[{index}].")
    per_unit = r.get("per_unit", bool, False)
    scale = units if per_unit else 1
    return MemoryLevel(name=r.get("name", str), kind=r.choice("kind", LEVEL_KINDS),
                       size_bytes=r.get("size_kib", float) * 1024.0 * scale,
                       bandwidth=r.get("bandwidth_gbps", float, positive=True) * 1e9 * scale,
                       shared=not per_unit)


def _tiling(r: "_Reader") -> Tiling:
    t = r.sub("tiling")
    bypass = t.sub("bypass", {})
    pairs = []
    for kind, types in bypass.data.items():
        if kind not in LEVEL_KINDS or not isinstance(types, list) or not set(types) <= {"weights", "inputs", "outputs"}:
            t.fail(f"bypass.{kind}", "a level kind mapped to a list of weights/inputs/outputs", types)
        pairs.append((kind, tuple(types)))
    return Tiling(dataflow=t.choice("dataflow", DATAFLOWS), tile_m=t.get("tile_m", int),
                  tile_n=t.get("tile_n", int, positive=True), reuse_m=t.get("reuse_m", int),
                  reuse_n=t.get("reuse_n", int, positive=True), tile_k=t.get("tile_k", int, 0), bypass=tuple(pairs))


_IMPORTED_TABLES: dict[str, EnergyTable] = {}  # energy tables that came with an imported hardware


def _parse_timeloop(path: Path, r: "_Reader") -> Hardware:
    from .timeloop.arch import import_timeloop
    r.sub("timeloop")
    hw, table = import_timeloop(path, r.data, _tiling(r), r.get("clock_ghz", float, positive=True) * 1e9,
                                r.get("dram_bandwidth_gbps", float, positive=True) * 1e9)
    _IMPORTED_TABLES[table.name] = table
    return hw


def parse_hardware(path: Path) -> Hardware:
    r = _Reader(path, _parse(path))
    if "timeloop" in r.data:
        return _parse_timeloop(path, r)
    kind = r.choice("kind", KINDS)
    dtype = r.choice("dtype", tuple(DTYPE_BITS))
    units = r.get("units", int, positive=True)
    peak = {k: v * 1e12 for k, v in r.numbers("peak_tflops").items()}
    if dtype not in peak:
        r.fail("peak_tflops", f"an entry for the dtype {dtype}", sorted(peak))
    memory = r.get("memory", list)
    if not memory:
        r.fail("memory", "a non-empty list of levels", memory)
    levels = [_level(path, item, i, units) for i, item in enumerate(memory)]
    if levels[0].kind != "dram":
        r.fail("memory[0].kind", "dram (the outermost level comes first)", levels[0].kind)
    tiling = _tiling(r)
    extra: dict[str, Any] = {}
    if kind == "gpu":
        g = r.sub("gpu")
        extra = dict(launch_s=g.get("launch_us", float, positive=True) * 1e-6,
                     max_blocks_per_sm=g.get("max_blocks_per_sm", int, positive=True),
                     tiles_per_sm=g.get("tiles_per_sm", int, positive=True),
                     gather_bandwidth=g.get("gather_gbps", float, 0.0) * 1e9)
    elif kind == "cpu":
        c = r.sub("cpu")
        extra = dict(sustained_flops=c.get("sustained_tflops", float, positive=True) * 1e12,
                     launch_s=c.get("op_overhead_us", float, positive=True) * 1e-6,
                     gather_bandwidth=c.get("gather_gbps", float, 0.0) * 1e9)
    else:
        a = r.sub("array")
        extra = dict(rows=a.get("rows", int, positive=True), cols=a.get("cols", int, positive=True))
    return Hardware(
        name=r.get("name", str, path.stem), kind=kind, description=r.get("description", str, ""),
        clock_hz=r.get("clock_ghz", float, positive=True) * 1e9, dtype=dtype, units=units,
        peak_flops=peak, levels=tuple(levels), tiling=tiling,
        energy_table=r.get("energy_table", str), energy_tables=tuple(r.get("energy_tables", list, [])),
        path=str(path), **extra)


def parse_energy_table(path: Path) -> EnergyTable:
    r = _Reader(path, _parse(path))
    access = r.numbers("access_pj_per_bit")
    missing = [k for k in LEVEL_KINDS if k not in access]
    if missing:
        r.fail("access_pj_per_bit", f"an entry for each of {', '.join(LEVEL_KINDS)}", sorted(access))
    return EnergyTable(name=r.get("name", str, path.stem), description=r.get("description", str, ""),
                       mac_pj=r.numbers("mac_pj"), access_pj_per_bit=access)


def _resolve(name: str, folder: Path, what: str) -> Path:
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        return candidate
    path = folder / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) or "none"
        raise HardwareError(f"unknown {what} {name!r}; known: {known} (in {folder})")
    return path


def load(name: str) -> Hardware:
    """A hardware by name (accel_models/<name>.yaml) or by path to a YAML file."""
    return parse_hardware(_resolve(name, models_dir(), "hardware"))


def energy_table(name: str) -> EnergyTable:
    if name in _IMPORTED_TABLES:
        return _IMPORTED_TABLES[name]
    return parse_energy_table(_resolve(name, models_dir() / "energy", "energy table"))


def names() -> list[str]:
    return sorted(p.stem for p in models_dir().glob("*.yaml"))
