"""Reading `accel_models/*.yaml` (schema: accel_models/README.md) into typed `Hardware` and
`EnergyTable` values. Every error names the file and the key; the kind's own section is read by
its kind (`sparsesim.hardware.kinds`)."""
from __future__ import annotations

import math
import os
import reprlib
from pathlib import Path
from typing import Any

import yaml

from . import kinds
from .energy import EnergyTable
from .spec import DATAFLOWS, DTYPE_BITS, LEVEL_KINDS, Hardware, HardwareError, MemoryLevel, Tiling


def models_dir() -> Path:
    """`$SPARSESIM_ACCEL_MODELS`, else the repository's accel_models/."""
    default = Path(__file__).resolve().parent.parent.parent / "accel_models"
    return Path(os.environ.get("SPARSESIM_ACCEL_MODELS", default))


def shown(value: Any) -> str:
    """A value for an error message: bounded (an alias bomb holds billions of references), on one line."""
    return reprlib.repr(value).replace("\n", " ")


class Reader:
    """Typed access to a parsed YAML mapping; every error names the file and the key."""

    def __init__(self, path: Path, data: Any, prefix: str = "") -> None:
        self.path, self.data, self.prefix = path, data, prefix
        if not isinstance(data, dict):
            where = prefix.rstrip(".") or "(top level)"
            raise HardwareError(f"{path}: key '{where}': expected a mapping, got {shown(data)}")

    def fail(self, key: str, expected: str, got: Any) -> None:
        raise HardwareError(f"{self.path}: key '{self.prefix}{key}': expected {expected}, got {shown(got)}")

    def get(self, key: str, kind: type | tuple, default: Any = ..., positive: bool = False) -> Any:
        if key not in self.data:
            if default is ...:
                self.fail(key, f"a {getattr(kind, '__name__', kind)} (missing)", None)
            return default
        value = self.data[key]
        accepted = (int, float) if kind is float else kind
        if kind is not bool and isinstance(value, bool) or not isinstance(value, accepted):
            self.fail(key, f"a {getattr(kind, '__name__', 'value')}", value)
        if positive and not value > 0:
            self.fail(key, "a positive number", value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not (math.isfinite(value) and value >= 0):
            self.fail(key, "a finite number >= 0", value)   # no figure of a hardware is negative or infinite
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = ...) -> str:
        value = self.get(key, str, default)
        if value not in choices:
            self.fail(key, f"one of {', '.join(choices)}", value)
        return value

    def sub(self, key: str, default: Any = ...) -> "Reader":
        value = self.get(key, dict, default)
        return Reader(self.path, value, f"{self.prefix}{key}.")

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
    except UnicodeDecodeError:
        raise HardwareError(f"{path}: not UTF-8 text") from None
    except RecursionError:   # PyYAML composes nested collections recursively
        raise HardwareError(f"{path}: nested too deeply") from None


def _level(path: Path, data: Any, index: int, units: int) -> MemoryLevel:
    """One memory level; per_unit sizes and bandwidths are multiplied by the unit count."""
    r = Reader(path, data, f"memory[{index}].")
    per_unit = r.get("per_unit", bool, False)
    scale = units if per_unit else 1
    return MemoryLevel(name=r.get("name", str), kind=r.choice("kind", LEVEL_KINDS),
                       size_bytes=r.get("size_kib", float) * 1024.0 * scale,
                       bandwidth=r.get("bandwidth_gbps", float, positive=True) * 1e9 * scale,
                       shared=not per_unit, sustained=r.get("sustained_gbps", float, 0.0) * 1e9 * scale)


def tiling(r: Reader) -> Tiling:
    t = r.sub("tiling")
    bypass = t.sub("bypass", {})
    pairs = []
    for level_kind, types in bypass.data.items():
        if level_kind not in LEVEL_KINDS or not isinstance(types, list) or \
                not set(types) <= {"weights", "inputs", "outputs"}:
            t.fail(f"bypass.{level_kind}", "a level kind mapped to a list of weights/inputs/outputs", types)
        pairs.append((level_kind, tuple(types)))
    return Tiling(dataflow=t.choice("dataflow", DATAFLOWS), tile_m=t.get("tile_m", int),
                  tile_n=t.get("tile_n", int, positive=True), reuse_m=t.get("reuse_m", int),
                  reuse_n=t.get("reuse_n", int, positive=True), tile_k=t.get("tile_k", int, 0), bypass=tuple(pairs))


