"""Kernel strategies for block-sparse layers, a registry like the hardware kinds: each one's bill, step
by step, in elements moved at the layer's backing level and launches.

Steps: `mask` (reduce x_t and x_{t-1} to the block mask and the index list), `gather` (copy the
active blocks' input tiles, halos included, to a buffer), `conv` (the implicit GEMM over the active
blocks: the kernel the roofline bounds), `scatter` (write the results into the output map).

- `gather-scatter` (SBNet; GPUs' and CPUs' natural form): a launch per step.
- `fused` (DeltaCNN-style; accelerator arrays' natural form): one kernel reads the block list and the
  halo'd tiles straight from the input and writes the output in place: no gather buffer.
- `region` (SBNet's residual unit): consecutive layers that share one spatial mask gather once, with
  the halo the whole chain needs, run every layer on the gathered tiles (each tile shrinking by its
  layer's halo) and scatter once at the end; it recomputes the chain's values on the tiles. Arrays
  keep a block's intermediate tiles in their buffer where it holds them; GPUs and CPUs pass them
  through memory, a launch per layer.

Where the mask comes from is part of the bill (`mask_source`): `residual` (Skip-Convolution: a
reduction over x_t and x_{t-1}, and the layer computes deltas: gather reads both frames' tiles and
scatter adds into z_{t-1}); `given` (indices handed in, as SBNet's benchmark times them and as UGSP's
predictor produces them: no reduction, and the layer computes values: one read, one write).
`+graphs` after a strategy's name captures the launches in a CUDA graph (the kind's graph-node cost
replaces launch and dispatch), for the dense baseline too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import OptionError

MASK_SOURCES = ("residual", "given")
STEPS = ("mask", "gather", "conv", "scatter")
GRAPHS = "+graphs"
INDEX_BYTES = 4


@dataclass(frozen=True)
class Kernel:
    """What `--kernel` names: a strategy, optionally captured in CUDA graphs, and where masks come from."""
    strategy: str
    graphs: bool = False
    mask_source: str = "residual"

    @property
    def name(self) -> str:
        return self.strategy + (GRAPHS if self.graphs else "")


@dataclass(frozen=True)
class Bill:
    """A layer's steps: elements by data type at the backing level, and launches, per step."""
    steps: dict[str, dict[str, np.ndarray]]
    launches: dict[str, np.ndarray]
    metadata: np.ndarray                     # bytes of block masks and index lists
    on_chip: dict[str, np.ndarray] = field(default_factory=dict)   # elements kept in the buffer instead


@dataclass(frozen=True)
class Layer:
    """What a strategy's bill reads: per-layer arrays broadcast to (L, T, Nb)."""
    in_elems: np.ndarray       # the whole input map
    tiles: np.ndarray          # input elements of the active blocks' tiles, halos included (in the map)
    gathered: np.ndarray       # ... as a gather buffer holds them: whole tiles, zero-filled past the map
    reread_in: np.ndarray      # input re-reads (once per N tile)
    weights: np.ndarray        # weight elements fetched (once per M tile, when anything is active)
    updated: np.ndarray        # in-bounds output elements of the active blocks
    computed: np.ndarray       # output elements the conv computes (whole tiles inside a region)
    bitmask: np.ndarray        # bytes of the block mask
    blocks: np.ndarray         # active blocks
    first: np.ndarray          # gathers its input (True outside regions)
    last: np.ndarray           # scatters its output (True outside regions)
    fits: np.ndarray           # one block's tiles fit the buffer (region_on_chip kinds keep them there)


def _zero(x: Layer) -> np.ndarray:
    return np.zeros(np.broadcast(x.tiles, x.updated, x.weights, x.first).shape)


def _mask_step(x: Layer, source: str, when) -> tuple[dict, np.ndarray, np.ndarray]:
    """The residual reduction: reads x_t and x_{t-1} whole, writes the bitmask and index list."""
    on = (source == "residual") & np.asarray(when)
    z = _zero(x)
    elems = {"inputs": np.where(on, x.in_elems, 0) + z, "state": np.where(on, x.in_elems, 0) + z}
    written = np.where(on, x.bitmask + INDEX_BYTES * x.blocks, 0) + z
    return elems, on + z, written


class Strategy:
    name: str = ""
    description: str = ""
    gathers: bool = True         # holds a gather buffer (memory)
    fuses_regions: bool = False  # runs a chain of layers sharing a mask on one gather
    library_conv: bool = True    # its conv is a library call on the gathered tiles (the library picks the
                                 # algorithm: Winograd where faster), not a custom kernel

    def bill(self, x: Layer, source: str, on_chip: bool) -> Bill:
        raise NotImplementedError


