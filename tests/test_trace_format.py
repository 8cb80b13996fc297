"""The on-disk trace: round-trip, lazy reading, schema versions, incomplete traces."""
from __future__ import annotations

import json
import os

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsesim import trace
from sparsesim.errors import TraceError
from sparsesim.trace import LayerInfo, TraceWriter


def layer(i: int, h: int, w: int) -> LayerInfo:
    return LayerInfo(id=i, name=f"layer{i}", op="conv2d", in_channels=3, out_channels=4, kernel_h=3,
                     kernel_w=3, stride_h=1, stride_w=1, padding_h=1, padding_w=1, dilation_h=1,
                     dilation_w=1, groups=1, in_h=h, in_w=w, out_h=h, out_w=w,
                     dense_macs=h * w * 4 * 3 * 9, weight_bytes=4 * 3 * 9 * 4)


def write_trace(path, shapes, masks, chunk_frames, complete=True):
    layers = [layer(i, h, w) for i, (h, w) in enumerate(shapes)]
    graph = nx.DiGraph([("input", "layer0")] + [(f"layer{i}", f"layer{i + 1}") for i in range(len(layers) - 1)])
    writer = TraceWriter(path, {"model": {"name": "toy"}, "gate": {"kind": "input-norm"}}, chunk_frames)
    writer.set_layers(layers, graph)
    for t, frame_masks in enumerate(masks):
        writer.add_frame(t, frame_masks, {"psnr_db": float(t), "reset": t == 0})
    writer.close(complete, "complete" if complete else "interrupted")
    return layers, graph


@st.composite
def traces(draw):
    shapes = draw(st.lists(st.tuples(st.integers(1, 23), st.integers(1, 29)), min_size=1, max_size=4))
    n = draw(st.integers(1, 9))
    density = draw(st.floats(0.0, 1.0))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    masks = [[rng.random(s) < density for s in shapes] for _ in range(n)]
    return shapes, masks, draw(st.integers(1, 4))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(traces())
def test_round_trip_gives_the_same_masks_and_tables(tmp_path_factory, case):
    shapes, masks, chunk = case
    path = tmp_path_factory.mktemp("trace") / "t"
    layers, graph = write_trace(path, shapes, masks, chunk)
    t = trace.open(path)
    assert t.complete and t.num_frames == len(masks)
    assert t.layers == layers
    read = list(t.masks())
    assert [(m.frame, m.layer) for m in read] == [(f, layer.id) for f in range(len(masks)) for layer in layers]
    for m in read:
        np.testing.assert_array_equal(m.mask, masks[m.frame][m.layer])
    expected = pd.DataFrame([[m.mean() for m in frame] for frame in masks], columns=[layer.name for layer in layers])
    np.testing.assert_allclose(t.active.to_numpy(), expected.to_numpy())
    assert list(t.frames["psnr_db"]) == [float(i) for i in range(len(masks))]
    assert nx.utils.edges_equal(t.graph.edges, graph.edges)
    np.testing.assert_array_equal(t.layer_masks(layers[-1].name), np.stack([f[-1] for f in masks]))


def test_files_read_with_pandas_and_numpy_alone(tmp_path):
    rng = np.random.default_rng(1)
    masks = [[rng.random((5, 7)) < 0.5] for _ in range(3)]
    write_trace(tmp_path / "t", [(5, 7)], masks, chunk_frames=2)
    layers = pd.read_parquet(tmp_path / "t" / "layers.parquet")
    chunks = pd.concat(pd.read_parquet(p) for p in sorted((tmp_path / "t" / "masks").glob("*.parquet")))
    h, w = layers.loc[0, ["out_h", "out_w"]]
    for row in chunks.itertuples():
        mask = np.unpackbits(np.frombuffer(row.bits, np.uint8), count=h * w).reshape(h, w).astype(bool)
        np.testing.assert_array_equal(mask, masks[row.frame][row.layer])


def test_incomplete_trace_is_marked_and_readable(tmp_path):
    masks = [[np.ones((4, 4), bool)] for _ in range(5)]
    write_trace(tmp_path / "t", [(4, 4)], masks, chunk_frames=2, complete=False)
    t = trace.open(tmp_path / "t")
    assert not t.complete and t.meta["status"] == "interrupted"
    assert len(list(t.masks())) == 5 and len(t.frames) == 5


@pytest.mark.parametrize("version,hint", [(trace.SCHEMA_VERSION + 1, "upgrade sparsesim"),
                                          (trace.SCHEMA_VERSION - 1, "re-run")])
def test_other_schema_versions_give_a_clear_error(tmp_path, version, hint):
    write_trace(tmp_path / "t", [(2, 2)], [[np.ones((2, 2), bool)]], 1)
    meta_path = tmp_path / "t" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "schema_version": version}))
    with pytest.raises(TraceError, match=hint):
        trace.open(tmp_path / "t")


def test_not_a_trace(tmp_path):
    with pytest.raises(TraceError, match="no trace directory"):
        trace.open(tmp_path / "missing")
    with pytest.raises(TraceError, match="no meta.json"):
        trace.open(tmp_path)


def test_no_temporary_files_remain(tmp_path):
    write_trace(tmp_path / "t", [(3, 3)], [[np.zeros((3, 3), bool)]] * 4, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]
    assert not [p for p in (tmp_path / "t").rglob("*") if p.name.startswith(".")]


def test_partials_of_killed_writers_are_cleaned_up(tmp_path):
    stale = tmp_path / ".t.partial-999999999-abcd"  # no such process
    stale.mkdir()
    live = tmp_path / f".t.partial-{os.getpid()}-efgh"  # this process: still writing
    live.mkdir()
    write_trace(tmp_path / "t", [(2, 2)], [[np.ones((2, 2), bool)]], 1)
    assert not stale.exists() and live.exists()
