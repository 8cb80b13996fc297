"""Which layers a `region` kernel fuses, from the layer graph, and how each block's tile grows in a region.

Two layers chain when the first feeds only the second, the second reads only the first, and the
second keeps the first's resolution (a stride-1 conv on the same map): then one spatial mask serves
both and the second can run on the first's gathered tiles. A region is a maximal chain. Inside it the
halo grows layer by layer backwards: a layer's output tile is the block plus the halos of every layer
after it, so the region's one gather reads the tile the whole chain needs, and the last layer
computes exactly the block.
"""
from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from .traffic import RegionShape

FUSABLE_OPS = ("conv2d",)


def _chains_to(a: pd.Series, b: pd.Series) -> bool:
    return (a["op"] in FUSABLE_OPS and b["op"] in FUSABLE_OPS and b["stride_h"] == 1 and b["stride_w"] == 1
            and (b["in_h"], b["in_w"]) == (a["out_h"], a["out_w"]) == (b["out_h"], b["out_w"]))


def chains(layers: pd.DataFrame, graph: nx.DiGraph | None) -> np.ndarray:
    """(L,) region id per layer (layer-id order): maximal chains of the graph's fusable layer pairs."""
    layers = layers.sort_values("id").reset_index(drop=True)
    region = np.arange(len(layers))
    if graph is None:
        return region
    by_node = {n: d["layer_id"] for n, d in graph.nodes(data=True) if d.get("kind") == "layer"}
    row = {int(i): k for k, i in enumerate(layers["id"])}
    for node, layer_id in by_node.items():
        succ = list(graph.successors(node))
        if len(succ) != 1 or succ[0] not in by_node or graph.in_degree(succ[0]) != 1:
            continue
        a, b = row.get(int(layer_id)), row.get(int(by_node[succ[0]]))
        if a is not None and b is not None and _chains_to(layers.iloc[a], layers.iloc[b]):
            region[region == region[b]] = region[a]
    return _renumber(region)


def _renumber(region: np.ndarray) -> np.ndarray:
    _, first = np.unique(region, return_index=True)
    order = {r: k for k, r in enumerate(region[np.sort(first)])}
    return np.array([order[r] for r in region])


def linear_graph(layers: pd.DataFrame) -> nx.DiGraph:
    """input -> each layer in id order -> output: the graph of a chain of shapes (`--shape` x N)."""
    g = nx.DiGraph()
    names = ["input", *layers.sort_values("id")["name"], "output"]
    g.add_node("input", kind="input")
    for _, layer in layers.sort_values("id").iterrows():
        g.add_node(layer["name"], kind="layer", layer_id=int(layer["id"]), op=layer["op"])
    g.add_node("output", kind="output")
    g.add_edges_from(zip(names[:-1], names[1:]))
    return g


def region_shape(layers: pd.DataFrame, regions: np.ndarray) -> RegionShape:
    """Per layer (L, 1, 1): gathers its input, scatters its output, and the halo its output tile carries
    for the layers after it in the region (dilation x (kernel - 1) each, stride-1 layers)."""
    layers = layers.sort_values("id").reset_index(drop=True)
    L = len(layers)
    first, last = np.ones(L, bool), np.ones(L, bool)
    extra_h, extra_w = np.zeros(L), np.zeros(L)
    for r in np.unique(regions):
        members = np.flatnonzero(regions == r)
        first[members[1:]] = False
        last[members[:-1]] = False
        grow_h = (layers["dilation_h"] * (layers["kernel_h"] - 1)).to_numpy(float)[members]
        grow_w = (layers["dilation_w"] * (layers["kernel_w"] - 1)).to_numpy(float)[members]
        # the halo after a layer: the sum of the layers that follow it
        extra_h[members] = np.cumsum(grow_h[::-1])[::-1] - grow_h
        extra_w[members] = np.cumsum(grow_w[::-1])[::-1] - grow_w
    col = lambda a: a.reshape(-1, 1, 1)  # noqa: E731
    return RegionShape(first=col(first), last=col(last), extra_h=col(extra_h), extra_w=col(extra_w))
