"""Per-layer thresholds (--per-layer): multipliers on the quality target's epsilon where skipping is cheap."""
from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pytest
import torch
from torch import nn

from sparsesim import trace
from sparsesim.cli import main
from sparsesim.errors import SparsesimError
from sparsesim.trace.gate_config import GateConfig, comparable_gate
from sparsesim.trace.gates import effective_threshold
from sparsesim.trace.per_layer import FACTORS, raise_layers, settle_on_video
from sparsesim.trace.target import Trial, pooled_psnr

from test_target_psnr import graded_change

COST = {"big": 0.0, "mid": 1.5, "small": 9.0}    # dB lost per doubling of each layer's epsilon


def fake_windows(multipliers: dict[str, float]) -> Trial:
    value = 50.0 - sum(COST[name] * math.log2(m) for name, m in multipliers.items())
    return Trial(0.1, value, 0.0)


def test_the_greedy_search_raises_the_cheap_layers_and_stops_each_at_its_first_failure():
    calls = []
    chosen, steps = raise_layers(lambda m: calls.append(dict(m)) or fake_windows(m), ["big", "mid", "small"],
                                 lambda t: t.value >= 46.0, runs=9)
    # big costs nothing: x8; mid x2 costs 1.5, x4 3.0, x8 4.5 > 4: stops at x8, keeps x4; small x2 fails
    assert chosen == {"big": 8.0, "mid": 4.0}
    assert [s.multipliers for s in steps] == calls and len(calls) == 7
    assert [(s.layer, s.multipliers[s.layer], s.passed) for s in steps] == [
        ("big", 2.0, True), ("big", 4.0, True), ("big", 8.0, True), ("mid", 2.0, True), ("mid", 4.0, True),
        ("mid", 8.0, False), ("small", 2.0, False)]
    assert all(s.multipliers == {**chosen, s.layer: s.multipliers[s.layer]} for s in steps[-2:])  # tried on top


def test_the_run_cap_bounds_the_search():
    chosen, steps = raise_layers(fake_windows, ["big", "mid", "small"], lambda t: t.value >= 46.0, runs=4)
    assert len(steps) == 4 and chosen == {"big": 8.0, "mid": 2.0}
    assert raise_layers(fake_windows, ["big"], lambda t: True, runs=0) == ({}, [])


def test_the_whole_video_check_scales_every_multiplier_back_until_the_video_passes():
    video = lambda m: Trial(0.1, 50.0 - 2.0 * sum(math.log2(v) for v in m.values()), 0.0)  # noqa: E731
    passes = lambda t: t.value >= 45.0  # noqa: E731
    kept, checks = settle_on_video(video, {"a": 8.0, "b": 4.0}, passes)   # 40 dB, then 45 dB
    assert [c.passed for c in checks] == [False, True] and kept == pytest.approx({"a": 8 ** 0.5, "b": 2.0})
    assert checks[-1].multipliers == kept
    # a video that no multiplier keeps: the runs are spent, the global epsilon stays
    kept, checks = settle_on_video(video, {"a": 8.0}, lambda t: t.value >= 49.9, runs=3)
    assert kept == {} and len(checks) == 3 and not any(c.passed for c in checks)
    assert settle_on_video(video, {}, passes) == ({}, [])   # nothing raised: nothing to check


def test_multipliers_enter_the_gate_only_when_present():
    plain = GateConfig("delta", 0.05)
    assert plain.record() == {k: v for k, v in asdict(plain).items() if k != "layer_multipliers"}
    assert "layer_multipliers" not in comparable_gate(plain.record())       # old identities compare as they did
    assert plain.with_multipliers({"a": 1.0}) == plain and plain.label == "delta-rel-e0.05"
    raised = plain.with_multipliers({"b": 4, "a": 2.0, "c": 1})
    assert raised.layer_multipliers == (("a", 2.0), ("b", 4.0))
    assert raised.record()["layer_multipliers"] == {"a": 2.0, "b": 4.0}
    assert raised.label.startswith("delta-rel-e0.05-pl") and raised.label != plain.with_multipliers({"a": 4.0}).label
    assert raised.multiplier("b") == 4.0 and raised.multiplier("c") == 1.0
    assert comparable_gate(raised.record()) != comparable_gate(plain.record())


@pytest.mark.parametrize("kwargs,match", [
    ({"layer_multipliers": (("a", 0.0),)}, "finite numbers > 0"),
    ({"layer_multipliers": (("a", math.inf),)}, "finite numbers > 0"),
    ({"layer_multipliers": (("b", 2.0), ("a", 2.0))}, "once, sorted"),
    ({"layer_multipliers": (("a", 2.0),), "kind": "none"}, "need a thresholded gate")])
def test_bad_multipliers_are_refused(kwargs, match):
    with pytest.raises(SparsesimError, match=match):
        GateConfig(**{"kind": "delta", **kwargs})


@pytest.mark.parametrize("mode", ["relative", "absolute"])
def test_the_effective_threshold_is_epsilon_times_the_layers_multiplier(mode):
    conv, x = nn.Conv2d(3, 4, 3), torch.rand(1, 3, 8, 8) * 3
    gate = GateConfig("delta", 0.05, threshold_mode=mode)
    scale, one = effective_threshold(x, conv, gate)
    assert effective_threshold(x, conv, gate, 4.0) == (scale, pytest.approx(4.0 * one))
    assert one == pytest.approx(0.05 * scale if mode == "relative" else 0.05)


