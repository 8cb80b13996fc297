"""Quality targets: the threshold search finds the largest epsilon that keeps a PSNR target."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sparsesim import trace
from sparsesim.cli import main
from sparsesim.trace.target import Trial, largest_passing, pooled_psnr


def test_the_search_finds_the_boundary_of_a_monotone_curve():
    boundary = 0.0123
    curve = lambda eps: Trial(eps, 40.0 - 10.0 * math.log10(eps / boundary), 0.0)  # noqa: E731
    chosen, trials = largest_passing(curve, 40.0)
    assert chosen.value >= 40.0 and boundary * 0.96 <= chosen.eps <= boundary
    assert all(t.value < 40.0 for t in trials if t.eps > chosen.eps)
    assert largest_passing(curve, 1e9)[0] is None
    assert largest_passing(lambda eps: Trial(eps, 99.0, 0.0), 30.0)[0].eps == 2.0   # the cap passes: take it


def test_pooled_psnr_is_the_psnr_of_the_mean_error():
    assert pooled_psnr(np.array([20.0, math.inf])) == pytest.approx(20.0 + 10 * math.log10(2))
    assert pooled_psnr(np.array([30.0, 30.0, np.nan])) == pytest.approx(30.0) and math.isinf(pooled_psnr([math.inf]))


def graded_change(n: int, size: tuple[int, int] = (64, 48)):
    """Every pixel changes each frame, by an amount growing from left to right: the error falls smoothly as
    epsilon shrinks (a moving square would make it a step)."""
    w, h = size
    rng = np.random.default_rng(0)
    frame = rng.random((h, w, 3)) * 160 + 40
    amplitude = np.linspace(0.5, 12.0, w)[None, :, None]
    for _ in range(n):
        frame = np.clip(frame + amplitude * rng.standard_normal((h, w, 3)), 0, 255)
        yield frame.astype(np.uint8)


def test_a_handmade_model_traces_at_the_largest_epsilon_keeping_the_target(tmp_path, capsys):
    from sparsesim.trace import video
    src = tmp_path / "graded.mp4"
    video.encode(src, graded_change(8))
    target = 60.0   # nothing recomputed gives 44 dB, everything 166 dB: the search has a real range to cover
    out = tmp_path / "t"
    assert main(["trace", str(src), "--model", "python:own_nets:residual", "--gate", "delta", "--target-psnr",
                 str(target), "--calibration-frames", "8", "--frames", "8", "-o", str(out), "-q"]) == 0
    t = trace.open(out)
    cal = t.meta["calibration"]
    assert t.meta["gate"]["threshold"] == cal["chosen_eps"] and cal["metric"] == "psnr" and cal["target"] == target
    gated = ~t.frames["reset"].to_numpy()
    achieved = pooled_psnr(t.frames["psnr_db"].to_numpy()[gated])
    assert achieved == pytest.approx(cal["chosen_value"])    # the same frames: the search's own figure
    assert target <= achieved < target + 0.5                   # hits the target, not far above it
    larger = [s for s in cal["search"] if s["eps"] > cal["chosen_eps"]]
    assert larger and all(s["value"] < target for s in larger)


@pytest.mark.parametrize("args,match", [(["--target-psnr", "400"], "no threshold reaches PSNR 400 dB on 4 frames at "
                                         "each of frames 0, "),
                                        (["--target-psnr", "-3"], "--target-psnr must be"),
                                        (["--target-psnr", "inf"], "--target-psnr must be"),
                                        (["--target-psnr", "30", "--gate", "none"], "needs a thresholded gate"),
                                        (["--target-psnr", "30", "--calibration-frames", "2"], "--calibration-frames")])
def test_bad_targets_are_one_line_errors_and_write_nothing(tmp_path, small_video, capsys, args, match):
    out = tmp_path / "t"
    code = main(["trace", str(small_video), "--model", "mtcnn-pnet", "--calibration-frames", "4", *args,
                 "-o", str(out), "-q"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and match in err and "\n" not in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_the_search_windows_spread_over_the_video():
    from sparsesim.trace.target import window_starts
    assert window_starts(0, 12, 250) == (0, 119, 238)            # start, middle, the last window that fits
    assert window_starts(10, 12, 100) == (10, 54, 98)            # counted from --start
    assert window_starts(0, 8, 8) == (0,) and window_starts(0, 12, 5) == (0,)   # one window when nothing else fits
    assert window_starts(0, 12, 13) == (0, 1)                   # no duplicates


@pytest.mark.parametrize("offset,steepness", [(-3.0, 10.0), (-9.0, 14.0), (+2.0, 6.0), (-0.2, 10.0)])
def test_the_whole_video_stage_lands_in_the_tolerance_when_the_video_differs_from_its_windows(offset, steepness):
    """Short windows start dense and see less error than the whole video (or, where the video's busy part
    falls between them, more): stage 2 follows the video's own curve into [target, target + 0.5)."""
    from sparsesim.trace.target import PSNR, VIDEO_TRIALS, follow_video
    target = 35.0
    windows_curve = lambda eps: Trial(eps, 45.0 - 10.0 * math.log10(eps / 0.01), 0.0)  # noqa: E731
    video_curve = lambda eps: Trial(eps, 45.0 + offset - steepness * math.log10(eps / 0.01), 0.0)  # noqa: E731
    chosen, windows = largest_passing(windows_curve, target)
    calls = []
    videos = follow_video(lambda eps: calls.append(eps) or video_curve(eps), chosen.eps, windows, target)
    assert len(videos) == len(calls) <= VIDEO_TRIALS and videos[0].eps == chosen.eps
    assert target <= videos[-1].value < target + PSNR.tolerance