class GatherScatter(Strategy):
    name = "gather-scatter"
    description = "mask reduction, gather of halo'd tiles, conv on the gathered batch, scatter (SBNet)"

    def bill(self, x: Layer, source: str, on_chip: bool) -> Bill:
        delta = source == "residual"
        z = _zero(x)
        mask, mask_launch, written = _mask_step(x, source, True)
        # The buffers hold whole tiles and whole blocks, as `sparsesim measure`'s kernels run them: the
        # gather copies each block's whole tile from a zero-bordered residual (an edge block, or a block
        # larger than the map, costs its full tile), the conv computes and the scatter adds whole B x B
        # blocks into the output state padded to whole blocks. Billing in-map elements only left B = 32 on
        # small maps 2-30x cheaper than measured and the block ranking wrong (issue 15).
        tiles, blocks = x.gathered, x.computed
        steps = {"mask": mask,
                 "gather": {"inputs": tiles + z, "state": tiles * delta + z, "gather": tiles + z},
                 "conv": {"weights": x.weights + z, "gather": tiles * x.reread_in + blocks},
                 "scatter": {"gather": blocks + z, "state": blocks * delta + z, "outputs": blocks + z}}
        launches = {"mask": mask_launch, "gather": 1 + z, "conv": 1 + z, "scatter": 1 + z}
        return Bill(steps, launches, written + INDEX_BYTES * x.blocks * 3)   # gather, conv, scatter read it


class Fused(Strategy):
    name, gathers, library_conv = "fused", False, False
    description = "one kernel reads the block list and the halo'd tiles in place: no gather buffer (DeltaCNN)"

    def bill(self, x: Layer, source: str, on_chip: bool) -> Bill:
        delta = source == "residual"
        z = _zero(x)
        mask, mask_launch, written = _mask_step(x, source, True)
        read = x.tiles * x.reread_in
        steps = {"mask": mask, "conv": {"weights": x.weights + z, "inputs": read + z,
                                        "state": (read + x.updated) * delta + z, "outputs": x.updated + z}}
        return Bill(steps, {"mask": mask_launch, "conv": 1 + z}, written + INDEX_BYTES * x.blocks)


class Region(Strategy):
    name, fuses_regions = "region", True
    description = "one gather for a chain of layers sharing a mask, halo grown layer by layer, one scatter (SBNet's residual unit)"

    def bill(self, x: Layer, source: str, on_chip: bool) -> Bill:
        z = _zero(x)
        first, last = x.first + z > 0, x.last + z > 0
        mask, mask_launch, written = _mask_step(x, source, first)
        inner_in = np.where(first, 0.0, x.tiles * x.reread_in)     # reads the previous layer's tiles
        inner_out = np.where(last, 0.0, x.computed)                # writes tiles for the next layer
        keep = on_chip & (x.fits + z > 0)                          # ...in the buffer, where it holds them
        conv_gather = np.where(first, x.tiles * x.reread_in, 0.0) + np.where(keep, 0.0, inner_in + inner_out) + \
            np.where(last, x.updated, 0.0)
        steps = {"mask": mask,
                 "gather": {"inputs": np.where(first, x.tiles, 0.0), "gather": np.where(first, x.tiles, 0.0)},
                 "conv": {"weights": x.weights + z, "gather": conv_gather},
                 "scatter": {"gather": np.where(last, x.updated, 0.0), "outputs": np.where(last, x.updated, 0.0)}}
        launches = {"mask": mask_launch, "gather": first * 1.0, "conv": 1 + z, "scatter": last * 1.0}
        readers = INDEX_BYTES * x.blocks * (first * 1.0 + last * 1.0)
        kept = {"gather": np.where(keep, inner_in + inner_out, 0.0)}
        return Bill(steps, launches, written + readers, kept)


_REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    _REGISTRY[strategy.name] = strategy
    return strategy


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get(name: str) -> Strategy:
    if name not in _REGISTRY:
        raise OptionError("kernels", f"{{kernels}} {name!r} is not a kernel strategy; known: "
                          f"{', '.join(n + '[' + GRAPHS + ']' for n in _REGISTRY)}")
    return _REGISTRY[name]


for _s in (GatherScatter(), Fused(), Region()):
    register(_s)


def parse_kernels(names_: list[str] | tuple[str, ...], mask_source: str = "residual") -> tuple[Kernel, ...]:
    """'gather-scatter', 'fused+graphs', ... -> Kernels (checked); an unknown name fails in one line."""
    if mask_source not in MASK_SOURCES:
        raise OptionError("mask_source", f"must be {' or '.join(MASK_SOURCES)}, got {mask_source!r}")
    out = []
    for text in names_:
        base, graphs = (text[: -len(GRAPHS)], True) if text.endswith(GRAPHS) else (text, False)
        get(base)
        out.append(Kernel(base, graphs, mask_source))
    return tuple(dict.fromkeys(out))
