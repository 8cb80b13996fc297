"""`sparsesim trace` as a user runs it: happy paths, every bad input, Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from sparsesim import trace
from sparsesim.trace import video
from sparsesim.cli import main

from conftest import moving_square


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_trace_writes_a_complete_readable_trace(capsys, small_video, tmp_path):
    code, out, _ = run_cli(capsys, "trace", small_video, "--model", "mtcnn-pnet", "--threshold", "0.05",
                           "-o", tmp_path / "t", "-q", "--chunk-frames", "4")
    assert code == 0 and "10 frames" in out
    t = trace.open(tmp_path / "t")
    assert t.complete and t.num_frames == 10 and len(t.layers) == 5
    assert t.meta["video"]["sha256"] == video.file_sha256(small_video)
    assert len(list((tmp_path / "t" / "masks").glob("*.parquet"))) == 3
    active = t.active
    assert (active.iloc[0] == 1.0).all() and (active.iloc[1:] < 1.0).all().all()  # first frame dense
    assert np.isfinite(t.frames["psnr_db"].iloc[1:]).all()  # quality checked on every frame
    assert [n for n in t.graph.nodes][:2] == ["input", "conv1"]
    code, out, _ = run_cli(capsys, "info", tmp_path / "t")
    assert code == 0 and "mtcnn-pnet" in out and "PSNR" in out


def test_default_output_name_and_rerun_replaces(capsys, small_video, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ("trace", small_video, "--model", "mtcnn-pnet", "--gate-block", "2", "--frames", "4", "-q",
            "--quality-every", "0")
    assert run_cli(capsys, *args)[0] == 0
    target = tmp_path / "traces" / "square-mtcnn-pnet-delta-rel-e0.1-b2"  # relative delta gates: the defaults
    first = trace.open(target).layer_masks(0)
    assert run_cli(capsys, *args)[0] == 0  # same trace: replaced, and bit-identical
    np.testing.assert_array_equal(trace.open(target).layer_masks(0), first)
    assert np.isnan(trace.open(target).frames["psnr_db"]).all()
    assert sorted(p.name for p in (tmp_path / "traces").iterdir()) == [target.name]


def test_absolute_thresholds_keep_the_old_label_and_an_old_trace_is_still_the_same_trace(capsys, small_video, tmp_path,
                                                                                      monkeypatch):
    """A trace recorded before threshold modes (no threshold_mode or cut_threshold in its identity) is the
    absolute, cut-free trace: re-running it with those settings replaces it, the new defaults do not."""
    import json
    monkeypatch.chdir(tmp_path)
    args = ("trace", small_video, "--model", "mtcnn-pnet", "--frames", "3", "-q", "--quality-every", "0",
            "--gate", "input-norm", "--threshold-mode", "absolute", "--cut-threshold", "0")   # the pre-mode defaults
    assert run_cli(capsys, *args)[0] == 0
    target = tmp_path / "traces" / "square-mtcnn-pnet-input-norm-e0.1"
    meta = json.loads((target / "meta.json").read_text())
    for key in ("threshold_mode", "cut_threshold"):   # as a pre-mode sparsesim wrote it
        del meta["identity"]["gate"][key]
    (target / "meta.json").write_text(json.dumps(meta))
    assert run_cli(capsys, *args)[0] == 0
    code, _, err = run_cli(capsys, *args[:-4], "-o", target)
    assert code != 0 and "different trace" in err


def test_size_start_and_frames(capsys, small_video, tmp_path):
    code, *_ = run_cli(capsys, "trace", small_video, "--model", "mtcnn-pnet", "--size", "40x30", "--start", "3",
                       "--frames", "5", "-o", tmp_path / "t", "-q")
    t = trace.open(tmp_path / "t")
    assert code == 0 and t.num_frames == 5 and list(t.frames["source_frame"]) == [3, 4, 5, 6, 7]
    assert t.layers[0].in_h == 30 and t.layers[0].in_w == 40


def test_rife_consumes_frame_pairs(capsys, video_64, tmp_path):
    code, *_ = run_cli(capsys, "trace", video_64, "--model", "rife", "-o", tmp_path / "t", "-q")
    t = trace.open(tmp_path / "t")
    assert code == 0 and t.num_frames == 5 and len(t.layers) == 44
    assert t.graph.number_of_nodes() == 46 and t.layers[-1].name == "block3.lastconv"


@pytest.fixture
def bad_files(tmp_path, small_video):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    data = small_video.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    mkv = tmp_path / "ok.mkv"
    video.encode(mkv, moving_square(10))
    empty = tmp_path / "empty.mkv"  # the header survives, no frame does
    empty.write_bytes(mkv.read_bytes()[: mkv.stat().st_size // 2])
    short = tmp_path / "short.mkv"  # declares 10 frames, decodes fewer
    short.write_bytes(mkv.read_bytes()[: int(mkv.stat().st_size * 0.95)])
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("user data")
    return dict(text=text, truncated=truncated, empty=empty, short=short, wrong=wrong, blocker=blocker,
                other=other)


@pytest.mark.parametrize("case,needles", [
    (lambda f, v: [f["text"].parent / "missing.mp4"], ["video not found", "missing.mp4"]),
    (lambda f, v: [f["text"]], ["not a video PyAV can decode", "notes.mp4"]),
    (lambda f, v: [f["truncated"]], ["not a video PyAV can decode", "truncated.mp4"]),
    (lambda f, v: [f["empty"]], ["no decodable frames", "empty.mkv"]),
    (lambda f, v: [f["short"]], ["truncated video", "ends after"]),
    (lambda f, v: [v, "--model", "resnet"], ["unknown model 'resnet'", "rife"]),
    (lambda f, v: [v, "--checkpoint", f["wrong"], "--model", "mtcnn-pnet"], ["does not fit model", "missing keys"]),
    (lambda f, v: [v, "--checkpoint", f["text"].parent / "nope.pt"], ["checkpoint not found"]),
    (lambda f, v: [v, "-o", f["blocker"] / "sub"], ["cannot write output directory"]),
    (lambda f, v: [v, "-o", f["blocker"]], ["is not a directory"]),
    (lambda f, v: [v, "-o", f["other"]], ["not empty and holds no sparsesim trace"]),
    (lambda f, v: [v, "--frames", "0"], ["--frames must be >= 1"]),
    (lambda f, v: [v, "--threshold", "-1"], ["--threshold must be a finite number >= 0"]),
    (lambda f, v: [v, "--threshold", "abc"], ["not a number"]),
    (lambda f, v: [v, "--size", "big"], ["--size must look like"]),
    (lambda f, v: [v, "--gate", "magic"], ["unknown gate"]),
    (lambda f, v: [v, "--start", "500", "--model", "mtcnn-pnet"], ["no decodable frames", "from frame 500"]),
    (lambda f, v: [v, "--frames", "1", "--model", "rife"], ["needs at least 2"]),
    (lambda f, v: ["sample:nope"], ["unknown sample video"]),
])
def test_bad_input_gets_one_line_and_leaves_no_file(capsys, bad_files, small_video, tmp_path, case, needles):
    args = case(bad_files, small_video)
    out_args = [] if "-o" in args else ["-o", tmp_path / "out"]
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run_cli(capsys, "trace", *args, *out_args, "-q")
    assert_one_line_error(code, err, *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing new, nothing half-written
    assert (bad_files["other"] / "keep.txt").read_text() == "user data"


def test_a_different_trace_is_never_overwritten(capsys, small_video, tmp_path):
    base = ["trace", small_video, "--model", "mtcnn-pnet", "-o", tmp_path / "t", "-q", "--frames", "3"]
    assert run_cli(capsys, *base)[0] == 0
    meta = (tmp_path / "t" / "meta.json").read_text()
    code, _, err = run_cli(capsys, *base, "--threshold", "0.3")
    assert_one_line_error(code, err, "already holds a different trace")
    assert (tmp_path / "t" / "meta.json").read_text() == meta


def test_ctrl_c_leaves_an_incomplete_readable_trace(tmp_path):
    src = tmp_path / "long.mp4"
    video.encode(src, moving_square(400, size=(128, 96)))
    target = tmp_path / "t"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sparsesim.cli", "trace", str(src), "--model", "rife",
                             "-o", str(target), "--chunk-frames", "2", "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".t.partial-*/masks/chunk-000001.parquet")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "incomplete trace" in err and "Traceback" not in err
    t = trace.open(target)
    assert not t.complete and t.meta["status"] == "interrupted"
    assert 4 <= t.num_frames < 399
    assert len(t.frames) == t.num_frames
    assert len(list(t.masks())) == t.num_frames * len(t.layers)
    assert json.loads((target / "meta.json").read_text())["complete"] is False
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_traces_recorded_before_a_new_gate_setting_still_match(capsys, small_video, tmp_path):
    base = ["trace", str(small_video), "--model", "mtcnn-pnet", "-o", str(tmp_path / "t"), "-q", "--frames", "3"]
    assert run_cli(capsys, *base)[0] == 0
    meta_path = tmp_path / "t" / "meta.json"
    meta = json.loads(meta_path.read_text())
    for key in ("prune", "keep", "masks", "checkpoint", "channel_scales"):  # as an older sparsesim wrote it
        meta["identity"]["gate"].pop(key)
    meta_path.write_text(json.dumps(meta))
    assert run_cli(capsys, *base)[0] == 0  # the same trace: replaced, not refused
