"""A Timeloop v0.3 architecture as the loop-nest machine sparsesim's mapper maps layers onto.

Storage levels outermost first, each with its instances, capacity in words, the data spaces it keeps,
its bandwidths, its energy per scalar access (the Accelergy ERT's figure for a `block-size` vector,
shared by its words) and the mapping constraints Timeloop's own mapper honours (factors fixed to 1 or
to the whole dimension, loop order, the X/Y split of spatial loops, bypass), read from the same
constraint files `timeloop-mapper` is given. A level's spatial fanout is the ratio of its children's
instances to its own, split into X (`meshX`) and Y.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from .spec import HardwareError
from .timeloop import Component, components, ert_energies

DIMS = ("C", "M", "R", "S", "N", "P", "Q")
DATA_SPACES = ("Weights", "Inputs", "Outputs")


@dataclass(frozen=True)
class LoopConstraint:
    """Factors (dim -> 1, or 0 for the whole remaining dimension), the loop order (Timeloop's
    permutation string: innermost first) and, for spatial loops, the index where Y begins."""
    factors: tuple[tuple[str, int], ...] = ()
    permutation: str = ""
    split: int = len(DIMS)

    def fixed(self, dim: str) -> int | None:
        return dict(self.factors).get(dim)


@dataclass(frozen=True)
class Store:
    name: str
    instances: int
    mesh_x: int
    words: float                    # capacity per instance; inf for DRAM
    keeps: tuple[str, ...]          # data spaces stored here (the others bypass it)
    read_bw: float                  # words per cycle per instance; inf where unstated
    write_bw: float
    read_pj: float                  # per scalar access
    write_pj: float
    gated_pj: float                 # a gated (skipped-in-place) read, Sparseloop's `gated_read`
    fanout_x: int = 1               # children per instance along X and Y
    fanout_y: int = 1
    temporal: LoopConstraint = LoopConstraint()
    spatial: LoopConstraint = LoopConstraint()


@dataclass(frozen=True)
class LoopArch:
    name: str
    stores: tuple[Store, ...]       # outermost first
    macs: int
    mac_pj: float
    mac_gated_pj: float
    files: tuple[str, ...]          # the architecture, components and constraints, for export

    def store(self, name: str) -> Store:
        for s in self.stores:
            if s.name == name:
                return s
        raise HardwareError(f"{self.name}: no storage level {name!r}")


def _attr(attrs: dict, *names: str, default=None):
    return next((attrs[n] for n in names if attrs.get(n) is not None), default)


def _constraints(paths: list[Path]) -> list[dict]:
    targets = []
    for path in paths:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise HardwareError(f"Timeloop constraints not found: {path}") from None
        except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as e:
            raise HardwareError(f"{path}: not valid YAML ({str(getattr(e, 'problem', e))[:120]})") from None
        for section in ("architecture_constraints", "mapspace_constraints", "constraints"):
            targets += (data.get(section) or {}).get("targets", []) if isinstance(data.get(section), dict) else []
    return targets


def _parse_factors(text: str) -> tuple[tuple[str, int], ...]:
    out = []
    for item in str(text or "").split():
        dim, _, value = item.partition("=")
        if dim not in DIMS or not value.isdigit():
            raise HardwareError(f"constraint factor {item!r}: expected DIM=VALUE with DIM in {''.join(DIMS)}")
        out.append((dim, int(value)))
    return tuple(out)


def _constraint(targets: list[dict], name: str, kind: str) -> LoopConstraint:
    factors, permutation, split = [], "", len(DIMS)
    for t in targets:
        if t.get("target") == name and t.get("type") == kind:
            factors += _parse_factors(t.get("factors", ""))
            permutation = str(t.get("permutation", permutation)).replace(" ", "") or permutation
            split = int(t.get("split", split))
    return LoopConstraint(tuple(factors), permutation, split)


def _keeps(targets: list[dict], name: str) -> tuple[str, ...]:
    bypass = {d for t in targets if t.get("target") == name and t.get("type") == "bypass" for d in t.get("bypass", [])}
    return tuple(d for d in DATA_SPACES if d not in bypass)


def _store(c: Component, energies: dict, targets: list[dict], word_bits: int) -> Store:
    a = c.attributes
    block = int(_attr(a, "block-size", "block_size", default=1))
    word = int(_attr(a, "word-bits", "datawidth", "word_bits", default=word_bits))
    depth = _attr(a, "memory_depth", "data_storage_depth", "depth", "entries")
    width = float(_attr(a, "memory_width", "data_storage_width", "width", default=word))
    dram = "dram" in c.cls.lower()
    words = math.inf if dram or depth is None else float(depth) * width / word
    action = energies.get(c.name, {})
    read = action.get("read", 0.0)
    return Store(name=c.name, instances=c.instances, mesh_x=c.mesh_x, words=words, keeps=_keeps(targets, c.name),
                 read_bw=float(_attr(a, "read_bandwidth", default=math.inf)),
                 write_bw=float(_attr(a, "write_bandwidth", default=math.inf)),
                 read_pj=read / block, write_pj=action.get("write", read) / block,
                 gated_pj=action.get("gated_read", 0.0) / block,
                 temporal=_constraint(targets, c.name, "temporal"), spatial=_constraint(targets, c.name, "spatial"))


def load_looparch(name: str, arch: Path, ert: Path, constraints: list[Path]) -> LoopArch:
    comps = components(arch)
    energies = ert_energies(ert)
    targets = _constraints(constraints)
    is_mac = lambda c: "mac" in c.cls.lower() or "mac" in c.name.lower()  # noqa: E731 (class intmac, or compute "MACs")
    macs = [c for c in comps if is_mac(c)]
    if not macs:
        raise HardwareError(f"{arch}: no MAC component (class intmac/mac) in the architecture")
    mac = macs[0]
    bits = int(_attr(mac.attributes, "datawidth", "word-bits", default=16))
    stores = [_store(c, energies, targets, bits) for c in comps if not is_mac(c)]
    out = []
    for i, s in enumerate(stores):   # fanout to the next inner level (the MACs below the last one)
        child_instances, child_x = (stores[i + 1].instances, stores[i + 1].mesh_x) if i + 1 < len(stores) \
            else (mac.instances, mac.mesh_x)
        fan_x = max(child_x // max(s.mesh_x, 1), 1) if child_x > 1 else 1
        fan = child_instances // s.instances
        out.append(Store(**{**s.__dict__, "fanout_x": fan_x, "fanout_y": max(fan // fan_x, 1)}))
    files = (str(arch), *map(str, constraints))
    return LoopArch(name=name, stores=tuple(out), macs=mac.instances,
                    mac_pj=energies.get(mac.name, {}).get("mac_random", 0.0),
                    mac_gated_pj=energies.get(mac.name, {}).get("mac_gated", 0.0), files=files)
