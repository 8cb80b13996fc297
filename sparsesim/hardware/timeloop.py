"""Import a Timeloop v0.3 architecture and an Accelergy energy reference table (ERT) as a sparsesim
`Hardware` and `EnergyTable`.

Storage levels map by position in the array: the outermost DRAM-class component is `dram`; a storage
level with one instance is the global `buffer`; one instance per MAC is the PEs' register files (`rf`,
one energy per data type, told apart by the component's name); anything in between (array-edge
buffers such as `DummyBuffer[0..13]`) is the array network (`noc`). Instances come from `name[0..N]`
ranges, multiplied down the tree; `meshX` gives the array's columns. An access of a `block-size`
word vector costs the ERT's random-access energy (the maximum over its arguments), shared by its
words: the read energy for register files (operand reads dominate their accesses), the mean of read
and write elsewhere (buffers and DRAM see both).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import yaml

from . import kinds
from .energy import EnergyTable
from .spec import Hardware, HardwareError, MemoryLevel, Tiling

_RANGE = re.compile(r"^(.*)\[(\d+)\.\.(\d+)\]$")
SPACE_NAMES = {"weights": ("weight",), "inputs": ("ifmap", "input"), "outputs": ("psum", "output", "ofmap")}


@dataclass(frozen=True)
class Component:
    name: str              # without the instance range
    cls: str
    attributes: dict
    instances: int
    mesh_x: int


def _attr(attrs: dict, *names: str, default: Any = None) -> Any:
    for name in names:
        if name in attrs and attrs[name] is not None:
            return attrs[name]
    return default


def _split(name: str) -> tuple[str, int]:
    match = _RANGE.match(name)
    return (match.group(1), int(match.group(3)) - int(match.group(2)) + 1) if match else (name, 1)


def walk(node: dict, multiplier: int = 1) -> Iterator[Component]:
    """Every local component of a v0.3 architecture tree, outermost first, with its instance count."""
    _, count = _split(str(node.get("name", "")))
    total = multiplier * count
    for item in node.get("local") or []:
        name, own = _split(str(item.get("name")))
        attrs = item.get("attributes") or {}
        yield Component(name=name, cls=str(item.get("class", "")), attributes=attrs, instances=total * own,
                        mesh_x=int(_attr(attrs, "meshX", default=1)))
    for child in node.get("subtree") or []:
        yield from walk(child, total)


def _load_yaml(path: Path, what: str) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise HardwareError(f"Timeloop {what} not found: {path}") from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as e:
        raise HardwareError(f"{path}: not valid YAML ({str(getattr(e, 'problem', e))[:120]})") from None


def components(arch_path: Path) -> list[Component]:
    data = _load_yaml(arch_path, "architecture")
    arch = (data or {}).get("architecture")
    if not isinstance(arch, dict) or str(arch.get("version")) != "0.3":
        raise HardwareError(f"{arch_path}: key 'architecture.version': expected a Timeloop v0.3 architecture")
    comps = [c for root in arch.get("subtree") or [] for c in walk(root)]
    for c in comps:
        _check_figures(arch_path, f"{c.name}.attributes", c.attributes)
    return comps


def _check_figures(path: Path, where: str, figures: Any) -> None:
    """Sizes, widths, counts and energies are finite and >= 0: a negative one would price as a saving."""
    for key, value in (figures.items() if isinstance(figures, dict) else ()):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not (math.isfinite(value) and value >= 0):
            raise HardwareError(f"{path}: key '{where}.{key}': expected a finite number >= 0, got {value!r}")


def ert_energies(ert_path: Path) -> dict[str, dict[str, float]]:
    """Component name (last path element, no range) -> action -> energy (max over its arguments)."""
    data = _load_yaml(ert_path, "energy reference table")
    table = (data or {}).get("ERT_summary", {}).get("table_summary")
    if not isinstance(table, list):
        raise HardwareError(f"{ert_path}: key 'ERT_summary.table_summary': expected Accelergy's ERT summary list")
    out = {}
    for entry in table:
        name = re.sub(r"\[\d+\.\.\d+\]", "", str(entry["name"])).split(".")[-1]  # ranges hold dots too
        out[name] = {a["name"]: float(a.get("max_energy", a.get("energy", 0.0)) or 0.0) for a in entry.get("actions", [])}
        _check_figures(ert_path, f"{name}.actions", out[name])
    return out


def _role(c: Component, macs: int) -> str:
    if "dram" in c.cls.lower():
        return "dram"
    if c.instances == 1:
        return "buffer"
    return "rf" if c.instances == macs else "noc"


def _space(name: str) -> str | None:
    return next((space for space, keys in SPACE_NAMES.items() if any(k in name.lower() for k in keys)), None)


def import_timeloop(path: Path, data: dict, tiling: Tiling, clock_hz: float, dram_bandwidth: float) -> tuple[Hardware, EnergyTable]:
    section = data["timeloop"]
    arch_path, ert_path = (path.parent / section[k] for k in ("architecture", "ert"))
    comps = components(arch_path)
    energies = ert_energies(ert_path)
    macs = [c for c in comps if "mac" in c.cls.lower() or "mac" in c.name.lower()]
    if not macs:
        raise HardwareError(f"{arch_path}: no MAC component (class intmac/mac) in the architecture")
    mac = macs[0]
    bits = int(_attr(mac.attributes, "datawidth", "word-bits", "word_bits", default=16))
    dtype = {8: "int8", 16: "int16", 32: "fp32"}.get(bits, "int16")
    levels, per_bit, rf_bits, rf_words = [], {}, {}, {}
    rf = None   # index of the PEs' register-file level once seen
    for c in comps:
        if c is mac or "mac" in c.cls.lower():
            continue
        role = _role(c, mac.instances)
        word = int(_attr(c.attributes, "word-bits", "datawidth", "word_bits", default=bits))
        block = int(_attr(c.attributes, "block-size", "block_size", default=1))
        depth = float(_attr(c.attributes, "memory_depth", "data_storage_depth", "depth", default=0))
        width = float(_attr(c.attributes, "memory_width", "data_storage_width", "width", default=word))
        read_bw = _attr(c.attributes, "read_bandwidth", default=None)
        words_per_cycle = float(read_bw) if read_bw is not None else width / word
        bandwidth = dram_bandwidth if role == "dram" else words_per_cycle * word / 8 * clock_hz * c.instances
        action = energies.get(c.name, {})
        read, write = action.get("read", 0.0), action.get("write", action.get("read", 0.0))
        pj_bit = (read if role == "rf" else (read + write) / 2) / (block * word)
        size = depth * width / 8 * c.instances
        if role == "rf":
            rf_bits[_space(c.name) or "inputs"] = pj_bit
            rf_words[_space(c.name) or "inputs"] = words_per_cycle
            if rf is not None:  # the PE's register files are one level with one energy per data type
                levels[rf] = replace(levels[rf], size_bytes=levels[rf].size_bytes + size,
                                     bandwidth=levels[rf].bandwidth + bandwidth)
                continue
            rf = len(levels)
        elif role in per_bit:
            per_bit[role] = max(per_bit[role], pj_bit)
            continue
        else:
            per_bit[role] = pj_bit
        levels.append(MemoryLevel(name=c.name if role != "rf" else "pe-spads", kind=role, size_bytes=size,
                                  bandwidth=bandwidth, shared=c.instances == 1))
    levels.sort(key=lambda lv: ("dram", "l2", "buffer", "noc", "rf").index(lv.kind))
    for space in SPACE_NAMES:
        rf_bits.setdefault(space, sum(rf_bits.values()) / max(len(rf_bits), 1))
    per_bit.setdefault("noc", 0.0)
    per_bit["l2"] = per_bit.get("buffer", 0.0)
    per_bit["rf"] = rf_bits
    name = data.get("name", path.stem)
    mac_pj = energies.get(mac.name, {}).get("mac_random", 0.0)
    table = EnergyTable(name=f"{name}-ert", description=f"Accelergy ERT {ert_path.name} of {arch_path.name}",
                        mac_pj={dtype: mac_pj}, access_pj_per_bit=per_bit)
    kind = kinds.get(data.get("kind", "spatial"))
    loop_arch = None
    if section.get("constraints"):   # the mapping constraints sparsesim's mapper and timeloop-mapper honour
        from .looparch import load_looparch
        loop_arch = load_looparch(name, arch_path, ert_path, [path.parent / c for c in section["constraints"]])
    part = kind.array_part(mac.instances // mac.mesh_x, mac.mesh_x, tuple(sorted(rf_words.items())), loop_arch)
    hw = Hardware(name=name, kind=kind.name, description=data.get("description", ""),
                  clock_hz=clock_hz, dtype=dtype, units=mac.instances,
                  peak_flops={dtype: 2.0 * mac.instances * clock_hz}, levels=tuple(levels), tiling=tiling,
                  energy_table=table.name, energy_tables=tuple(data.get("energy_tables", [])), path=str(path),
                  part=part, static_w=float(data.get("static_w", 0.0)))
    return hw, table
