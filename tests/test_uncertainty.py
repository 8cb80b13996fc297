"""Uncertainty-guided spatial pruning (UGSP-style) of RIFE's refinement blocks."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsesim import trace
from sparsesim.cli import main
from sparsesim.trace.uncertainty import CELLS, nested_masks


@settings(max_examples=40, deadline=None)
@given(h=st.integers(8, 70), w=st.integers(8, 70), keep=st.floats(0, 1), seed=st.integers(0, 1000))
def test_masks_nest_and_hit_the_keep_fraction_within_one_cell(h, w, keep, seed):
    u = torch.from_numpy(np.random.default_rng(seed).random((1, 1, h, w))).float()
    masks = [m[0, 0].numpy() for m in nested_masks(u, keep)]
    finest = CELLS[-1]
    cells = np.ceil(h / finest) * np.ceil(w / finest)
    kept = masks[-1][::finest, ::finest].sum()
    assert abs(kept - keep * cells) <= 1
    for coarse, fine in zip(masks, masks[1:]):
        assert not (fine & ~coarse).any()          # pruned at a coarse level stays pruned below
    for cell, m in zip(CELLS, masks):               # one decision per cell
        hb, wb = -(-h // cell), -(-w // cell)
        padded = np.zeros((hb * cell, wb * cell), bool)
        padded[:h, :w] = m
        blocks = padded.reshape(hb, cell, wb, cell)
        edge = np.zeros_like(padded)
        edge[:h, :w] = True
        assert ((blocks.any(axis=(1, 3)) == blocks.all(axis=(1, 3), where=edge.reshape(hb, cell, wb, cell)))).all()


def trace_rife(tmp_path, video_path, name, *extra):
    assert main(["trace", str(video_path), "--model", "rife", "--gate", "uncertainty", "-q",
                 "-o", str(tmp_path / name), *extra]) == 0
    return trace.open(tmp_path / name)


def test_keep_one_equals_dense(tmp_path, video_64):
    t = trace_rife(tmp_path, video_64, "all", "--keep", "1.0")
    assert (t.active.to_numpy() == 1.0).all() and np.isinf(t.frames["psnr_db"]).all()


def test_pruned_blocks_compute_about_the_kept_fraction(tmp_path, video_64):
    t = trace_rife(tmp_path, video_64, "k35", "--keep", "0.35")
    active = t.active.iloc[1:]
    assert (active.filter(like="block0.") == 1.0).all().all()          # the coarse estimate is always dense
    block3 = active.filter(like="block3.convblock").to_numpy()
    assert np.allclose(block3.mean(), 0.35, atol=0.1)
    assert (active.filter(like="block1.").to_numpy() >= block3.min() - 1e-9).all()  # coarser cells keep more
    assert np.isfinite(t.frames["psnr_db"]).all()


def test_user_masks_are_used_as_given(tmp_path, video_64):
    steps = 5
    arrays = {f"cells{c}": np.zeros((steps, -(-64 // c), -(-64 // c)), bool) for c in CELLS}
    for c in CELLS:  # keep the top-left quarter only
        arrays[f"cells{c}"][:, : 32 // c, : 32 // c] = True
    np.savez(tmp_path / "masks.npz", **arrays)
    t = trace_rife(tmp_path, video_64, "user", "--masks", str(tmp_path / "masks.npz"))
    m = next(x.mask for x in t.masks(["block3.convblock.0.0"]) if x.frame == 1)
    h, w = m.shape
    assert m[: h // 2, : w // 2].all() and not m[h // 2:, :].any() and not m[:, w // 2:].any()


@pytest.mark.parametrize("args,needle", [
    (["--model", "mtcnn-pnet"], "needs a model with uncertainty-guided pruning"),
    (["--model", "rife", "--keep", "1.5"], "--keep must be in [0, 1]"),
])
def test_bad_uncertainty_input(tmp_path, video_64, capsys, args, needle):
    assert main(["trace", str(video_64), "--gate", "uncertainty", "-q", "-o", str(tmp_path / "x"), *args]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_wrongly_shaped_user_masks(tmp_path, video_64, capsys):
    np.savez(tmp_path / "m.npz", cells8=np.ones((5, 3, 3), bool), cells4=np.ones((5, 16, 16), bool),
             cells2=np.ones((5, 32, 32), bool))
    assert main(["trace", str(video_64), "--model", "rife", "--gate", "uncertainty", "--masks",
                 str(tmp_path / "m.npz"), "-q", "-o", str(tmp_path / "x")]) == 2
    assert "masks cells8: need (8, 8)" in capsys.readouterr().err
