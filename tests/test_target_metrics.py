"""Quality targets on a task metric: `--target METRIC=VALUE` (target_metrics.py's registry, target.py's search)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sparsesim import trace
from sparsesim.cli import main
from sparsesim.errors import OptionError
from sparsesim.trace.target import Trial, follow_video, in_band, largest_passing
from sparsesim.trace.target_metrics import METRICS, QualityTarget, pooled_psnr


def test_each_metric_pools_handmade_frames_to_the_known_answer():
    frames = pd.DataFrame({"psnr_db": [20.0, math.inf, np.nan], "gt_det_recall": [1.0, 0.5, np.nan],
                           "gt_det_precision": [0.25, 0.75, 1.0],
                           "gt_psnr_db": [20.0, 20.0, 20.0], "gt_psnr_dense_db": [30.0, math.inf, 30.0]})
    assert METRICS["psnr"].value(frames) == pytest.approx(20.0 + 10 * math.log10(2))   # the mean error's PSNR
    assert METRICS["det-recall"].value(frames) == pytest.approx(0.75)                 # a mean, NaN skipped
    assert METRICS["det-precision"].value(frames) == pytest.approx(2.0 / 3.0)
    # dense pools to the PSNR of mean(1e-3, 0, 1e-3) = 2/3e-3, gated to 20 dB
    dense = -10 * math.log10(2e-3 / 3)
    assert METRICS["gt-psnr-loss"].value(frames) == pytest.approx(dense - 20.0)
    perfect = pd.DataFrame({"gt_psnr_db": [math.inf], "gt_psnr_dense_db": [math.inf]})
    assert METRICS["gt-psnr-loss"].value(perfect) == 0.0        # both error-free: nothing lost (not inf - inf)


def test_passing_and_the_band_follow_each_metrics_direction():
    recall, loss = METRICS["det-recall"], METRICS["gt-psnr-loss"]
    assert recall.passes(0.96, 0.95) and not recall.passes(0.94, 0.95)
    assert loss.passes(0.2, 0.3) and not loss.passes(0.4, 0.3)          # lower is better
    assert in_band(0.96, 0.95, recall) and not in_band(0.98, 0.95, recall)   # [0.95, 0.97)
    assert in_band(0.1, 0.3, loss) and not in_band(-0.3, 0.3, loss) and not in_band(0.31, 0.3, loss)  # (-0.2, 0.3]


def test_a_lower_is_better_metric_is_searched_and_followed_into_its_band():
    """The search sees scores: a loss growing with eps gets the largest eps whose loss stays under the target,
    and stage 2 follows a video whose loss is larger than its windows' into (target - 0.5, target]."""
    loss = METRICS["gt-psnr-loss"]
    windows = lambda eps: Trial(eps, 2.0 * math.log10(eps / 0.001), 0.0)  # noqa: E731  (0 dB at eps 0.001)
    chosen, trials = largest_passing(windows, 1.0, metric=loss)
    assert chosen.value <= 1.0 and all(t.value > 1.0 for t in trials if t.eps > chosen.eps)
    assert 0.001 * 10 ** 0.5 * 0.96 <= chosen.eps <= 0.001 * 10 ** 0.5
    video = lambda eps: Trial(eps, 1.5 + 3.0 * math.log10(eps / 0.001), 0.0)  # noqa: E731
    videos = follow_video(video, chosen.eps, trials, 1.0, metric=loss)
    assert videos[0].eps == chosen.eps and not loss.passes(videos[0].value, 1.0)
    assert 0.5 < videos[-1].value <= 1.0 and len(videos) <= 4


def test_target_psnr_is_the_psnr_entry():
    assert QualityTarget.parse("psnr=35").metric is METRICS["psnr"]
    goal = QualityTarget.parse("det-recall=0.95")
    assert goal.metric.columns == ("gt_det_recall",) and goal.metric.tasks == ("detection",) and goal.value == 0.95
    with pytest.raises(OptionError, match="has no metric 'recall'"):
        QualityTarget.parse("recall=0.9")


def test_a_detection_recall_target_traces_pnet_at_the_largest_epsilon_keeping_it(tmp_path, faces_video):
    """Cartoon faces drifting: the search runs P-Net with its ground truth, and the trace it leaves holds the
    recall the search recorded, at the largest epsilon that kept the target."""
    out, target = tmp_path / "t", 0.9
    assert main(["trace", str(faces_video), "--model", "mtcnn-pnet", "--target", f"det-recall={target}",
                 "--calibration-frames", "10", "-o", str(out), "-q"]) == 0
    t = trace.open(out)
    cal = t.meta["calibration"]
    assert cal["metric"] == "det-recall" and cal["target"] == target and cal["columns"] == ["gt_det_recall"]
    assert t.meta["ground_truth"]["task"] == "detection" and t.meta["gate"]["threshold"] == cal["chosen_eps"]
    gated = t.frames[~t.frames["reset"].to_numpy()]
    achieved = float(gated["gt_det_recall"].mean())
    assert achieved == pytest.approx(cal["chosen_value"]) and achieved >= target
    larger = [s for s in cal["search"] if s["eps"] > cal["chosen_eps"]]
    assert larger and all(s["value"] < target for s in larger)     # a larger epsilon loses faces
    assert cal["video_search"] == []                               # the window was the whole video