def encode(tmp_path, frames: int):
    from sparsesim.trace import video
    src = tmp_path / "graded.mp4"
    video.encode(src, graded_change(frames))
    return src


def per_layer_trace(src, out, calibration_frames: int, target: float = 60.0):
    assert main(["trace", str(src), "--model", "python:own_nets:two_paths", "--gate", "delta", "--target-psnr",
                 str(target), "--calibration-frames", str(calibration_frames), "--quality-every", "1",
                 "--per-layer", "-o", str(out), "-q"]) == 0
    return trace.open(out)


def check_trace_keeps_what_it_records(t, target: float):
    cal = t.meta["calibration"]
    search, multipliers = cal["per_layer_search"], cal["per_layer"]
    assert t.meta["gate"]["layer_multipliers"] == multipliers and t.meta["gate"]["threshold"] == cal["chosen_eps"]
    gated = ~t.frames["reset"].to_numpy()
    achieved = pooled_psnr(t.frames["psnr_db"].to_numpy()[gated])
    assert achieved >= target and achieved == pytest.approx(search["chosen_value"])   # the search's own figure
    # thresholds.parquet: each layer's threshold is epsilon x its multiplier x its scale
    names = {layer.id: layer.name for layer in t.layers}
    th = t.thresholds
    expected = [cal["chosen_eps"] * multipliers.get(names[i], 1.0) * s for i, s in zip(th["layer"], th["scale"])]
    np.testing.assert_allclose(th["threshold"], expected, rtol=1e-12)
    assert search["global"]["eps"] == cal["chosen_eps"] and search["global"]["value"] == cal["chosen_value"]
    # the point of it: less work on the same frames than at the global epsilon alone
    assert search["chosen_active_mean"] < search["global"]["active_mean"]
    assert search["chosen_active_macs"] < search["global"]["active_macs"]
    return cal, search


def test_the_search_raises_the_harmless_layers_and_not_the_harmful_one(tmp_path, capsys):
    """two_paths: an identity 1x1 conv (skip) carries the frame, a wide 3x3 branch (wide, proj) adds a
    correction scaled by 1e-3. The windows are the video (8 frames): the branch goes to x8, skip stays."""
    t = per_layer_trace(encode(tmp_path, 8), tmp_path / "t", 8)
    capsys.readouterr()
    assert main(["info", str(tmp_path / "t")]) == 0 and "eps raised on proj x8, wide x8)" in capsys.readouterr().out
    cal, search = check_trace_keeps_what_it_records(t, 60.0)
    assert search["order"] == ["wide", "proj", "skip"]                      # by dense MACs
    assert cal["per_layer"] == {"wide": FACTORS[-1], "proj": FACTORS[-1]}
    skip_runs = [s for s in search["search"] if s["layer"] == "skip"]
    assert len(skip_runs) == 1 and not skip_runs[0]["passed"] and skip_runs[0]["value"] < 60.0
    assert search["window_goal"] == 60.0 and search["video_search"] == []   # one window: no video check


def test_the_whole_video_check_is_recorded_and_the_trace_keeps_the_target(tmp_path):
    """30 frames searched on windows of 4: the windows must keep the margin the video had; the multipliers
    the trace runs at are the ones a whole-video run passed with."""
    t = per_layer_trace(encode(tmp_path, 30), tmp_path / "t", 4)
    cal, search = check_trace_keeps_what_it_records(t, 60.0)
    assert "skip" not in cal["per_layer"] and cal["per_layer"]
    video = search["video_search"]
    assert 1 <= len(video) <= 4 and video[-1]["passed"] and video[-1]["multipliers"] == cal["per_layer"]
    slack = cal["chosen_value"] - 60.0       # the global epsilon's margin on the video
    assert search["window_goal"] == pytest.approx(search["baseline"]["value"] - slack)


@pytest.mark.parametrize("args,match", [(["--per-layer"], "--per-layer searches per-layer thresholds for a quality "
                                         "target: give --target or --target-psnr too"),
                                        (["--target-psnr", "30", "--per-layer-runs", "3"], "--per-layer-runs"),
                                        (["--target-psnr", "30", "--per-layer", "--per-layer-runs", "0"],
                                         "--per-layer-runs must be >= 1")])
def test_bad_per_layer_options_are_one_line_errors_and_write_nothing(tmp_path, small_video, capsys, args, match):
    out = tmp_path / "t"
    code = main(["trace", str(small_video), "--model", "mtcnn-pnet", *args, "-o", str(out), "-q"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and match in err and "\n" not in err and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_multipliers_for_layers_the_model_lacks_are_refused(tmp_path, small_video):
    from sparsesim.trace.tracer import TraceOptions, trace_video
    gate = GateConfig("delta", 0.05).with_multipliers({"no_such_layer": 2.0})
    with pytest.raises(SparsesimError, match="no_such_layer"):
        trace_video(TraceOptions(str(small_video), "mtcnn-pnet", gate, output=str(tmp_path / "t"), progress=False))
    assert not (tmp_path / "t").exists()
