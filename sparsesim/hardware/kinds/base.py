"""The hardware kind: its base class and the registry (see the package docstring)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..spec import Hardware, HardwareError

# What the steps read, from the layer above (sparsesim.workload): typed here by name only, so that
# the hardware layer imports nothing above it.
Geometry = Work = Reader = Any


@dataclass(frozen=True)
class ConvChoice:
    """How a layer's conv runs: its seconds, the kernels it launches besides the conv's one (an
    algorithm's transforms, the library's and the framework's helper kernels), and the algorithm's name;
    `helper_s`: the part of `seconds` its small helper kernels take; arrays broadcast to (L, T, Nb)."""
    seconds: Any
    extra_kernels: Any
    algorithm: Any
    helper_s: Any = 0.0


class Kind:
    """A hardware kind. Subclasses set the class attributes and override what differs."""
    name: str = ""
    section: str = ""                # the YAML section holding the part's fields
    fused: bool = False              # its natural block-sparse kernel is one pass (no gather buffer)
    region_on_chip: bool = False     # region fusion keeps a block's intermediates in its buffer
    array_network: bool = False      # operands hop PE to PE: interconnect accesses per MAC
    simulator: str | None = None     # name of its simulator in sparsesim.sim (None: none)
    default_schedule: str = "dynamic"

    @property
    def strategies(self) -> tuple[str, ...]:
        """The kernel strategies it runs (sparsesim.workload.strategies), its natural one first."""
        return ("fused", "region") if self.fused else ("gather-scatter", "fused", "region")

    def parse(self, section: Reader) -> Any:
        """The kind's part from its YAML section."""
        raise NotImplementedError

    def array_part(self, rows: int, cols: int, rf_read_words: tuple = (), loop_arch: Any = None) -> Any:
        """The part of an array imported from another tool's description (Timeloop)."""
        raise HardwareError(f"a {self.name} cannot be imported from an array description (arrays only)")

    def dispatch_s(self, hw: Hardware, launches: Any, graphs: bool = False) -> Any:
        """Seconds of launch or dispatch overhead for `launches` calls (arrays: none); `graphs`: the
        calls are nodes of one captured graph (kinds without graphs ignore it)."""
        return 0.0 * launches

    def launch_s(self, hw: Hardware, launches: Any, busy: Any, graphs: bool = False,
                 kernels: Any = 0.0) -> tuple[Any, Any]:
        """(issued, exposed) seconds of `launches` calls beside `busy` seconds of the device's own work:
        what issuing them costs the host, and what of it the layer's latency pays; `kernels`: launches
        inside those calls (an algorithm's transforms: no dispatch of their own). Kinds that run their
        calls in line (a CPU's operators) pay all of it; a GPU overlaps its host with its queue."""
        issued = self.dispatch_s(hw, launches, graphs)
        return issued, issued

    def loop_arch(self, hw: Hardware) -> Any:
        """The loop-nest machine and mapping constraints sparsesim's mapper maps onto (arrays only)."""
        raise HardwareError(f"{hw.name}: sparsesim's mapper maps onto arrays, not a {self.name}")

    def conv_choice(self, geo: Geometry, hw: Hardware, w: Work, direct: Any, bandwidth: Any,
                    library: Any) -> ConvChoice:
        """The conv as the hardware runs it, given the `direct` time of its tile model (t_bandwidth) and the
        backing level's `bandwidth`: a kind whose library offers other algorithms (GPUs) times them where
        `library` says a library call runs the conv, and keeps the fastest. Others: the direct time."""
        return ConvChoice(direct, 0.0 * direct, np.full(np.shape(direct), "direct"))

    def gemm_tile(self, geo: Geometry, hw: Hardware, w: Work, memory: Any = None) -> Any:
        """The implicit-GEMM tile a layer runs in (`.m` pixels x `.n` channels): the stated tiling,
        except where a kind chooses per layer (GPUs); `memory(tile_m, tile_n)`: the seconds the conv's
        traffic takes in that tile (`sparsesim.workload.traffic` tells it)."""
        t = hw.tiling
        return _StatedTile(float(t.tile_m), float(t.tile_n))

    def with_channel_group(self, hw: Hardware, group: int) -> Hardware:
        """Work units of G output channels: the implicit GEMM's N tile becomes G."""
        t = hw.tiling
        return replace(hw, tiling=replace(t, tile_n=group, reuse_n=min(t.reuse_n, group)))

    def gather_bandwidth(self, hw: Hardware, block: Any = None) -> Any:
        """Bytes/s of the indexed gather and scatter passes (at block size `block`, where a kind measured
        them per block); 0: as streaming."""
        return 0.0

    def mask_bandwidth(self, hw: Hardware) -> float:
        """Bytes/s of the mask step (the residual reduction) where measured on its own; 0: streaming."""
        return 0.0

    def scatter_bandwidth(self, hw: Hardware, block: Any = None) -> Any:
        """Bytes/s of the indexed scatter(-add) pass where it is measured apart from the gather (a
        scatter-add reads what it adds to); by default the gather's."""
        return self.gather_bandwidth(hw, block)

    def reduction_pass(self, hw: Hardware) -> int:
        """Reduction length per pass below the buffer when the tiling states none (0: the whole)."""
        return 0

    def latency_steps(self, geo: Geometry, hw: Hardware, w: Work, block: np.ndarray | None) -> list[np.ndarray]:
        """t_peak, t_parallel, t_util, t_occupancy (seconds), each broadcastable to (L, T, Nb)."""
        raise NotImplementedError

    def describe(self, hw: Hardware) -> str:
        """One line of `sparsesim hw show` on the kind's own figures."""
        return ""


class _StatedTile:
    def __init__(self, m: float, n: float) -> None:
        self.m, self.n = m, n


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
