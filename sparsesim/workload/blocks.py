"""Trace + block size -> per layer, per frame block occupancy (the BlockWorkload).

A B x B block of a layer's *output* is active when any output location in it is gated on. Blocks are
aligned to the top-left corner; edge blocks are clipped to the map, and `active_pixels` counts only the
in-bounds output locations that active blocks cover. `block_map` is the one place masks become
blocks: the cost model, the simulators and the measured kernels all count from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import SparsesimError
from ..trace.format import Trace
from .geometry import halo_tile
from .regions import chains


@dataclass(frozen=True)
class BlockWorkload:
    name: str
    layers: pd.DataFrame            # layers.parquet rows, in layer-id order
    frames: np.ndarray              # (T,) frame ids
    blocks: tuple[int, ...]         # (Nb,) block sizes
    active_blocks: np.ndarray       # (L, T, Nb) active output blocks
    active_pixels: np.ndarray       # (L, T, Nb) in-bounds output pixels covered by active blocks
    total_blocks: np.ndarray        # (L, Nb)
    mask_pixels: np.ndarray         # (L, T) output locations the gate turned on
    regions: np.ndarray | None = None          # (L,) fused-region id per layer (None: every layer alone)
    region_blocks: np.ndarray | None = None    # (L, T, Nb) active blocks of the union of its region's masks
    region_pixels: np.ndarray | None = None    # (L, T, Nb) in-bounds pixels they cover

    @property
    def density(self) -> np.ndarray:
        """Fraction of active blocks, (L, T, Nb)."""
        return self.active_blocks / self.total_blocks[:, None, :]


def block_counts(h: int, w: int, block: int) -> np.ndarray:
    """In-bounds pixel count of every block of an h x w map, (ceil(h/b), ceil(w/b))."""
    rows = np.minimum(block, h - np.arange(0, h, block))
    cols = np.minimum(block, w - np.arange(0, w, block))
    return np.outer(rows, cols)


def block_map(masks: np.ndarray, block: int) -> np.ndarray:
    """(T, H, W) gate masks -> (T, ceil(H/B), ceil(W/B)) active output blocks."""
    t, h, w = masks.shape
    hb, wb = -(-h // block), -(-w // block)
    padded = np.zeros((t, hb * block, wb * block), dtype=bool)
    padded[:, :h, :w] = masks
    return padded.reshape(t, hb, block, wb, block).any(axis=(2, 4))


def map_occupancy(maps: np.ndarray, block: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, hb, wb) block maps of an h x w output -> per frame (active blocks, in-bounds pixels they cover)."""
    pixels = (maps * block_counts(h, w, block)).sum(axis=(1, 2))
    return maps.sum(axis=(1, 2)), pixels


