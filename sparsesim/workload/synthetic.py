"""Workloads without a trace: the layer a kernel author has in mind, with synthetic masks.

Layers come from `--shape CIN,COUT,K,S,P,H,W` (H x W the input; repeated shapes form a chain, each
feeding the next) or a SCALE-Sim topology CSV (rows in order, chained where their shapes chain).
Masks, per frame at each layer's output resolution, cover a fraction `density` of the output pixels:
- `square`: SBNet's benchmark mask, a top-left rectangle of the map's aspect ratio,
  ceil(sqrt(d) H) x ceil(sqrt(d) W) (its `generate_top_left_mask`);
- `random`: 8 x 8-pixel cells switched on at random, round(d x cells) of them;
- `clustered`: blobs, the top d of a smooth random field (a coarse random grid, bilinearly upsampled).
Random and clustered masks are drawn at the first layer's output resolution from a fixed seed (new per
frame) and resampled to every other layer's, so a chain shares one mask as a network's motion would.
Frame 0 is dense, as a trace's first frame is.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import OptionError, require
from .blocks import BlockWorkload, from_masks
from .regions import chains, linear_graph
from .topology import read_topology

MASKS = ("square", "random", "clustered")
RANDOM_CELL = 8       # pixels per side of a `random` mask's cell
CLUSTER_GRID = 6      # coarse cells per side of a `clustered` mask's field (about that many blobs across)


def _layer(i: int, name: str, cin: int, cout: int, kh: int, kw: int, s: int, p: int, h: int, w: int) -> dict:
    oh, ow = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    return dict(id=i, name=name, op="conv2d", in_channels=cin, out_channels=cout, kernel_h=kh, kernel_w=kw,
                stride_h=s, stride_w=s, padding_h=p, padding_w=p, dilation_h=1, dilation_w=1, groups=1, in_h=h,
                in_w=w, out_h=oh, out_w=ow, dense_macs=oh * ow * cout * cin * kh * kw,
                weight_bytes=4 * (cout * cin * kh * kw + cout))


def parse_shape(text: str) -> tuple[int, ...]:
    """'CIN,COUT,K,S,P,H,W' -> seven integers (K, S, H, W >= 1, P >= 0), or a one-line error."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    ok = len(values) == 7 and min(values[:4] + values[5:]) >= 1 and values[4] >= 0
    require(ok, "shapes", f"must be CIN,COUT,K,S,P,H,W integers (K, S, H, W >= 1, P >= 0), got {text!r}")
    cin, cout, k, s, p, h, w = values
    require(h + 2 * p >= k and w + 2 * p >= k, "shapes", f"{text!r}: a {k}x{k} kernel does not fit a {h}x{w} input "
            f"padded by {p}")
    return values


def shape_layers(shapes: Sequence[str]) -> pd.DataFrame:
    """The layers of a chain of `--shape`s; each must take the previous one's output."""
    rows = []
    for i, text in enumerate(shapes):
        cin, cout, k, s, p, h, w = parse_shape(text)
        layer = _layer(i, f"shape{i}", cin, cout, k, k, s, p, h, w)
        if rows:
            prev = rows[-1]
            require((cin, h, w) == (prev["out_channels"], prev["out_h"], prev["out_w"]), "shapes",
                    f"{text!r} does not take the previous shape's output ({prev['out_channels']} channels, "
                    f"{prev['out_h']}x{prev['out_w']}): repeated shapes form a chain")
        rows.append(layer)
    return pd.DataFrame(rows)


def topology_layers(path: str) -> pd.DataFrame:
    """The conv layers of a SCALE-Sim topology CSV (unpadded: its IFMAP is given padded)."""
    return pd.DataFrame([_layer(i, c.name or f"layer{i}", c.channels, c.filters, c.filter_h, c.filter_w, c.stride, 0,
                                c.ifmap_h, c.ifmap_w) for i, c in enumerate(read_topology(path))])


