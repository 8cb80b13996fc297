"""Ground truth (sparsesim.trace.ground_truth): the metrics on known answers, the protocols' frame pairing,
and the options' bad-input errors."""
from __future__ import annotations

import math

import pytest
import torch

from sparsesim.errors import OptionError
from sparsesim.trace import ground_truth as gt
from sparsesim.trace import models


def ramp(n: int, h: int = 24, w: int = 32) -> list[torch.Tensor]:
    """Frame t: brightness 8t/255 plus a fixed horizontal gradient, exact in 8 bits; the midpoint of
    frames t-1 and t+1 is frame t exactly."""
    grad = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w).expand(1, 3, h, w) * 2
    return [(grad + 8 * t) / 255.0 for t in range(n)]


def test_psnr_of_identical_images_is_inf_and_ssim_is_one():
    x = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(0))
    assert gt.psnr(x, x) == math.inf
    assert gt.ssim(x, x) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("levels", [1, 4, 16])
def test_psnr_of_a_known_noise_level(levels):
    """+-d on a checkerboard: MSE is d^2 exactly, so PSNR is 20 log10(1/d)."""
    d = levels / 255.0
    x = torch.full((1, 3, 16, 16), 0.5, dtype=torch.float64)
    sign = ((torch.arange(16).view(-1, 1) + torch.arange(16).view(1, -1)) % 2 * 2 - 1).double()
    noisy = x + d * sign
    assert gt.psnr(noisy, x) == pytest.approx(20 * math.log10(1 / d), abs=1e-9)


def test_ssim_of_constant_images_has_the_closed_form():
    """No variance: SSIM reduces to the luminance term (2ab + C1) / (a^2 + b^2 + C1)."""
    a, b = 0.3, 0.7
    c1 = (gt.SSIM_K1 * 1.0) ** 2
    x, y = torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b)
    assert gt.ssim(x, y) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-6)
    assert math.isnan(gt.ssim(x[..., :8, :8], y[..., :8, :8]))   # smaller than the window


def test_ssim_of_one_window_matches_the_formula_written_out():
    """An 11x11 image has one valid window: SSIM is Wang et al.'s formula with the 2-D Gaussian weights."""
    import numpy as np
    rng = np.random.default_rng(2)
    a, b = rng.random((11, 11)), rng.random((11, 11))
    x = np.arange(11) - 5
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * 1.5 ** 2))
    w = g / g.sum()
    ma, mb = (w * a).sum(), (w * b).sum()
    va, vb, cov = (w * a * a).sum() - ma ** 2, (w * b * b).sum() - mb ** 2, (w * a * b).sum() - ma * mb
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    want = (2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
    got = gt.ssim(torch.from_numpy(a).view(1, 1, 11, 11), torch.from_numpy(b).view(1, 1, 11, 11))
    assert got == pytest.approx(want, abs=1e-12)


def test_ssim_falls_with_noise_and_is_symmetric():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 32, 32, generator=g)
    small, large = x + 0.02 * torch.randn(x.shape, generator=g), x + 0.2 * torch.randn(x.shape, generator=g)
    assert 1.0 > gt.ssim(small, x) > gt.ssim(large, x)
    assert gt.ssim(small, x) == pytest.approx(gt.ssim(x, small), abs=1e-12)


def test_interpolation_pairs_every_other_frame_and_a_midpoint_model_is_exact():
    spec = models.get("rife")
    steps = list(gt.PROTOCOLS["interpolation"].steps(iter(ramp(8)), spec))
    assert [s.offset for s in steps] == [0, 2, 4]            # 8 frames: (0,2)->1, (2,4)->3, (4,6)->5
    assert [s.reference_offset for s in steps] == [1, 3, 5]
    assert gt.PROTOCOLS["interpolation"].steps_expected(8) == 3
    for s in steps:
        mid = (s.inputs[0] + s.inputs[1]) / 2
        scores = gt.PROTOCOLS["interpolation"].score(mid, s.inputs[0], s.reference, spec)
        assert scores["gt_psnr_db"] == math.inf and scores["gt_ssim"] == pytest.approx(1.0, abs=1e-12)
        # the "dense" output here is the earlier frame: 8 levels off everywhere
        assert scores["gt_psnr_dense_db"] == pytest.approx(20 * math.log10(255 / 8), abs=1e-5)  # float32 frames


