"""Structured channel sparsity (SSL-style): grouping before pixel shuffles, residual unions, costs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sparsesim import trace
from sparsesim.trace.channels import channel_masks
from sparsesim.cli import main
from sparsesim.trace.gates import GateConfig
from sparsesim.trace.skipconv import GatedModel, record_dataflow


class Handmade(nn.Module):
    """conv a -> residual branch b added back -> 1x1 c -> d feeding a pixel shuffle (x2) -> output conv e."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, 1, 1)
        self.b = nn.Conv2d(8, 8, 3, 1, 1)
        self.c = nn.Conv2d(8, 8, 1)
        self.d = nn.Conv2d(8, 16, 3, 1, 1)
        self.e = nn.Conv2d(4, 3, 3, 1, 1)

    def forward(self, x):
        x = torch.relu(self.a(x))
        y = x + torch.relu(self.b(x))
        return self.e(F.pixel_shuffle(self.d(self.c(y)), 2))


def masks_of(model: nn.Module, prune: float):
    gated = GatedModel.wrap(model, GateConfig("channel", prune=prune))
    x = torch.rand(1, 3, 10, 12)
    gated.begin_step(0)
    with record_dataflow(gated.layers, [x]) as flow:
        out = model(x)
    layers = [layer.layer_info(i) for i, layer in enumerate(gated.layers)]
    graph = flow.graph(out, layers)
    return channel_masks({l.name: l.conv for l in gated.layers}, graph, flow.shuffles, prune), flow


@pytest.mark.parametrize("prune", [0.25, 0.5, 0.75])
def test_pixel_shuffle_groups_and_residual_unions(prune):
    torch.manual_seed(0)
    masks, flow = masks_of(Handmade().eval(), prune)
    assert flow.shuffles == {"d": 2}
    d = masks.out["d"].reshape(4, 4)                       # 16 channels in groups of 2^2
    assert (d.all(axis=1) | ~d.any(axis=1)).all() and d.any()
    np.testing.assert_array_equal(masks.inp["c"], masks.out["b"] | masks.out["a"])  # the residual add
    assert masks.out["e"].all()                             # produces the output: never pruned
    assert masks.inp["e"].all() and masks.inp["a"].all()    # after a shuffle, and the model's input
    kept = masks.out["a"].sum()
    assert kept == max(1, round((1 - prune) * 8))


def test_pruned_channels_stay_zero_and_the_skip_keeps_its_own():
    torch.manual_seed(1)
    model = Handmade().eval()
    masks, _ = masks_of(model, 0.5)
    gated = GatedModel.wrap(Handmade().eval(), GateConfig("channel", prune=0.5))
    for layer in gated.layers:
        layer.channel_mask = torch.from_numpy(masks.out[layer.name]).float().view(1, -1, 1, 1)
    outputs = {}
    for layer in gated.layers:
        layer.register_forward_hook(lambda m, a, out, name=layer.name: outputs.__setitem__(name, out))
    gated.begin_step(0)
    with torch.inference_mode():
        gated.module(torch.rand(1, 3, 10, 12))
    for name in ("a", "b", "c", "d"):
        pruned = ~masks.out[name]
        assert (outputs[name][:, torch.from_numpy(pruned)] == 0).all()


def test_channel_pruned_trace_and_its_costs(tmp_path, small_video, capsys):
    assert main(["trace", str(small_video), "--model", "realesr-compact", "--gate", "channel", "--prune", "0.5",
                 "--frames", "4", "-o", str(tmp_path / "t"), "-q"]) == 0
    t = trace.open(tmp_path / "t")
    ch = t.channels.set_index("name")
    assert ch.loc["body.3", "kept_out"] == 32 and ch.loc["body.3", "kept_in"] == 32
    assert ch.loc["last", "kept_out"] == 48                 # feeds the output through the pixel shuffle
    assert t.meta["gate"]["label"] == "channel-p0.5"
    assert np.isfinite(t.frames["psnr_db"]).all()           # pruned output differs from the dense one
    out = tmp_path / "est.parquet"
    assert main(["estimate", str(tmp_path / "t"), "--hw", "h100", "--block", "8", "-o", str(out)]) == 0
    rows = pd.read_parquet(out)
    layers = t.layers_df.set_index("name")
    body3 = rows[rows["layer"] == "body.3"]["macs_dense"].iloc[0]
    assert body3 == layers.loc["body.3", "dense_macs"] // 4  # half the inputs x half the outputs


def test_combined_with_a_spatial_gate(tmp_path, small_video):
    assert main(["trace", str(small_video), "--model", "realesr-compact", "--threshold", "0.05", "--prune", "0.25",
                 "--frames", "4", "-o", str(tmp_path / "t"), "-q"]) == 0
    t = trace.open(tmp_path / "t")
    # the default spatial gate (delta since issue 17's defaults) beside the channel pruning
    assert t.meta["gate"]["label"] == "delta-rel-e0.05-p0.25" and t.channels is not None
    assert (t.active.iloc[1:].to_numpy() < 1).any()


def test_user_scale_vectors_choose_the_channels(tmp_path, small_video):
    torch.manual_seed(2)
    model = Handmade().eval()
    scales = {"a": np.arange(8.0), "b": -np.arange(8.0), "c": np.ones(8), "d": np.arange(16.0)}
    gated = GatedModel.wrap(model, GateConfig("channel", prune=0.5))
    x = torch.rand(1, 3, 10, 12)
    gated.begin_step(0)
    with record_dataflow(gated.layers, [x]) as flow:
        out = model(x)
    graph = flow.graph(out, [layer.layer_info(i) for i, layer in enumerate(gated.layers)])
    masks = channel_masks({l.name: l.conv for l in gated.layers}, graph, flow.shuffles, 0.5, scales)
    assert masks.out["a"].tolist() == [False] * 4 + [True] * 4          # the largest scales
    assert masks.out["b"].tolist() == [False] * 4 + [True] * 4          # magnitudes, not signs
    assert masks.out["d"].tolist() == [False] * 8 + [True] * 8          # whole pixel-shuffle groups
    with pytest.raises(Exception, match="wrong shapes: a"):
        channel_masks({l.name: l.conv for l in gated.layers}, graph, flow.shuffles, 0.5, {"a": np.ones(3)})
    path = tmp_path / "scales.npz"
    np.savez(path, **{"body.0": np.arange(64.0)})
    assert main(["trace", str(small_video), "--model", "realesr-compact", "--gate", "channel", "--channel-scales",
                 str(path), "--prune", "0.5", "--frames", "2", "-o", str(tmp_path / "t"), "-q"]) == 0
    kept = trace.open(tmp_path / "t").channels.set_index("name").loc["body.0", "out_mask"]
    assert kept.tolist() == [False] * 32 + [True] * 32
