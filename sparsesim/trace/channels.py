"""Structured channel sparsity (SSL-style): which output channels of each conv layer to keep.

Importance is the filter's L1 norm (or a user's saved per-channel scale vectors). Two structural rules:
- before a pixel shuffle of factor r, output channels go in groups of r^2 (channel c*r^2 + i becomes
  sub-pixel i of output channel c), kept or pruned together;
- a layer's input channels are the union of what its producers keep (a residual add of a pruned branch
  onto an unpruned skip keeps every channel of the sum, as SSL's Residual Sparsity Connection does:
  the kept channels are gathered, computed and added back).
Layers that produce the model's output are never pruned: their channels are the output.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import torch
from torch import nn

from ..errors import OptionError, SparsesimError


@dataclass(frozen=True)
class ChannelMasks:
    out: dict[str, np.ndarray]     # layer -> bool (out_channels,)
    inp: dict[str, np.ndarray]     # layer -> bool (in_channels,)


def _importance(conv: nn.Module, scales: dict[str, np.ndarray] | None, name: str) -> np.ndarray:
    if scales is not None and name in scales:
        return np.abs(np.asarray(scales[name], dtype=np.float64))
    w = conv.weight.detach().double()
    dims = tuple(range(1, w.dim()))
    if isinstance(conv, nn.ConvTranspose2d):  # (in, out/groups, kh, kw): output channels on dim 1
        return w.abs().sum(dim=(0, 2, 3)).numpy()
    return w.abs().sum(dim=dims).numpy()


def _keep_top(score: np.ndarray, prune: float, group: int) -> np.ndarray:
    groups = score.reshape(-1, group).sum(axis=1) if group > 1 else score
    n_keep = max(1, int(round((1.0 - prune) * len(groups))))
    keep = np.zeros(len(groups), bool)
    keep[np.argsort(-groups, kind="stable")[:n_keep]] = True
    return np.repeat(keep, group) if group > 1 else keep


def load_scales(path: str | Path) -> dict[str, np.ndarray]:
    """A user's per-channel scale vectors: a torch state dict or .npz, layer name -> (out_channels,)."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            data = dict(np.load(path))
        else:
            data = {k: v.numpy() for k, v in torch.load(path, map_location="cpu", weights_only=True).items()}
    except FileNotFoundError:
        raise SparsesimError(f"channel scales not found: {path}") from None
    except Exception as e:  # numpy and torch raise many types for a file that is not theirs
        raise SparsesimError(f"cannot read channel scales {path}: {(str(e).splitlines() or [type(e).__name__])[0][:160]}") from None
    # Channels are kept by rank of their scale: NaN ranks arbitrarily and text does not rank at all.
    bad = [k for k, v in data.items() if not (np.issubdtype(np.asarray(v).dtype, np.number)
                                             and np.isfinite(np.asarray(v, dtype=float)).all())]
    if bad:
        raise SparsesimError(f"channel scales {path}: {str(bad[0])[:60]} must hold finite numbers")
    return data


def channel_masks(convs: dict[str, nn.Module], graph: nx.DiGraph, shuffles: dict[str, int], prune: float,
                  scales: dict[str, np.ndarray] | None = None) -> ChannelMasks:
    """convs: layer name -> conv, in data-flow order; shuffles: layer name -> pixel-shuffle factor of
    the shuffle its output feeds (if any); graph: the trace's layer graph."""
    if not 0.0 <= prune < 1.0:
        raise OptionError("gate.prune", f"must be in [0, 1), got {prune}")
    if scales is not None:
        wrong = [f"{n} {np.shape(v)} != ({convs[n].out_channels},)" for n, v in scales.items()
                 if n in convs and np.shape(v) != (convs[n].out_channels,)]
        unknown = sorted(set(scales) - set(convs))
        if wrong or unknown:
            raise SparsesimError("channel scales do not fit the model: " + "; ".join(
                p for p in (f"wrong shapes: {', '.join(wrong[:4])}" if wrong else "",
                            f"unknown layers: {', '.join(unknown[:4])}" if unknown else "") if p))
    outputs = set(graph.predecessors("output")) if "output" in graph else set()
    out = {}
    for name, conv in convs.items():
        if name in outputs or prune == 0:
            out[name] = np.ones(conv.out_channels, bool)
            continue
        group = shuffles.get(name, 1) ** 2
        if conv.out_channels % group:
            raise SparsesimError(f"layer {name}: {conv.out_channels} channels do not split into pixel-shuffle "
                                 f"groups of {group}")
        out[name] = _keep_top(_importance(conv, scales, name), prune, group)
    inp = {}
    for name, conv in convs.items():
        producers = [p for p in graph.predecessors(name) if p in out] if name in graph else []
        same = [out[p] for p in producers if len(out[p]) == conv.in_channels]
        if producers and len(same) == len(producers) and "input" not in graph.predecessors(name):
            inp[name] = np.logical_or.reduce(same)
        else:  # the model's input, a concatenation, or channels reshaped on the way: all of them
            inp[name] = np.ones(conv.in_channels, bool)
    return ChannelMasks(out=out, inp=inp)
