"""Accumulated-delta gates (DeltaCNN semantics): nothing is lost, slow change arrives, outputs stay exact."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sparsesim.trace.gates import GateConfig, delta_step, dilate_mask, select_
from sparsesim.trace.skipconv import GatedModel

ABSOLUTE = dict(threshold_mode="absolute")


def integer_frames(seed: int, t: int, c: int, h: int, w: int, spread: int) -> list[torch.Tensor]:
    """Integer-valued float64 frames: every sum below is exact, so equalities can be asserted bit for bit."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(-spread, spread + 1, (1, c, h, w), generator=g).double() for _ in range(t)]


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10_000), t=st.integers(2, 8), c=st.integers(1, 4), h=st.integers(1, 9),
       w=st.integers(1, 9), spread=st.integers(1, 6), eps=st.integers(0, 8))
def test_propagated_updates_plus_the_pending_delta_are_the_dense_change(seed, t, c, h, w, spread, eps):
    xs = integer_frames(seed, t, c, h, w, spread)
    reference, sent = xs[0], torch.zeros_like(xs[0])
    for x in xs[1:]:
        step = delta_step(x, reference, float(eps))
        sent += step.propagated
        reference = step.reference
        assert torch.equal(x - reference, (x - xs[0]) - sent)   # the pending accumulator, at every frame
    assert torch.equal(sent + (xs[-1] - reference), xs[-1] - xs[0])


def integer_layer(conv: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in conv.parameters():
            p.copy_(torch.randint(-3, 4, p.shape, generator=g).double())
    return conv.double().eval()


GEOMETRIES = [lambda: nn.Conv2d(2, 3, 3, 1, 1), lambda: nn.Conv2d(2, 3, 3, 2, 1), lambda: nn.Conv2d(2, 3, 3, 1, 2, dilation=2),
              lambda: nn.Conv2d(2, 3, 1), lambda: nn.ConvTranspose2d(2, 3, 4, 2, 1)]


@pytest.mark.parametrize("make", GEOMETRIES)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), eps=st.integers(0, 6))
@torch.inference_mode()
def test_the_delta_layer_outputs_the_dense_conv_of_its_reference(make, seed, eps):
    conv = integer_layer(make(), seed)
    model = GatedModel.wrap(nn.Sequential(conv), GateConfig("delta", float(eps), **ABSOLUTE))
    layer = model.layers[0]
    for step, x in enumerate(integer_frames(seed, 6, 2, 9, 11, 4)):
        model.begin_step(step)
        out = model.module(x)
        assert torch.equal(out, conv(layer.state.prev_input))


@pytest.mark.parametrize("make", GEOMETRIES)
@torch.inference_mode()
def test_the_output_mask_is_exactly_where_the_propagated_delta_reaches(make):
    """All-positive weights and a positive change: the output moves exactly where the mask says."""
    conv = make().double().eval()
    with torch.no_grad():
        conv.weight.fill_(1.0)
    x0 = torch.zeros(1, 2, 9, 11, dtype=torch.float64)
    x1 = x0.clone()
    x1[..., 2, 3] = 1.0
    x1[..., 6, 9] = 0.4  # below epsilon: stays pending, moves nothing
    model = GatedModel.wrap(nn.Sequential(conv), GateConfig("delta", 0.5, **ABSOLUTE))
    model.begin_step(0)
    z0 = model.module(x0)
    model.begin_step(1)
    z1 = model.module(x1)
    mask = model.layers[0].state.mask[0, 0]
    assert torch.equal(mask, (z1 != z0).any(dim=1)[0]) and 0 < mask.sum() < mask.numel()
    assert torch.equal(mask, dilate_mask(x1[:, :1] == 1.0, conv)[0, 0])


def ramp(frames: int, per_frame: float) -> list[torch.Tensor]:
    base = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    return [base + per_frame * t for t in range(frames)]


@torch.inference_mode()
def test_a_slow_ramp_is_eventually_propagated_by_delta_and_never_by_skip_conv():
    eps, per_frame, frames = 0.1, 0.03, 12   # the ramp crosses eps after 4 frames (0.12)
    conv = nn.Conv2d(3, 4, 3, 1, 1).eval()
    fired = {}
    for kind in ("input-norm", "delta"):
        model = GatedModel.wrap(nn.Sequential(conv), GateConfig(kind, eps, **ABSOLUTE))
        on = []
        for step, x in enumerate(ramp(frames, per_frame)):
            model.begin_step(step)
            out = model.module(x)
            on.append(bool(model.layers[0].state.mask.any()))
        fired[kind] = on[1:]
    assert not any(fired["input-norm"])            # skipped every frame, lost for good
    assert fired["delta"][:3] == [False, False, False] and fired["delta"][3]   # accumulated to 0.12 >= 0.1
    assert sum(fired["delta"]) == (frames - 1) // 4


