"""The hardware kind: its base class and the registry (see the package docstring)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..spec import Hardware, HardwareError

# What the steps read, from the layer above (sparsesim.workload): typed here by name only, so that
# the hardware layer imports nothing above it.
Geometry = Work = Reader = Any


class Kind:
    """A hardware kind. Subclasses set the class attributes and override what differs."""
    name: str = ""
    section: str = ""                # the YAML section holding the part's fields
    fused: bool = False              # block-sparse layers run as one pass (no gather buffer)
    array_network: bool = False      # operands hop PE to PE: interconnect accesses per MAC
    simulator: str | None = None     # name of its simulator in sparsesim.sim (None: none)
    default_schedule: str = "dynamic"

    def parse(self, section: Reader) -> Any:
        """The kind's part from its YAML section."""
        raise NotImplementedError

    def array_part(self, rows: int, cols: int, rf_read_words: tuple = ()) -> Any:
        """The part of an array imported from another tool's description (Timeloop)."""
        raise HardwareError(f"a {self.name} cannot be imported from an array description (arrays only)")

    def launches(self, sparse: bool) -> int:
        """Kernel launches (or operator calls) one layer costs: mask reduction, gather, conv and
        scatter when unfused, one pass when fused."""
        return (1 if self.fused else 4) if sparse else 1

    def dispatch_s(self, hw: Hardware, launches: int) -> float:
        """Seconds of launch or dispatch overhead for `launches` calls (arrays: none)."""
        return 0.0

    def gather_bandwidth(self, hw: Hardware) -> float:
        """Bytes/s of the indexed gather and scatter passes; 0: as streaming."""
        return 0.0

    def reduction_pass(self, hw: Hardware) -> int:
        """Reduction length per pass below the buffer when the tiling states none (0: the whole)."""
        return 0

    def latency_steps(self, geo: Geometry, hw: Hardware, w: Work, block: np.ndarray | None) -> list[np.ndarray]:
        """t_peak, t_parallel, t_util, t_occupancy (seconds), each broadcastable to (L, T, Nb)."""
        raise NotImplementedError

    def describe(self, hw: Hardware) -> str:
        """One line of `sparsesim hw show` on the kind's own figures."""
        return ""


_REGISTRY: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    _REGISTRY[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """Registered kind names, in registration order."""
    return tuple(_REGISTRY)


def get(name: str) -> Kind:
    if name not in _REGISTRY:
        raise HardwareError(f"unknown hardware kind {name!r}; known kinds: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def of(hw: Hardware) -> Kind:
    """The kind of a hardware description."""
    return get(hw.kind)


def padding(w: Work) -> np.ndarray:
    """Pixels scheduled per useful pixel: whole B x B blocks, edge blocks included."""
    return np.where(w.pixels > 0, w.padded_pixels / np.maximum(w.pixels, 1), 1.0)
