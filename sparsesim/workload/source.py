"""Where a workload comes from: a trace, or layers with synthetic masks (`--shape`s or a topology at one
or more densities). The estimate and the simulator read it the same way."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from .. import trace as trace_format
from ..errors import SparsesimError, require
from . import synthetic
from .blocks import BlockWorkload, from_masks, kept_channels
from .regions import chains, linear_graph

SYNTHETIC_FRAMES = 4   # frames of a synthetic workload when --frames is not given: frame 0 dense, 3 masked


@dataclass(frozen=True)
class Masks:
    """One workload's layers and each layer's (T, out_h, out_w) masks, with its fused regions."""
    name: str
    layers: pd.DataFrame
    masks: list[np.ndarray]
    frames: np.ndarray
    regions: np.ndarray


@dataclass(frozen=True)
class Source:
    trace: str | None = None
    shapes: Sequence[str] = ()
    topology: str | None = None
    densities: Sequence[float] = (0.1,)
    mask: str = "square"
    frames: int | None = None
    seed: int = 0

    def validate(self) -> None:
        synthetic.check_source(self.trace, self.shapes, self.topology)
        require(self.frames is None or self.frames >= 1, "frames", f"must be >= 1, got {self.frames}")
        if self.trace is None:
            require(bool(self.densities), "densities", "names no density")
            for d in self.densities:
                require(0 < d <= 1, "densities", f"must be in (0, 1], got {d:g}")
            require(self.mask in synthetic.MASKS, "mask", f"must be one of {', '.join(synthetic.MASKS)}, got {self.mask!r}")
            if self.shapes:
                synthetic.shape_layers(self.shapes)   # a malformed shape fails before any work

    @property
    def label(self) -> str:
        if self.trace is not None:
            return Path(self.trace).name
        return f"{self._stem()}-{self.mask}"

    def _stem(self) -> str:
        return "shape" if self.shapes else Path(self.topology).stem

    def open_trace(self) -> "trace_format.Trace | None":
        return trace_format.open(self.trace) if self.trace is not None else None

    def _layers(self) -> pd.DataFrame:
        return synthetic.shape_layers(self.shapes) if self.shapes else synthetic.topology_layers(self.topology)

    def block_workloads(self, blocks: Sequence[int], tr: "trace_format.Trace | None" = None) -> list[BlockWorkload]:
        """One workload (a trace), or one per density (synthetic masks)."""
        if self.trace is not None:
            from .blocks import from_trace
            return [from_trace(tr or self.open_trace(), blocks, self.frames)]
        layers = self._layers()
        return [synthetic.workload(layers, blocks, d, self.mask, self.frames or SYNTHETIC_FRAMES, self.seed,
                                   self._stem()) for d in self.densities]

    def layer_masks(self, names: Sequence[str] | None = None) -> Iterator[Masks]:
        """Each workload's selected layers and their masks (the simulator's input)."""
        if self.trace is not None:
            tr = self.open_trace()
            layers = select_layers(kept_channels(tr.layers_df.sort_values("id").reset_index(drop=True), tr.channels),
                                   names)
            masks = trace_masks(tr, layers, self.frames)
            stacks = [masks[i] for i in layers["id"]]
            yield Masks(tr.path.name, layers, stacks, np.arange(stacks[0].shape[0]), chains(layers, tr.graph))
            return
        layers = select_layers(self._layers(), names)
        for d in self.densities:
            stacks = synthetic.masks(layers, d, self.mask, self.frames or SYNTHETIC_FRAMES, self.seed)
            name = f"{self._stem()}-{self.mask}-d{d:g}"
            yield Masks(name, layers, stacks, np.arange(stacks[0].shape[0]), chains(layers, linear_graph(layers)))


def trace_masks(tr: "trace_format.Trace", layers: pd.DataFrame, frames: int | None) -> dict[int, np.ndarray]:
    """Every selected layer's masks, (T, H, W) each, read chunk by chunk once."""
    wanted = set(layers["id"])
    per_layer: dict[int, list[np.ndarray]] = {i: [] for i in wanted}
    for m in tr.masks(list(wanted)):
        if frames is not None and m.frame >= frames:
            break
        per_layer[m.layer].append(m.mask)
    n = min(len(v) for v in per_layer.values())
    if n == 0:
        raise SparsesimError(f"trace {tr.path} holds no frames")
    return {i: np.stack(v[:n]) for i, v in per_layer.items()}


def select_layers(layers: pd.DataFrame, names: Sequence[str] | None) -> pd.DataFrame:
    if not names:
        return layers
    keep = []
    for name in names:
        hit = layers[(layers["name"] == name) | (layers["id"].astype(str) == name)]
        if hit.empty:
            raise SparsesimError(f"no layer {name!r} in the workload (see `sparsesim info TRACE`)")
        keep.append(hit)
    return pd.concat(keep).drop_duplicates("id").sort_values("id").reset_index(drop=True)


def masks_workload(m: Masks, blocks: Sequence[int]) -> BlockWorkload:
    return from_masks(m.name, m.layers, m.masks, blocks, m.frames, m.regions)