@torch.inference_mode()
def test_delta_error_stays_bounded_where_skip_conv_drifts():
    """After the ramp, the delta layer's output is within one threshold's worth of the dense one; Skip-Conv's
    has drifted by the whole ramp."""
    eps, per_frame, frames = 0.1, 0.03, 30
    xs = ramp(frames, per_frame)
    errors = {}
    for kind in ("input-norm", "delta"):
        torch.manual_seed(0)   # the same weights for both semantics
        conv = nn.Conv2d(3, 4, 3, 1, 1, bias=False).eval()
        model = GatedModel.wrap(nn.Sequential(conv), GateConfig(kind, eps, **ABSOLUTE))
        for step, x in enumerate(xs):
            model.begin_step(step)
            out = model.module(x)
        dense = F.conv2d(xs[-1], conv.weight, None, 1, 1)
        errors[kind] = float((out - dense).abs().max())
    bound = eps * float(conv.weight.abs().sum(dim=(1, 2, 3)).max())  # |W| * pending (< eps per location)
    assert errors["delta"] < bound < errors["input-norm"]


@torch.inference_mode()
def test_delta_with_epsilon_zero_equals_dense_through_a_network():
    from test_skipconv import Toy, frames
    torch.manual_seed(0)
    toy = Toy().eval()
    xs = frames(6)
    dense = [toy(x) for x in xs]
    model = GatedModel.wrap(toy, GateConfig("delta", 0.0))
    for step, (x, d) in enumerate(zip(xs, dense)):
        model.begin_step(step)
        torch.testing.assert_close(model.module(x), d, atol=1e-5, rtol=1e-5)
        assert all(layer.state.mask.all() for layer in model.layers)


@torch.inference_mode()
def test_the_in_place_reference_gives_the_pure_steps_floats_and_never_writes_the_models_tensors():
    """SkipConv updates its own reference in place from its first gated step on: float32 frames give the same
    outputs, masks and references, bit for bit, as the pure delta_step, and the inputs it was handed stay as
    they were (the first reference is the model's own x, which must not be written)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, 1, 1).eval()
    model = GatedModel.wrap(nn.Sequential(conv), GateConfig("delta", 0.2, **ABSOLUTE))
    layer = model.layers[0]
    frames = [torch.randn(1, 3, 12, 10)]
    for _ in range(5):   # a drifting scene: some locations cross the threshold, some accumulate
        frames.append(frames[-1] + 0.15 * torch.randn(1, 3, 12, 10))
    copies = [f.clone() for f in frames]
    reference, expected = None, None
    for step, x in enumerate(frames):
        model.begin_step(step)
        out = model.module(x)
        if step == 0:
            reference, expected = x.clone(), conv(x)
        else:
            pure = delta_step(x, reference, 0.2)
            reference, expected = pure.reference, expected + F.conv2d(pure.propagated, conv.weight, None, 1, 1)
            assert torch.equal(layer.state.mask[0, 0], dilate_mask(pure.in_mask, conv)[0, 0])
        assert torch.equal(out, expected) and torch.equal(layer.state.prev_input, reference)
    assert all(torch.equal(f, c) for f, c in zip(frames, copies))
    assert layer.state.owns_input and layer.state.prev_input.data_ptr() not in {f.data_ptr() for f in frames}


def test_select_is_where_bit_for_bit():
    dst = torch.tensor([[[[1.5, -0.0, float("nan"), 2.0]], [[0.0, 3.0, -1.0, float("inf")]]]])
    src = torch.tensor([[[[-7.0, 0.0, 1.0, float("-inf")]], [[-0.0, float("nan"), 4.0, 5.0]]]])
    mask = torch.tensor([[[[True, True, False, True]]]])
    for dtype in (torch.float32, torch.float64, torch.float16):
        d, s = dst.to(dtype), src.to(dtype)
        want = torch.where(mask, s, d)
        got = select_(d.clone(), s, mask)
        assert torch.equal(got.view(torch.uint8), want.view(torch.uint8))   # the bits, signed zeros and NaNs too
