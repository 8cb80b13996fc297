"""Skip-Convolution semantics: the gated model really computes z_t = z_{t-1} + g * (W * r_t)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsesim.errors import SparsesimError
from sparsesim.trace.gates import GateConfig
from sparsesim.trace.skipconv import GatedModel, record_dataflow


class Toy(nn.Module):
    """Strided, dilated, transposed convs and a branch: every geometry the gates must handle."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, 2, 1)
        self.b = nn.Conv2d(8, 8, 3, 1, 2, dilation=2)
        self.c = nn.Conv2d(8, 8, 1)
        self.up = nn.ConvTranspose2d(8, 3, 4, 2, 1)

    def forward(self, x):
        a = torch.relu(self.a(x))
        return self.up(torch.relu(self.b(a)) + self.c(a))


def frames(n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, 16, 20, generator=g)
    out = []
    for _ in range(n):
        x = x.clone()
        x[..., 4:9, 5:12] += 0.2 * torch.randn(1, 3, 5, 7, generator=g)  # a local change per frame
        out.append(x)
    return out


def run(model: GatedModel, xs):
    outs, masks = [], []
    for t, x in enumerate(xs):
        model.begin_step(t)
        outs.append(model.module(x))
        masks.append([layer.state.mask.clone() for layer in model.layers])
    return outs, masks


@pytest.fixture
def toy():
    torch.manual_seed(0)
    return Toy().eval()


@torch.inference_mode()
def test_epsilon_zero_equals_dense_and_masks_are_all_ones(toy):
    xs = frames(8)
    dense = [toy(x) for x in xs]
    outs, masks = run(GatedModel.wrap(toy, GateConfig("input-norm", threshold=0.0)), xs)
    for o, d in zip(outs, dense):
        torch.testing.assert_close(o, d, atol=1e-5, rtol=1e-5)
    assert all(m.all() for frame in masks for m in frame)


@torch.inference_mode()
def test_huge_epsilon_empties_masks_after_the_first_frame(toy):
    outs, masks = run(GatedModel.wrap(toy, GateConfig("input-norm", threshold=1e9)), frames(5))
    assert all(m.all() for m in masks[0])
    assert not any(m.any() for frame in masks[1:] for m in frame)
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0])  # nothing recomputed: the output stays frozen


@torch.inference_mode()
def test_gated_output_is_the_previous_output_plus_the_gated_update():
    conv = nn.Conv2d(3, 4, 3, 1, 1)
    x0, x1 = frames(2)
    model = GatedModel.wrap(nn.Sequential(conv), GateConfig("input-norm", threshold=0.02))
    (z0, z1), masks = run(model, [x0, x1])
    g = masks[1][0]
    assert 0 < g.float().mean() < 1  # a real partial gate
    # where the gate is on: the dense output of the new frame; off: the previous output
    expected = torch.where(g, conv(x1), conv(x0))
    torch.testing.assert_close(z1, expected, atol=1e-5, rtol=1e-5)


@torch.inference_mode()
def test_block_gates_are_constant_over_blocks(toy):
    _, masks = run(GatedModel.wrap(toy, GateConfig("input-norm", threshold=0.01, block=4)), frames(3))
    for m in masks[2]:
        m = m[0, 0]
        h, w = m.shape
        for i in range(0, h, 4):
            for j in range(0, w, 4):
                block = m[i:i + 4, j:j + 4]
                assert block.all() or not block.any()


@torch.inference_mode()
def test_reset_every_k_computes_dense_frames(toy):
    _, masks = run(GatedModel.wrap(toy, GateConfig("input-norm", threshold=1e9, reset_every=3)), frames(7))
    dense_frames = [t for t, frame in enumerate(masks) if all(m.all() for m in frame)]
    assert dense_frames == [0, 3, 6]


@torch.inference_mode()
def test_dataflow_graph_follows_the_tensors(toy):
    model = GatedModel.wrap(toy, GateConfig())
    x = frames(1)[0]
    model.begin_step(0)
    with record_dataflow(model.layers, [x]) as flow:
        out = model.module(x)
    layers = [layer.layer_info(i) for i, layer in enumerate(model.layers)]
    graph = flow.graph(out, layers)
    assert set(graph.edges) == {("input", "a"), ("a", "b"), ("a", "c"), ("b", "up"), ("c", "up"), ("up", "output")}
    assert list(graph.nodes)[0] == "input" and list(graph.nodes)[-1] == "output"


@torch.inference_mode()
def test_layer_info_counts_macs_and_bytes(toy):
    model = GatedModel.wrap(toy, GateConfig())
    model.begin_step(0)
    model.module(frames(1)[0])
    a, _, _, up = (layer.layer_info(i) for i, layer in enumerate(model.layers))
    assert (a.out_h, a.out_w) == (8, 10) and a.dense_macs == 8 * 10 * 8 * 3 * 9
    assert up.op == "conv_transpose2d" and (up.out_h, up.out_w) == (16, 20)
    assert up.dense_macs == 8 * 10 * 8 * 3 * 16 and up.weight_bytes == (8 * 3 * 16 + 3) * 4


def test_a_layer_called_twice_per_frame_is_refused():
    conv = nn.Conv2d(3, 3, 1)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv

        def forward(self, x):
            return self.conv(self.conv(x))

    model = GatedModel.wrap(Twice(), GateConfig())
    model.begin_step(0)
    with pytest.raises(SparsesimError, match="ran twice"):
        model.module(torch.rand(1, 3, 4, 4))
