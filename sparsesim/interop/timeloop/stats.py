"""Read Timeloop/Sparseloop `*.stats.txt` into a typed result and a pandas table."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ...errors import SparsesimError

DATA_SPACES = ("Weights", "Inputs", "Outputs")
_KEY_VALUE = re.compile(r"^(\s*)(.*?)(?:\s*:\s+|\s+=\s+)(.*)$")  # 'key : v', 'key: v', 'a <==> b = v'
_NUMBER = re.compile(r"^-?[\d.]+(?:e[+-]?\d+)?")


def _number(text: str) -> float | None:
    match = _NUMBER.match(text.strip())
    return float(match.group()) if match else None


@dataclass(frozen=True)
class LevelStats:
    name: str
    instances: int
    cycles: int
    energy_pj: float
    # data space -> {"reads", "updates", "fills", "energy_pj", "utilized_instances", ...} as Timeloop reports
    spaces: dict[str, dict[str, float]] = field(default_factory=dict)

    def accesses(self, space: str, kind: str = "actual") -> float:
        """Total scalar reads + updates + fills of a data space over the utilized instances.

        Timeloop reports plain 'scalar reads'; Sparseloop 'algorithmic' and 'actual' ones."""
        s = self.spaces.get(space, {})
        prefix = "" if f"{kind} scalar reads (per-instance)" not in s else f"{kind} "
        per_instance = sum(s.get(f"{prefix}scalar {a} (per-instance)", 0.0) for a in ("reads", "updates", "fills"))
        return per_instance * s.get("utilized instances (max)", 1.0)


@dataclass(frozen=True)
class TimeloopStats:
    path: str
    cycles: int
    utilization: float
    energy_pj: float
    area_mm2: float
    algorithmic_computes: int
    actual_computes: int
    pj_per_compute: dict[str, float]       # per level, per algorithmic compute (Timeloop's summary)
    levels: tuple[LevelStats, ...]

    def level(self, name: str) -> LevelStats:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise SparsesimError(f"no level {name!r} in {self.path}; levels: {', '.join(l.name for l in self.levels)}")

    def to_frame(self) -> pd.DataFrame:
        """One row per level and data space: accesses and energy."""
        compute = self.levels[0]  # Timeloop lists the arithmetic level first
        rows = [{"level": compute.name, "data_space": "compute", "instances": compute.instances, "cycles": compute.cycles,
                 "accesses": self.actual_computes, "energy_pj": compute.energy_pj}]
        for lv in self.levels[1:]:
            for space, s in lv.spaces.items():
                rows.append({"level": lv.name, "data_space": space, "instances": lv.instances, "cycles": lv.cycles,
                             "accesses": lv.accesses(space), "energy_pj": s.get("energy (total)", 0.0)})
        return pd.DataFrame(rows)


def _levels(lines: list[str]) -> list[LevelStats]:
    levels, current, space = [], None, None
    for line in lines:
        if line.startswith("Networks") or line.startswith("Network "):
            break
        header = re.match(r"^=== (.+) ===$", line.strip())
        if header:
            current = {"name": header.group(1), "keys": {}, "spaces": {}}
            levels.append(current)
            space = None
            continue
        if current is None:
            continue
        if line.strip().rstrip(":") in DATA_SPACES and line.strip().endswith(":"):
            space = line.strip().rstrip(":")
            current["spaces"][space] = {}
            continue
        kv = _KEY_VALUE.match(line)
        if not kv:
            continue
        key, value = kv.group(2).strip().lower(), _number(kv.group(3))
        if value is None:
            continue
        target = current["spaces"][space] if space else current["keys"]
        target.setdefault(key, value)
    out = []
    for lv in levels:
        keys, spaces = lv["keys"], lv["spaces"]
        energy = keys.get("energy (total)", sum(s.get("energy (total)", 0.0) for s in spaces.values()))
        out.append(LevelStats(name=lv["name"], instances=int(keys.get("instances", 1)), cycles=int(keys.get("cycles", 0)),
                              energy_pj=float(energy), spaces=spaces))
    return out


def _summary(lines: list[str], path: Path) -> dict:
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Summary Stats"))
    except StopIteration:
        raise SparsesimError(f"{path} is not a Timeloop stats file (no 'Summary Stats' section)") from None
    summary: dict = {"pj": {}}
    table, scale = None, 1.0
    for line in lines[start + 2:]:
        if line.strip().startswith(("fJ/", "pJ/")):   # v3.0.3 reports fJ per compute, older versions pJ
            scale = 1e-3 if line.strip().startswith("fJ/") else 1.0
            continue
        kv = _KEY_VALUE.match(line)
        if not kv:
            continue
        indent, key, value = len(kv.group(1)), kv.group(2).strip(), kv.group(3).strip()
        if key in ("Algorithmic Computes", "MACCs", "Computes"):
            summary["algorithmic"] = _number(value)
            table = "algorithmic"
        elif key == "Actual Computes":
            summary["actual"] = _number(value)
            table = "actual"
        elif indent and table == "algorithmic" and key != "Total" and _number(value) is not None:
            summary["pj"][key] = _number(value) * scale
        elif not indent and key in ("Utilization", "Cycles", "Energy", "Area"):
            summary[key.lower()] = _number(value)
    return summary


def parse_stats(path: str | Path) -> TimeloopStats:
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (FileNotFoundError, IsADirectoryError):
        raise SparsesimError(f"Timeloop stats file not found: {path}") from None
    except UnicodeDecodeError:
        raise SparsesimError(f"{path}: not a Timeloop stats file (not text)") from None
    s = _summary(lines, path)
    algorithmic = s.get("algorithmic")
    if algorithmic is None or "cycles" not in s:
        raise SparsesimError(f"{path}: no cycles or computes in the summary; is this a complete stats.txt?")
    return TimeloopStats(path=str(path), cycles=int(s["cycles"]), utilization=float(s.get("utilization", 0.0)),
                         energy_pj=float(s.get("energy", 0.0)) * 1e6, area_mm2=float(s.get("area", 0.0)),
                         algorithmic_computes=int(algorithmic), actual_computes=int(s.get("actual", algorithmic)),
                         pj_per_compute=s["pj"], levels=tuple(_levels(lines)))
