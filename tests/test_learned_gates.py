"""Learned (Gumbel) Skip-Convolution gates loaded from a user's checkpoint (`--gate learned`)."""
from __future__ import annotations

import pytest
import torch

from sparsesim import trace
from sparsesim.cli import main

PNET = {"conv1": (3, 3), "conv2": (10, 3), "conv3": (16, 3), "conv4_1": (32, 1), "conv4_2": (32, 1)}


def gates(bias: float, weight: float = 0.0, naming: str = "{}") -> dict[str, torch.Tensor]:
    state = {}
    for name, (cin, k) in PNET.items():
        state[naming.format(name) + ".weight"] = torch.full((1, cin, k, k), weight)
        state[naming.format(name) + ".bias"] = torch.tensor([bias])
    return state


def run(capsys, small_video, tmp_path, state, name="t", extra=()):
    path = tmp_path / f"{name}.pt"
    torch.save(state, path)
    code = main(["trace", str(small_video), "--model", "mtcnn-pnet", "--gate", "learned", "--gate-checkpoint",
                 str(path), "-o", str(tmp_path / name), "-q", *extra])
    return code, capsys.readouterr().err


def test_always_on_gates_equal_dense_and_always_off_freeze(capsys, small_video, tmp_path):
    code, _ = run(capsys, small_video, tmp_path, gates(bias=10.0), "on")
    assert code == 0
    on = trace.open(tmp_path / "on")
    assert (on.active.to_numpy() == 1.0).all() and (on.frames["psnr_db"].iloc[1:] > 60).all()
    code, _ = run(capsys, small_video, tmp_path, gates(bias=-10.0, naming="module.{}.gate.gate_network.0"), "off")
    assert code == 0  # Qualcomm Skip-Conv's own key naming loads too
    off = trace.open(tmp_path / "off")
    assert (off.active.iloc[0] == 1.0).all() and (off.active.iloc[1:] == 0.0).all().all()


def test_gate_follows_the_residual(capsys, small_video, tmp_path):
    """logit = w * sum|r| + b: on exactly where the residual over the receptive field is large."""
    code, _ = run(capsys, small_video, tmp_path, gates(bias=-1.0, weight=0.5), "mid")
    assert code == 0
    active = trace.open(tmp_path / "mid").active.to_numpy()[1:]
    assert 0 < active.mean() < 1
    mask = next(m.mask for m in trace.open(tmp_path / "mid").masks(["conv1"]) if m.frame == 1)
    # the moving square changes; the static background does not
    assert mask[12:24].any() and not mask[-5:].any()


@pytest.mark.parametrize("edit,needle", [
    (lambda s: {k: v for k, v in s.items() if not k.startswith("conv3.")}, "no gate for layers: conv3"),
    (lambda s: {**s, "conv9.weight": torch.zeros(1, 3, 3, 3), "conv9.bias": torch.zeros(1)}, "gates for unknown layers: conv9"),
    (lambda s: {**s, "conv2.weight": torch.zeros(1, 7, 3, 3)}, "wrong shapes: conv2 (1, 7, 3, 3) != (1, 10, 3, 3)"),
])
def test_mismatched_gates_are_listed(capsys, small_video, tmp_path, edit, needle):
    code, err = run(capsys, small_video, tmp_path, edit(gates(0.0)), "bad")
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


def test_learned_gate_needs_its_checkpoint(capsys, small_video, tmp_path):
    assert main(["trace", str(small_video), "--model", "mtcnn-pnet", "--gate", "learned", "-q",
                 "-o", str(tmp_path / "x")]) == 2
    assert "--gate learned and --gate-checkpoint PATH go together" in capsys.readouterr().err
    assert main(["trace", str(small_video), "--model", "mtcnn-pnet", "--gate", "learned", "-q",
                 "--gate-checkpoint", str(tmp_path / "none.pt"), "-o", str(tmp_path / "x")]) == 2
    assert "gate checkpoint not found" in capsys.readouterr().err