def test_interpolation_scores_crop_the_padding():
    spec = models.get("rife")
    ref = ramp(1, 20, 30)[0]
    padded = torch.nn.functional.pad(ref, (0, 2, 0, 12), value=1.0)
    assert gt.PROTOCOLS["interpolation"].score(padded, padded, ref, spec)["gt_psnr_db"] == math.inf


def test_super_resolution_downscales_by_the_factor_and_scores_the_original():
    spec = models.get("realesr-compact")
    frame = ramp(1, 42, 50)[0]
    (step,) = gt.PROTOCOLS["super-resolution"].steps(iter([frame]), spec)
    assert step.reference.shape[-2:] == (40, 48)              # cropped to a multiple of 4
    assert step.inputs[0].shape[-2:] == (10, 12)
    assert torch.equal(gt.quantise(step.inputs[0]), step.inputs[0])   # stored as 8 bits
    up = torch.nn.functional.interpolate(step.inputs[0], scale_factor=4, mode="nearest")
    scores = gt.PROTOCOLS["super-resolution"].score(step.reference, up, step.reference, spec)
    assert scores["gt_psnr_db"] == math.inf
    assert 20 < scores["gt_psnr_dense_db"] < math.inf
    # shaved luma: a frame wrong only in its 4-pixel border scores perfect
    border = step.reference.clone()
    border[..., :4, :] = 0
    assert gt.PROTOCOLS["super-resolution"].score(border, border, step.reference, spec)["gt_psnr_db"] == math.inf


def test_luma_is_bt601():
    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    assert float(gt.luma(white)) == pytest.approx(235 / 255, abs=1e-6)
    assert float(gt.luma(black)) == pytest.approx(16 / 255, abs=1e-7)


def face_map(cells: list[tuple[int, int]], h: int = 40, w: int = 60, p: float = 0.9) -> torch.Tensor:
    m = torch.zeros(1, 1, h, w)
    for y, x in cells:
        m[0, 0, y, x] = p
    return m


def test_proposals_nms_and_matching():
    # two neighbouring cells (IoU 100/188 > 0.5: one survives NMS) and one far away
    dense = face_map([(5, 5), (6, 6), (30, 40)])
    boxes = gt.proposals(dense)
    assert len(boxes) == 2
    assert boxes.tolist()[0][2] - boxes.tolist()[0][0] == 12
    shifted = face_map([(5, 6), (30, 40)])                    # 2 px: IoU 120/168, still a match
    far = face_map([(5, 20), (30, 40)])                       # one proposal moved away: no match
    scores = gt.PROTOCOLS["detection"].score(shifted, dense, None, models.get("mtcnn-pnet"))
    assert scores["gt_det_recall"] == 1.0 and scores["gt_det_precision"] == 1.0
    scores = gt.PROTOCOLS["detection"].score(far, dense, None, models.get("mtcnn-pnet"))
    assert scores["gt_det_recall"] == 0.5 and scores["gt_det_precision"] == 0.5
    assert scores["gt_det_dense"] == 2 and scores["gt_det_gated"] == 2
    assert scores["gt_prob_mae"] == pytest.approx(float((far - dense).abs().mean()))
    empty = gt.PROTOCOLS["detection"].score(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), None,
                                            models.get("mtcnn-pnet"))
    assert empty["gt_det_recall"] == 1.0 and empty["gt_prob_mae"] == 0.0


def test_resolve_picks_the_task_and_refuses_the_wrong_model():
    assert gt.resolve(models.get("rife"), False, True).task == "interpolation"
    assert gt.resolve(models.get("mtcnn-pnet"), True, False).task == "detection"
    assert gt.resolve(models.get("rife"), False, False).task == ""
    with pytest.raises(OptionError, match="vfi-eval needs a frame-interpolation model.*mtcnn-pnet is a detection"):
        gt.resolve(models.get("mtcnn-pnet"), False, True)


# -- through the tracer and the command line ---------------------------------------------------------------