def _square(density: float, h: int, w: int) -> np.ndarray:
    side = np.sqrt(density)
    out = np.zeros((h, w), bool)
    out[: int(np.ceil(side * h)), : int(np.ceil(side * w))] = True
    return out


def _top(field: np.ndarray, density: float) -> np.ndarray:
    """The round(d x size) largest cells of a field (exactly that many: the field is continuous)."""
    keep = int(round(density * field.size))
    out = np.zeros(field.size, bool)
    if keep:
        out[np.argpartition(field.reshape(-1), -keep)[-keep:]] = True
    return out.reshape(field.shape)


def _random(rng: np.random.Generator, density: float, h: int, w: int) -> np.ndarray:
    cells = _top(rng.random((-(-h // RANDOM_CELL), -(-w // RANDOM_CELL))), density)
    return np.repeat(np.repeat(cells, RANDOM_CELL, 0), RANDOM_CELL, 1)[:h, :w]


def _clustered(rng: np.random.Generator, density: float, h: int, w: int) -> np.ndarray:
    coarse = rng.random((CLUSTER_GRID + 1, CLUSTER_GRID + 1))
    ys, xs = np.linspace(0, CLUSTER_GRID, h), np.linspace(0, CLUSTER_GRID, w)
    rows = np.stack([np.interp(xs, np.arange(CLUSTER_GRID + 1), r) for r in coarse])        # (grid, w)
    field = np.stack([np.interp(ys, np.arange(CLUSTER_GRID + 1), c) for c in rows.T], axis=1)  # (h, w)
    return _top(field, density)


def _resample(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour resampling of a mask to another resolution."""
    rows = (np.arange(h) * mask.shape[0]) // h
    cols = (np.arange(w) * mask.shape[1]) // w
    return mask[np.ix_(rows, cols)]


def masks(layers: pd.DataFrame, density: float, kind: str, frames: int, seed: int = 0) -> list[np.ndarray]:
    """Per layer (layer-id order), its (frames, out_h, out_w) masks; frame 0 dense."""
    require(0 < density <= 1, "densities", f"must be in (0, 1], got {density:g}")
    require(kind in MASKS, "mask", f"must be one of {', '.join(MASKS)}, got {kind!r}")
    require(frames >= 1, "frames", f"must be >= 1, got {frames}")
    layers = layers.sort_values("id")
    sizes = list(zip(layers["out_h"], layers["out_w"]))
    rng = np.random.default_rng(seed)
    out = [np.ones((frames, h, w), bool) for h, w in sizes]
    for t in range(1, frames):
        if kind == "square":
            frame = [_square(density, h, w) for h, w in sizes]
        else:
            ref = (_random if kind == "random" else _clustered)(rng, density, *sizes[0])
            frame = [_resample(ref, h, w) for h, w in sizes]
        for stack, m in zip(out, frame):
            stack[t] = m
    return out


def workload(layers: pd.DataFrame, blocks: Sequence[int], density: float, kind: str, frames: int,
             seed: int = 0, name: str = "synthetic") -> BlockWorkload:
    """A block workload of synthetic masks over a chain of layers (fused regions where shapes chain)."""
    layers = layers.sort_values("id").reset_index(drop=True)
    return from_masks(f"{name}-{kind}-d{density:g}", layers, masks(layers, density, kind, frames, seed), blocks,
                      regions=chains(layers, linear_graph(layers)))


def check_source(trace: str | None, shapes: Sequence[str], topology: str | None) -> None:
    """Exactly one workload source: a trace, `--shape`s, or a topology."""
    given = [name for name, v in (("trace", trace), ("shapes", shapes), ("topology", topology)) if v]
    if len(given) != 1:
        both = f", not {' and '.join('a trace' if g == 'trace' else '{' + g + '}' for g in given)} together" \
            if given else ""
        raise OptionError(("shapes", "topology"), "give a trace directory, {shapes} CIN,COUT,K,S,P,H,W (repeatable) "
                          "or {topology} FILE.csv" + both)
