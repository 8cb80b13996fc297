"""Gate functions: receptive-field pooling, block unions, validation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sparsesim.errors import SparsesimError
from sparsesim.trace.gates import GateConfig, block_union, receptive_mean, residual_gate


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 30), w=st.integers(1, 30), b=st.sampled_from([1, 2, 3, 4, 8]),
       density=st.floats(0, 1), seed=st.integers(0, 1000))
def test_block_gate_is_the_union_over_each_block(h, w, b, density, seed):
    gate = torch.from_numpy(np.random.default_rng(seed).random((1, 1, h, w)) < density)
    out = block_union(gate, b)[0, 0].numpy()
    g = gate[0, 0].numpy()
    assert out.shape == (h, w)
    for i in range(0, h, b):
        for j in range(0, w, b):
            block = out[i:i + b, j:j + b]
            assert block.all() == g[i:i + b, j:j + b].any() and (block.all() or not block.any())


@pytest.mark.parametrize("conv", [nn.Conv2d(3, 4, 3, 1, 1), nn.Conv2d(3, 4, 3, 2, 1), nn.Conv2d(3, 4, 5, 1, 2),
                                  nn.Conv2d(3, 4, 1)])
def test_receptive_mean_is_avgpool_with_the_convs_geometry(conv):
    norm = torch.rand(1, 1, 17, 13)
    expected = F.avg_pool2d(norm, conv.kernel_size, conv.stride, conv.padding, count_include_pad=True)
    torch.testing.assert_close(receptive_mean(norm, conv), expected)


def test_transposed_conv_gate_lives_at_output_resolution_and_follows_the_change():
    conv = nn.ConvTranspose2d(2, 3, 4, 2, 1)
    residual = torch.zeros(1, 2, 8, 8)
    residual[..., 2, 3] = 1.0
    gate = residual_gate(residual, conv, GateConfig("input-norm", threshold=1e-6))
    assert gate.shape == conv(residual).shape[:1] + (1,) + conv(residual).shape[2:]
    ys, xs = np.nonzero(gate[0, 0].numpy())
    assert 2 <= ys.min() and ys.max() <= 7 and 4 <= xs.min() and xs.max() <= 9  # input (2,3) scatters to rows 3..6±1


def test_output_norm_scales_by_the_mean_weight_magnitude():
    conv = nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(0.5)
    residual = torch.full((1, 1, 2, 2), 0.3)
    assert residual_gate(residual, conv, GateConfig("input-norm", 0.2)).all()
    assert not residual_gate(residual, conv, GateConfig("output-norm", 0.2)).any()  # 0.5*0.3 < 0.2


@pytest.mark.parametrize("kwargs,match", [({"threshold": -0.1}, "threshold"), ({"threshold": float("nan")}, "threshold"),
                                          ({"kind": "magic"}, "unknown gate"), ({"block": 0}, "gate-block"),
                                          ({"reset_every": -1}, "reset-every")])
def test_bad_gate_settings_are_refused(kwargs, match):
    with pytest.raises(SparsesimError, match=match):
        GateConfig(**kwargs)


def test_labels_and_resets():
    # absolute thresholds keep the labels traces had before threshold modes existed; relative ones say so
    assert GateConfig("input-norm", 0.05, 4, 8, threshold_mode="absolute").label == "input-norm-e0.05-b4-r8"
    assert GateConfig("input-norm", 0.05, 4, 8).label == "input-norm-rel-e0.05-b4-r8"
    assert GateConfig("delta", 0.1).label == "delta-rel-e0.1" and GateConfig("uncertainty").label == "uncertainty-k0.35"
    cfg = GateConfig(reset_every=4)
    assert [cfg.is_reset(t) for t in range(6)] == [True, False, False, False, True, False]
    assert not GateConfig().is_reset(100) and GateConfig("none").is_reset(7)
    assert [cfg.reset_reason(t) for t in range(5)] == ["first", "", "", "", "periodic"]
    assert GateConfig("none").reset_reason(7) == "stateless"
