"""The model zoo: real trained weights load, user checkpoints load or are refused clearly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sparsesim.trace import models, video
from sparsesim.errors import ModelError
from sparsesim.trace.gates import GateConfig
from sparsesim.trace.skipconv import GatedModel
from sparsesim.trace.tracer import to_tensor


def test_registry_lists_both_real_models():
    assert {"rife", "mtcnn-pnet"} <= set(models.names())
    with pytest.raises(ModelError, match="unknown model 'nope'; choose from"):
        models.get("nope")


@pytest.mark.parametrize("name,convs", [("rife", 44), ("mtcnn-pnet", 5)])
def test_packaged_weights_load(name, convs):
    loaded = models.load(name)
    assert len(loaded.weights_sha256) == 64
    n = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in loaded.module.modules())
    assert n == convs


def sliding_texture(t: int) -> np.ndarray:
    """A textured square sliding 8 px per frame over a smooth gradient (64x96 RGB)."""
    yy, xx = np.mgrid[0:64, 0:96]
    frame = np.stack([xx * 2, yy * 3, 128 + 0 * xx], -1).astype(np.uint8)
    texture = np.kron(np.random.default_rng(0).random((6, 6, 3)) * 255, np.ones((4, 4, 1))).astype(np.uint8)
    frame[20:44, 10 + 8 * t: 34 + 8 * t] = texture
    return frame


@torch.inference_mode()
def test_rife_interpolates_far_better_than_averaging():
    """Trained weights, not random ones: the middle frame beats the average of its neighbours."""
    rife = models.load("rife")
    f0, f1, f2 = (to_tensor(sliding_texture(t), 32, "cpu") for t in range(3))
    mid = rife.spec.run(rife.module, [f0, f2])
    assert torch.mean((mid - f1) ** 2) < 0.1 * torch.mean(((f0 + f2) / 2 - f1) ** 2)


@torch.inference_mode()
@pytest.mark.parametrize("name", ["rife", "mtcnn-pnet"])
def test_real_model_gated_at_epsilon_zero_equals_dense(name, video_64):
    loaded = models.load(name)
    xs = [to_tensor(f, loaded.spec.pad_multiple, "cpu") for f in video.frames(video_64)]
    steps = [xs[i:i + loaded.spec.frames_per_step] for i in range(len(xs) - loaded.spec.frames_per_step + 1)]
    dense = [loaded.spec.run(loaded.module, s) for s in steps]
    model = GatedModel.wrap(loaded.module, GateConfig(threshold=0.0))
    for t, (s, d) in enumerate(zip(steps, dense)):
        model.begin_step(t)
        torch.testing.assert_close(loaded.spec.run(model.module, s), d, atol=1e-4, rtol=1e-4)
        assert all(layer.state.mask.all() for layer in model.layers)


def test_user_checkpoint_in_common_wrappers_loads(tmp_path):
    state = models.load("mtcnn-pnet").module.state_dict()
    path = tmp_path / "mine.pt"
    torch.save({"state_dict": {f"module.{k}": v * 2 for k, v in state.items()}}, path)
    loaded = models.load("mtcnn-pnet", path)
    torch.testing.assert_close(loaded.module.conv1.weight, state["conv1.weight"] * 2)
    assert loaded.weights_path == str(path)


def test_checkpoint_with_wrong_keys_or_shapes_names_them(tmp_path):
    state = models.load("mtcnn-pnet").module.state_dict()
    wrong_keys = {k.replace("conv2", "convX"): v for k, v in state.items()}
    torch.save(wrong_keys, tmp_path / "keys.pt")
    with pytest.raises(ModelError, match=r"missing keys: conv2.bias, conv2.weight; unexpected keys: convX"):
        models.load("mtcnn-pnet", tmp_path / "keys.pt")
    torch.save({**state, "conv3.weight": torch.zeros(1, 2, 3, 3)}, tmp_path / "shapes.pt")
    with pytest.raises(ModelError, match=r"wrong shapes: conv3.weight \(1, 2, 3, 3\) != \(32, 16, 3, 3\)"):
        models.load("mtcnn-pnet", tmp_path / "shapes.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ModelError, match="cannot read checkpoint"):
        models.load("mtcnn-pnet", tmp_path / "junk.pt")