def trace_cli(capsys, *args) -> tuple[int, str, str]:
    from sparsesim.cli import main
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_vfi_eval_scores_the_held_out_frame(tmp_path, capsys, small_video):
    """Each row's dense score is recomputed here independently: frames 2k and 2k+2 through dense RIFE,
    8 bits, against the decoded frame 2k+1."""
    import pandas as pd

    from sparsesim.trace import video
    from sparsesim.trace.tracer import to_tensor
    out = tmp_path / "t"
    code, _, err = trace_cli(capsys, "trace", small_video, "--vfi-eval", "--threshold", "0.05", "-o", out, "-q")
    assert code == 0, err
    frames = pd.read_parquet(out / "frames.parquet")
    assert frames["source_frame"].tolist() == [0, 2, 4, 6]     # 10 frames: 4 steps of (2k, 2k+2)
    assert frames["reference_frame"].tolist() == [1, 3, 5, 7]
    decoded = [to_tensor(f, 32, "cpu") for f in video.frames(small_video)]
    loaded = models.load("rife")
    with torch.inference_mode():
        for row in frames.itertuples():
            k = row.source_frame
            dense = loaded.spec.run(loaded.module, [decoded[k], decoded[k + 2]])[..., :48, :64]
            truth = decoded[k + 1][..., :48, :64]
            assert row.gt_psnr_dense_db == pytest.approx(gt.psnr(gt.quantise(dense), truth), abs=1e-6)
            assert row.gt_ssim_dense == pytest.approx(gt.ssim(gt.quantise(dense), truth), abs=1e-6)
    first = frames.iloc[0]                                     # a dense frame: gated is dense
    assert first["gt_psnr_db"] == first["gt_psnr_dense_db"] and first["gt_ssim"] == first["gt_ssim_dense"]
    assert (frames["gt_ssim"] <= 1).all() and frames["gt_psnr_db"].gt(10).all()
    code, text, _ = trace_cli(capsys, "info", out)
    assert code == 0 and "truth      interpolation: PSNR gated" in text


def test_ground_truth_of_pnet_agrees_with_itself_on_the_dense_frame(tmp_path, capsys, small_video):
    import pandas as pd
    out = tmp_path / "p"
    code, _, err = trace_cli(capsys, "trace", small_video, "--model", "mtcnn-pnet", "--ground-truth", "-o", out, "-q")
    assert code == 0, err
    frames = pd.read_parquet(out / "frames.parquet")
    assert len(frames) == 10 and "reference_frame" not in frames
    assert frames.loc[0, "gt_prob_mae"] == 0 and frames.loc[0, "gt_det_recall"] == 1
    assert frames["gt_det_recall"].between(0, 1).all() and frames["gt_det_precision"].between(0, 1).all()


@pytest.mark.parametrize("args, message", [
    (("--model", "mtcnn-pnet", "--vfi-eval"), "error: --vfi-eval needs a frame-interpolation model (rife); "
                                              "mtcnn-pnet is a detection model; use --ground-truth"),
    (("--model", "python:own_nets:two_heads", "--ground-truth"), "error: --ground-truth has no protocol for "
                                                                   "python:own_nets:two_heads"),
    (("--model", "python:own_nets:pair_net", "--vfi-eval"), "error: --vfi-eval needs a frame-interpolation model "
                                                             "(rife); python:own_nets:pair_net is not a frame-"),
    (("--model", "realesr-compact", "--ground-truth", "--size", "10x40"), "error: --size 10x40 is too small for "
                                                                           "super-resolution ground truth"),
])
def test_ground_truth_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, small_video, args, message):
    out = tmp_path / "never"
    code, _, err = trace_cli(capsys, "trace", small_video, *args, "-o", out, "-q")
    assert code == 2
    assert err.startswith(message) and len(err.strip().splitlines()) == 1
    assert not out.exists() and not any(p.name.startswith(".never") for p in tmp_path.iterdir())


def test_vfi_eval_traces_are_bit_identical_run_to_run(tmp_path, capsys, small_video):
    import pandas as pd
    runs = []
    for name in ("a", "b"):
        code, _, err = trace_cli(capsys, "trace", small_video, "--vfi-eval", "--frames", "7", "-o", tmp_path / name, "-q")
        assert code == 0, err
        runs.append(pd.read_parquet(tmp_path / name / "frames.parquet"))
    pd.testing.assert_frame_equal(runs[0], runs[1], check_exact=True)


def test_a_ground_truth_trace_gets_its_own_default_directory(tmp_path, capsys, small_video, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert trace_cli(capsys, "trace", small_video, "--model", "mtcnn-pnet", "--frames", "2", "-q")[0] == 0
    assert trace_cli(capsys, "trace", small_video, "--model", "mtcnn-pnet", "--frames", "2", "--ground-truth", "-q")[0] == 0
    assert sorted(p.name for p in (tmp_path / "traces").iterdir()) == ["square-mtcnn-pnet-delta-rel-e0.1",
                                                                      "square-mtcnn-pnet-delta-rel-e0.1-gt"]