def test_the_whole_video_stage_stops_where_the_range_ends():
    """A video that keeps the target even at the largest epsilon: one trial at the cap, nothing more to try."""
    from sparsesim.trace.target import EPS_HI, follow_video
    flat = lambda eps: Trial(eps, 80.0, 0.0)  # noqa: E731
    chosen, windows = largest_passing(flat, 35.0)
    assert [t.eps for t in follow_video(flat, chosen.eps, windows, 35.0)] == [EPS_HI]


def test_the_whole_video_stage_runs_where_the_windows_are_not_the_video(tmp_path):
    """30 frames searched on windows of 4: the whole-video runs are recorded, the trace is at the epsilon of
    the last of them that kept the target, and its own frames give the PSNR the search recorded."""
    from sparsesim.trace import video
    src = tmp_path / "graded.mp4"
    video.encode(src, graded_change(30))
    out, target = tmp_path / "t", 60.0
    assert main(["trace", str(src), "--model", "python:own_nets:residual", "--gate", "delta", "--target-psnr",
                 str(target), "--calibration-frames", "4", "--quality-every", "1", "-o", str(out), "-q"]) == 0
    t = trace.open(out)
    cal = t.meta["calibration"]
    assert cal["window_starts"] == [0, 13, 26] and 1 <= len(cal["video_search"]) <= 4
    passing = [s for s in cal["video_search"] if s["value"] >= target]
    assert passing and cal["chosen_eps"] == max(s["eps"] for s in passing) == t.meta["gate"]["threshold"]
    gated = ~t.frames["reset"].to_numpy()
    assert pooled_psnr(t.frames["psnr_db"].to_numpy()[gated]) == pytest.approx(cal["chosen_value"])
    assert "whole video" in cal["pooled"]



def test_sigterm_during_the_search_removes_its_trial_traces_and_writes_nothing(tmp_path):
    """A search has nothing to keep: SIGTERM unwinds like Ctrl-C (exit 130, one line), and the temporary
    trial traces go with it instead of staying in the temporary directory."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path
    from sparsesim.trace import video
    src, scratch, out = tmp_path / "graded.mp4", tmp_path / "tmp", tmp_path / "t"
    video.encode(src, graded_change(60))
    scratch.mkdir()
    tests = str(Path(__file__).resolve().parent)
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "sparsesim.cli", "trace", str(src), "--model",
                             "python:own_nets:residual", "--gate", "delta", "--target-psnr", "60",
                             "--calibration-frames", "4", "-o", str(out), "-q"],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(scratch.glob("sparsesim-calibrate-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the search ended before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=60)[1].strip()
    assert proc.returncode == 130 and err == "interrupted: nothing written"
    assert not list(scratch.iterdir()) and not out.exists() and not list(tmp_path.glob(".t*"))
