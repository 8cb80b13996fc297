"""Relative thresholds: epsilon as a fraction of each layer's own activation scale."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from sparsesim.trace.gates import GateConfig
from sparsesim.trace.skipconv import GatedModel
from sparsesim.trace.tracer import same_trace


class Homogeneous(nn.Module):
    """Bias-free convs and ReLUs: scaling the input by c > 0 scales every layer's input by c."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, 2, 1, bias=False)
        self.b = nn.Conv2d(8, 8, 3, 1, 2, dilation=2, bias=False)
        self.up = nn.ConvTranspose2d(8, 3, 4, 2, 1, bias=False)

    def forward(self, x):
        return self.up(torch.relu(self.b(torch.relu(self.a(x)))))


def sequence(n: int = 6) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 16, 20, generator=g)
    out = []
    for _ in range(n):
        x = x.clone()
        x[..., 3:11, 4:14] += 0.15 * torch.randn(1, 3, 8, 10, generator=g)
        out.append(x)
    return out


@torch.inference_mode()
def masks_of(config: GateConfig, scale: float) -> list[list[torch.Tensor]]:
    torch.manual_seed(0)
    model = GatedModel.wrap(Homogeneous().eval(), config)
    out = []
    for step, x in enumerate(sequence()):
        model.begin_step(step)
        model.module(x * scale)
        out.append([layer.state.mask.clone() for layer in model.layers])
    return out


@pytest.mark.parametrize("kind", ["input-norm", "output-norm", "delta"])
@pytest.mark.parametrize("c", [0.125, 3.0, 40.0])
def test_relative_masks_are_invariant_to_scaling_the_input(kind, c):
    config = GateConfig(kind, 0.2)
    base, scaled = masks_of(config, 1.0), masks_of(config, c)
    partial = [m for frame in base[1:] for m in frame]
    assert any(0 < m.float().mean() < 1 for m in partial)   # real partial gates, not all-or-nothing
    assert all(torch.equal(a, b) for fa, fb in zip(base, scaled) for a, b in zip(fa, fb))


def test_absolute_masks_do_change_with_the_scale():
    config = GateConfig("input-norm", 0.2, threshold_mode="absolute")
    base, scaled = masks_of(config, 1.0), masks_of(config, 40.0)
    assert not all(torch.equal(a, b) for fa, fb in zip(base, scaled) for a, b in zip(fa, fb))


@torch.inference_mode()
def test_each_layer_gets_epsilon_times_its_own_input_scale():
    torch.manual_seed(0)
    model = GatedModel.wrap(Homogeneous().eval(), GateConfig("input-norm", 0.1))
    inputs = {}
    hooks = [layer.register_forward_pre_hook(lambda m, a: inputs.__setitem__(m.name, a[0])) for layer in model.layers]
    model.begin_step(0)
    model.module(sequence(1)[0])
    for h in hooks:
        h.remove()
    for layer, (scale, threshold) in zip(model.layers, model.thresholds(model.layers)):
        assert scale == pytest.approx(float(inputs[layer.name].abs().mean()))
        assert threshold == pytest.approx(0.1 * scale)
    assert len({t for _, t in model.thresholds(model.layers)}) == len(model.layers)  # one per layer


def test_an_old_trace_without_threshold_mode_reads_as_absolute():
    from dataclasses import asdict
    old_gate = {k: v for k, v in asdict(GateConfig("input-norm", 0.05, threshold_mode="absolute", cut_threshold=0.0)).items()
                if k not in ("threshold_mode", "cut_threshold")}
    found = {"model": "rife", "gate": old_gate}
    assert same_trace(found, {"model": "rife", "gate": asdict(GateConfig("input-norm", 0.05, threshold_mode="absolute",
                                                                          cut_threshold=0.0))})
    assert not same_trace(found, {"model": "rife", "gate": asdict(GateConfig("input-norm", 0.05))})


def test_settings_without_effect_on_a_kind_do_not_make_a_trace_different():
    from dataclasses import asdict
    old = {k: v for k, v in asdict(GateConfig("uncertainty", keep=0.5)).items() if k not in ("threshold_mode", "cut_threshold")}
    assert same_trace({"gate": old}, {"gate": asdict(GateConfig("uncertainty", keep=0.5))})  # stateless: no cut matters
    assert not same_trace({"gate": old}, {"gate": asdict(GateConfig("uncertainty", keep=0.35))})
    learned = dict(kind="learned", checkpoint="sha")
    old = {k: v for k, v in asdict(GateConfig(**learned)).items() if k not in ("threshold_mode", "cut_threshold")}
    assert same_trace({"gate": old}, {"gate": asdict(GateConfig(**learned, cut_threshold=0.0))})  # no norm threshold
    assert not same_trace({"gate": old}, {"gate": asdict(GateConfig(**learned))})   # but cuts reset its state