def test_the_whole_video_stage_follows_the_recall_of_the_video(tmp_path):
    """30 frames searched on windows of 4: the whole-video runs are recorded, and the trace is at the largest
    of their epsilons that kept the recall, which its own frames give."""
    from conftest import drifting_faces
    from sparsesim.trace import video
    src, out, target = tmp_path / "faces30.mp4", tmp_path / "t", 0.9
    video.encode(src, drifting_faces(30))
    assert main(["trace", str(src), "--model", "mtcnn-pnet", "--target", f"det-recall={target}",
                 "--calibration-frames", "4", "-o", str(out), "-q"]) == 0
    t = trace.open(out)
    cal = t.meta["calibration"]
    assert cal["window_starts"] == [0, 13, 26] and 1 <= len(cal["video_search"]) <= 4
    assert "whole video" in cal["pooled"] and cal["tolerance"] == METRICS["det-recall"].tolerance
    passing = [s for s in cal["video_search"] if s["value"] >= target]
    assert passing and cal["chosen_eps"] == max(s["eps"] for s in passing) == t.meta["gate"]["threshold"]
    gated = t.frames[~t.frames["reset"].to_numpy()]
    assert float(gated["gt_det_recall"].mean()) == pytest.approx(cal["chosen_value"])


def test_a_ground_truth_psnr_loss_target_traces_rife_within_it(tmp_path):
    """RIFE interpolating a moving square: the loss the search recorded is the dense-minus-gated PSNR
    against the real frames that the trace's own frames give (pooled through the mean squared error)."""
    from conftest import moving_square
    from sparsesim.trace import video
    src, out, target = tmp_path / "square9.mp4", tmp_path / "t", 0.3
    video.encode(src, moving_square(9, size=(64, 64)))
    assert main(["trace", str(src), "--model", "rife", "--target", f"gt-psnr-loss={target}",
                 "--calibration-frames", "9", "-o", str(out), "-q"]) == 0
    t = trace.open(out)
    cal = t.meta["calibration"]
    assert t.meta["ground_truth"]["task"] == "interpolation" and cal["higher_is_better"] is False
    gated = t.frames[~t.frames["reset"].to_numpy()]
    mse = lambda db: np.mean(10.0 ** (-gated[db].to_numpy() / 10.0))  # noqa: E731
    loss = 10 * math.log10(mse("gt_psnr_db") / mse("gt_psnr_dense_db"))
    assert loss == pytest.approx(cal["chosen_value"]) and loss <= target
    larger = [s for s in cal["search"] if s["eps"] > cal["chosen_eps"]]
    assert larger and all(s["value"] > target for s in larger)


@pytest.mark.parametrize("model,args,match", [
    ("mtcnn-pnet", ["--target", "recall=0.9"], "--target has no metric 'recall'; known: psnr, det-recall"),
    ("mtcnn-pnet", ["--target", "det-recall"], "--target takes METRIC=VALUE"),
    ("mtcnn-pnet", ["--target", "det-recall=high"], "with a number after '='"),
    ("mtcnn-pnet", ["--target", "det-recall=1.5"], "--target must be a fraction in (0, 1] for det-recall"),
    ("mtcnn-pnet", ["--target", "psnr=nan"], "--target must be a finite number of dB > 0 for psnr"),
    ("mtcnn-pnet", ["--target", "gt-psnr-loss=0.3"], "gt-psnr-loss reads gt_psnr_db, gt_psnr_dense_db, which the "
                   "interpolation or super-resolution ground truth writes; mtcnn-pnet is a detection model"),
    ("python:own_nets:residual", ["--target", "det-recall=0.9"], "own_nets:residual is a model without a "
                                                                   "ground-truth task"),
    ("mtcnn-pnet", ["--target", "det-recall=0.9", "--vfi-eval"], "--vfi-eval needs a frame-interpolation model"),
    ("mtcnn-pnet", ["--target", "psnr=30", "--target-psnr", "30"], "give --target or --target-psnr"),
    ("mtcnn-pnet", ["--target", "det-recall=0.9", "--gate", "none"], "--target searches a threshold"),
])
def test_bad_targets_are_one_line_errors_and_write_nothing(tmp_path, faces_video, capsys, model, args, match):
    out = tmp_path / "t"
    code = main(["trace", str(faces_video), "--model", model, *args, "-o", str(out), "-q"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and match in err and "\n" not in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_pooled_psnr_keeps_its_old_import():
    from sparsesim.trace.target import pooled_psnr as old
    assert old is pooled_psnr