def occupancy(masks: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W) bool masks -> per frame (active blocks, in-bounds pixels they cover)."""
    return map_occupancy(block_map(masks, block), block, *masks.shape[1:])


def input_coverage(maps: np.ndarray, block: int, layer) -> np.ndarray | None:
    """Input pixels the active blocks of a conv read, halos shared where blocks touch: (T,) counts.
    None for a transposed conv (it scatters: no simple footprint, nothing shared)."""
    if layer["op"] == "conv_transpose2d":
        return None
    t = maps.shape[0]
    out_h, out_w, in_h, in_w = (int(layer[k]) for k in ("out_h", "out_w", "in_h", "in_w"))
    active = np.repeat(np.repeat(maps, block, axis=1), block, axis=2)[:, :out_h, :out_w]
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = ((int(layer[f"{k}_h"]), int(layer[f"{k}_w"]))
                                              for k in ("kernel", "stride", "padding", "dilation"))
    # each kernel offset marks the input pixels it reads for every active output (padded coordinates)
    cover = np.zeros((t, max(halo_tile(out_h, kh, sh, dh), in_h + ph), max(halo_tile(out_w, kw, sw, dw), in_w + pw)),
                     dtype=bool)
    for i in range(kh):
        for j in range(kw):
            cover[:, i * dh: i * dh + (out_h - 1) * sh + 1: sh, j * dw: j * dw + (out_w - 1) * sw + 1: sw] |= active
    return cover[:, ph: ph + in_h, pw: pw + in_w].sum(axis=(1, 2)).astype(np.float64)



def from_masks(name: str, layers: pd.DataFrame, masks: Sequence[np.ndarray], blocks: Iterable[int],
               frames: np.ndarray | None = None, regions: np.ndarray | None = None) -> BlockWorkload:
    """Workload from per-layer (T, out_h, out_w) bool mask stacks (layer-id order); `regions` (L,) groups
    layers that a region strategy fuses (their blocks are the union of their masks')."""
    blocks = tuple(sorted(set(int(b) for b in blocks)))
    if not blocks or blocks[0] < 1:
        raise SparsesimError(f"block sizes must be >= 1, got {blocks}")
    layers = layers.sort_values("id").reset_index(drop=True)
    if len(masks) != len(layers):
        raise SparsesimError(f"{len(masks)} mask stacks for {len(layers)} layers")
    n_frames = masks[0].shape[0] if masks else 0
    shape = (len(layers), n_frames, len(blocks))
    active_blocks, active_pixels = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    total = np.zeros((len(layers), len(blocks)), np.int64)
    for i, (stack, layer) in enumerate(zip(masks, layers.itertuples())):
        if stack.shape[1:] != (layer.out_h, layer.out_w):
            raise SparsesimError(f"layer {layer.name}: masks {stack.shape[1:]} != output {(layer.out_h, layer.out_w)}")
        for j, b in enumerate(blocks):
            active_blocks[i, :, j], active_pixels[i, :, j] = occupancy(stack, b)
            total[i, j] = total_blocks(layer.out_h, layer.out_w, b)
    mask_pixels = np.stack([m.reshape(m.shape[0], -1).sum(axis=1) for m in masks]) if masks else np.zeros((0, 0))
    regions = np.arange(len(layers)) if regions is None else np.asarray(regions)
    region_blocks, region_pixels = active_blocks.copy(), active_pixels.copy()
    for r in np.unique(regions):
        members = np.flatnonzero(regions == r)
        if len(members) > 1:
            union = np.logical_or.reduce([masks[i] for i in members])
            for j, b in enumerate(blocks):
                region_blocks[members, :, j], region_pixels[members, :, j] = occupancy(union, b)
    return BlockWorkload(name=name, layers=layers, frames=np.arange(n_frames) if frames is None else frames,
                         blocks=blocks, active_blocks=active_blocks, active_pixels=active_pixels,
                         total_blocks=total, mask_pixels=mask_pixels, regions=regions,
                         region_blocks=region_blocks, region_pixels=region_pixels)


def total_blocks(h: int, w: int, block: int) -> int:
    return (-(-h // block)) * (-(-w // block))


def from_block_maps(name: str, layers: pd.DataFrame, maps: Sequence[np.ndarray], block: int,
                    mask_pixels: np.ndarray, frames: np.ndarray | None = None,
                    regions: np.ndarray | None = None) -> BlockWorkload:
    """Workload of one block size from per-layer (T, hb, wb) block maps (layer-id order), counted
    once (the simulator keeps the maps and needs the counts beside them); `regions` as in `from_masks`."""
    layers = layers.sort_values("id").reset_index(drop=True)
    n_frames = maps[0].shape[0] if maps else 0
    as_grid = lambda values: np.asarray(values, np.int64).reshape(len(layers), n_frames, 1)  # noqa: E731
    regions = np.arange(len(layers)) if regions is None else np.asarray(regions)

    def counts(per_layer: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        c = [map_occupancy(m, block, layer.out_h, layer.out_w) for m, layer in zip(per_layer, layers.itertuples())]
        return as_grid([x[0] for x in c]), as_grid([x[1] for x in c])

    active_blocks, active_pixels = counts(maps)
    region_blocks, region_pixels = counts(region_maps(maps, regions))
    total = np.array([[total_blocks(layer.out_h, layer.out_w, block)] for layer in layers.itertuples()], np.int64)
    return BlockWorkload(name=name, layers=layers, frames=np.arange(n_frames) if frames is None else frames,
                         blocks=(block,), active_blocks=active_blocks, active_pixels=active_pixels,
                         total_blocks=total.reshape(-1, 1), mask_pixels=mask_pixels, regions=regions,
                         region_blocks=region_blocks, region_pixels=region_pixels)


def region_maps(maps: Sequence[np.ndarray], regions: np.ndarray) -> list[np.ndarray]:
    """Each layer's block maps replaced by the union over its region (a block any member needs)."""
    out = list(maps)
    for r in np.unique(regions):
        members = np.flatnonzero(regions == r)
        if len(members) > 1:
            union = np.logical_or.reduce([maps[i] for i in members])
            for i in members:
                out[i] = union
    return out


def from_trace(trace: Trace, blocks: Iterable[int], max_frames: int | None = None) -> BlockWorkload:
    """Read every mask of a trace once (chunk by chunk) and count active blocks per block size."""
    layers = trace.layers_df.sort_values("id").reset_index(drop=True)
    per_layer: list[list[np.ndarray]] = [[] for _ in range(len(layers))]
    frames: list[int] = []
    for m in trace.masks():
        if max_frames is not None and m.frame >= max_frames:
            break
        if m.layer == 0:
            frames.append(m.frame)
        per_layer[m.layer].append(m.mask)
    if not frames:
        raise SparsesimError(f"trace {trace.path} holds no frames")
    stacks = [np.stack(ms[: len(frames)]) for ms in per_layer]
    layers = kept_channels(layers, trace.channels)
    return from_masks(trace.path.name, layers, stacks, blocks, np.asarray(frames), chains(layers, trace.graph))


def kept_channels(layers: pd.DataFrame, channels: pd.DataFrame | None) -> pd.DataFrame:
    """With structured channel sparsity, a layer computes only its kept channels: its shape, MACs and
    weights shrink accordingly (so every cost downstream charges only those)."""
    if channels is None:
        return layers
    kept = channels.set_index("layer")[["kept_out", "kept_in"]]
    out = layers.copy()
    k_out = kept["kept_out"].reindex(out["id"]).to_numpy()
    k_in = kept["kept_in"].reindex(out["id"]).to_numpy()
    scale = (k_out / out["out_channels"].to_numpy()) * (k_in / out["in_channels"].to_numpy())
    out["dense_macs"] = np.round(out["dense_macs"].to_numpy() * scale).astype(np.int64)
    out["weight_bytes"] = np.round(out["weight_bytes"].to_numpy() * scale).astype(np.int64)
    out["out_channels"], out["in_channels"] = k_out, k_in
    return out