# Formats other than sparsesim's own: a top-level key -> a reader of the whole file. A description
# with a `timeloop:` section is built from a Timeloop architecture and an Accelergy ERT.
_IMPORTED_TABLES: dict[str, EnergyTable] = {}   # energy tables that came with an imported hardware


def _read_timeloop(path: Path, r: Reader) -> Hardware:
    from .timeloop import import_timeloop
    r.sub("timeloop")
    args = (tiling(r), r.get("clock_ghz", float, positive=True) * 1e9, r.get("dram_bandwidth_gbps", float, positive=True) * 1e9)
    try:
        hw, table = import_timeloop(path, r.data, *args)
    except (KeyError, TypeError, AttributeError, ValueError, IndexError, ZeroDivisionError, OverflowError) as e:
        # Another tool's files, walked loosely: any shape the importer does not expect is one line, not a traceback.
        raise HardwareError(f"{path}: cannot import its Timeloop files ({type(e).__name__}: {shown(e)[:160]})") from None
    _check_imported(path, hw, table)
    _IMPORTED_TABLES[table.name] = table
    return hw


def _check_imported(path: Path, hw: Hardware, table: EnergyTable) -> None:
    """Figures read from a Timeloop architecture and ERT: sizes, bandwidths and energies finite and >= 0."""
    figures = [(f"{lv.name} size", lv.size_bytes) for lv in hw.levels] + [(f"{lv.name} bandwidth", lv.bandwidth) for lv in hw.levels]
    figures += [(f"{k} energy", v) for k, v in table.mac_pj.items()]
    for kind, v in table.access_pj_per_bit.items():
        figures += [(f"{kind} energy", x) for x in (v.values() if isinstance(v, dict) else [v])]
    figures.append(("MAC count", hw.units))
    missing = [k for k in LEVEL_KINDS if k not in table.access_pj_per_bit or k not in {lv.kind for lv in hw.levels} | {"l2", "noc"}]
    if missing:
        raise HardwareError(f"{path}: its Timeloop files give no {missing[0]} level (class DRAM, SRAM or regfile)")
    bad = [(what, v) for what, v in figures if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0)]
    if not all(v > 0 for v in table.mac_pj.values()):
        raise HardwareError(f"{path}: its Timeloop ERT gives the MAC no energy (no mac_random action for the MAC component)")
    if bad or hw.units <= 0:
        what, v = bad[0] if bad else ("MAC count", hw.units)
        raise HardwareError(f"{path}: its Timeloop files give {what} {shown(v)}; expected a finite number >= 0")


FORMATS = {"timeloop": _read_timeloop}


def parse_hardware(path: Path) -> Hardware:
    r = Reader(path, _parse(path))
    imported = next((read for key, read in FORMATS.items() if key in r.data), None)
    if imported is not None:
        return imported(path, r)
    kind = kinds.get(r.choice("kind", kinds.names()))
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
    return Hardware(
        name=r.get("name", str, path.stem), kind=kind.name, description=r.get("description", str, ""),
        clock_hz=r.get("clock_ghz", float, positive=True) * 1e9, dtype=dtype, units=units,
        peak_flops=peak, levels=tuple(levels), tiling=tiling(r),
        energy_table=r.get("energy_table", str), energy_tables=_names(r, "energy_tables"),
        path=str(path), part=kind.parse(r), static_w=_static_w(r))


def _names(r: Reader, key: str) -> tuple[str, ...]:
    names = r.get(key, list, [])
    if not all(isinstance(n, str) for n in names):
        r.fail(key, "a list of names", names)
    return tuple(names)


def _static_w(r: Reader) -> float:
    """Static power in W (idle board power, leakage): optional, 0 where a file states none."""
    value = r.get("static_w", float, 0.0)
    if value < 0:
        r.fail("static_w", "a power in W >= 0", value)
    return float(value)


def parse_energy_table(path: Path) -> EnergyTable:
    r = Reader(path, _parse(path))
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
