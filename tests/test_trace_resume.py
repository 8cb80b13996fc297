"""`trace --resume` and the final swap, against real kills: a tracer in a subprocess is SIGKILLed at a
random frame (or, through the documented test hook SPARSESIM_TEST_KILL_AT, between the renames of its
final swap), and what is on disk afterwards is compared with an uninterrupted trace."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparsesim import trace
from sparsesim.cli import main
from sparsesim.trace import manifest, video
from sparsesim.trace.format import KILL_AT_ENV, NO_EXCHANGE_ENV
from sparsesim.trace.resume import _split_frames
from sparsesim.trace.tracer import TraceOptions, trace_video

from conftest import moving_square

SAMPLE = "sample:carphone_pristine"
FRAMES, CHUNK = 64, 4
TIMEOUT = 120


def trace_cmd(target: Path, *extra: str, model: str = "mtcnn-pnet", src: str = SAMPLE, frames: int = FRAMES,
              chunk: int = CHUNK) -> list[str]:
    # --threads 1: the in-process reference runs on one thread too (conftest), bit for bit the same sums
    return [sys.executable, "-m", "sparsesim.cli", "trace", src, "--model", model, "-o", str(target),
            "--frames", str(frames), "--chunk-frames", str(chunk), "--threads", "1", *extra]


def run(cmd: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, env={**os.environ, **env})


def run_here(capsys, cmd: list[str]) -> tuple[int, str, str]:
    """A command run in this process: what is not killed needs no subprocess (nor its start-up time)."""
    capsys.readouterr()
    code = main([str(a) for a in cmd[cmd.index("trace"):]])
    out, err = capsys.readouterr()
    return code, out, err


def start_and_kill(cmd: list[str], target: Path, chunks: int, rng: np.random.Generator,
                   sig: int = signal.SIGKILL) -> subprocess.Popen:
    """Start a tracer, wait until its partial directory holds `chunks` whole chunks (the frame chunk is
    written after the mask chunk), wait a random few milliseconds more (so the kill lands at a random
    frame of a later chunk, or between a chunk's two files), send `sig`."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wanted = f".{target.name}.partial-{proc.pid}-*/frame-chunks/chunk-{chunks - 1:06d}.parquet"
    deadline = time.monotonic() + TIMEOUT
    while not list(target.parent.glob(wanted)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.002)
    time.sleep(float(rng.uniform(0, 0.06)))
    proc.send_signal(sig)
    proc.communicate(timeout=TIMEOUT)
    return proc


def reference(path: Path, reset_at: int, model: str = "mtcnn-pnet", src: str = SAMPLE,
              frames: int = FRAMES, **options) -> trace.Trace:
    """The same trace uninterrupted, with the resumed trace's dense frame forced at `reset_at`."""
    trace_video(TraceOptions(video=src, model=model, frames=frames, output=str(path), chunk_frames=CHUNK,
                             progress=False, reset_at=(reset_at,), **options))
    return trace.open(path)


def assert_same_trace(got: trace.Trace, want: trace.Trace) -> None:
    """Mask for mask, and the frames table (it has no timing columns: every column must match)."""
    assert got.layers == want.layers and list(got.graph.edges) == list(want.graph.edges)
    assert got.frames.equals(want.frames)
    # relative thresholds: each dense frame's scales, those recorded before the kill kept
    assert (got.thresholds is None) == (want.thresholds is None)
    assert got.thresholds is None or got.thresholds.equals(want.thresholds)
    pairs = 0
    for a, b in zip(got.masks(), want.masks(), strict=True):
        assert (a.frame, a.layer) == (b.frame, b.layer) and np.array_equal(a.mask, b.mask), (a.frame, a.layer)
        pairs += 1
    assert pairs == got.num_frames * len(got.layers)


def resumed_at(t: trace.Trace) -> int:
    return t.meta["resumed"][-1]["frame"]


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("seed", [0, 1, 5])   # 7, 4, 6 whole chunks, then a kill 0-60 ms on
def test_resume_after_sigkill_equals_an_uninterrupted_trace_reset_there(capsys, tmp_path, seed):
    rng = np.random.default_rng(seed)
    target = tmp_path / "t"
    chunks = int(rng.integers(1, 9))
    killed = start_and_kill(trace_cmd(target, "-q"), target, chunks, rng)
    assert killed.returncode == -signal.SIGKILL
    assert not target.exists() and len(list(tmp_path.glob(".t.partial-*"))) == 1   # what the kill left

    code, _, err = run_here(capsys, trace_cmd(target, "--resume"))
    assert code == 0 and "resuming the killed trace" in err, err
    got = trace.open(target)
    at = resumed_at(got)
    assert f"at frame {at} " in err and f"| {at}/{FRAMES} " in err  # the progress bar starts there
    assert at % CHUNK == 0 and chunks * CHUNK <= at < FRAMES
    assert got.complete and got.num_frames == FRAMES and manifest.problems(target) == []
    assert got.frames.set_index("frame").loc[at, "reset_reason"] == "resume"
    assert_same_trace(got, reference(tmp_path / "ref", at))
    assert hidden(tmp_path) == []   # the killed writer's partial and lock are gone


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Path:
    """A trace closed as incomplete by SIGTERM (as Ctrl-C does) after a few chunks; tests copy it."""
    target = tmp_path_factory.mktemp("interrupted") / "t"
    proc = start_and_kill(trace_cmd(target, "-q"), target, 3, np.random.default_rng(7), signal.SIGTERM)
    assert proc.returncode == 130
    t = trace.open(target)
    assert not t.complete and t.meta["status"] == "interrupted" and 3 * CHUNK <= t.num_frames < FRAMES
    return target


def copy_of(src: Path, folder: Path) -> Path:
    shutil.copytree(src, folder / "t")
    return folder / "t"


def test_resume_continues_an_interrupted_trace_from_its_last_whole_chunk(capsys, tmp_path, interrupted):
    target = copy_of(interrupted, tmp_path)
    before = trace.open(target).num_frames
    code, _, err = run_here(capsys, trace_cmd(target, "--resume", "-q"))
    assert code == 0 and "resuming the interrupted trace" in err, err
    got = trace.open(target)
    assert resumed_at(got) == before // CHUNK * CHUNK   # a last, part-filled chunk is traced again
    assert got.complete and got.num_frames == FRAMES
    assert_same_trace(got, reference(tmp_path / "ref", resumed_at(got)))


def old_or_new(target: Path, old: Path) -> str:
    """Which whole trace the target holds; a mix of the two fails the full manifest check."""
    assert manifest.problems(target) == []
    if (target / manifest.NAME).read_bytes() == (old / manifest.NAME).read_bytes():
        return "old"
    t = trace.open(target)
    assert t.complete and t.num_frames == FRAMES and resumed_at(t) > 0
    return "new"


@pytest.mark.parametrize("point, no_exchange, left", [
    ("swap", "", "old"),                  # before the swap
    ("swap-exchanged", "", "new"),        # after the one atomic exchange, before the old one is removed
    ("swap-old-moved", "1", "old"),       # two-rename fallback, between the renames: the old comes back
])
def test_sigkill_during_the_final_swap_leaves_the_old_or_the_new_trace(capsys, tmp_path, interrupted, point,
                                                                       no_exchange, left):
    target = copy_of(interrupted, tmp_path)
    killed = run(trace_cmd(target, "--resume", "-q"), **{KILL_AT_ENV: point, NO_EXCHANGE_ENV: no_exchange})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert target.exists() == (point != "swap-old-moved")   # the fallback's gap: no target, an old one beside
    trace.open(target)                                     # any reader puts the old one back
    assert old_or_new(target, interrupted) == left
    # The next run finds a sound state: it finishes the old trace, or leaves the new one as it is.
    code, out, err = run_here(capsys, trace_cmd(target, "--resume", "-q"))
    assert code == 0, err
    assert ("nothing to resume" in out) == (left == "new")
    assert old_or_new(target, interrupted) == "new"
    # A writer removes what a killed one left (its lock, its partial); a run that found nothing to write
    # leaves them to the next writer, and no old trace is ever left beside the target.
    assert hidden(tmp_path) == ([] if left == "old" else [".t.lock", *hidden_partials(tmp_path)])


def hidden_partials(folder: Path) -> list[str]:
    partials = [p for p in folder.glob(".t.partial-*") if (p / manifest.NAME).exists()]
    return sorted(p.name for p in partials)


def test_the_two_rename_fallback_swaps_too(capsys, monkeypatch, tmp_path, interrupted):
    target = copy_of(interrupted, tmp_path)
    monkeypatch.setenv(NO_EXCHANGE_ENV, "1")
    code, _, err = run_here(capsys, trace_cmd(target, "--resume", "-q"))
    assert code == 0, err
    assert old_or_new(target, interrupted) == "new" and hidden(tmp_path) == []


def killed_partial(src: Path, target: Path, damage: int | None = None) -> Path:
    """A complete trace laid out as a killed writer leaves it: chunk files, no frames.parquet nor
    manifest, named after a process that does not exist; optionally mask chunk `damage` truncated."""
    partial = target.parent / f".{target.name}.partial-999999999-abcd"
    shutil.copytree(src, partial)
    (partial / manifest.NAME).unlink()
    (partial / "frame-chunks").mkdir()
    meta = json.loads((partial / "meta.json").read_text())
    _split_frames(partial / "frames.parquet", partial / "frame-chunks", meta["masks"]["chunk_frames"])
    (partial / "frames.parquet").unlink()
    meta.update(complete=False, status=None)
    (partial / "meta.json").write_text(json.dumps(meta))
    if damage is not None:
        chunk = partial / "masks" / f"chunk-{damage:06d}.parquet"
        chunk.write_bytes(chunk.read_bytes()[:-20])
    return partial


def trace_small(capsys, small_video, target: Path, *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["trace", str(small_video), "--model", "mtcnn-pnet", "-o", str(target), "--chunk-frames", "2",
                 "-q", *extra])
    out, err = capsys.readouterr()
    return code, out, err


def test_resume_keeps_the_chunks_before_a_damaged_one(capsys, small_video, tmp_path):
    assert trace_small(capsys, small_video, tmp_path / "whole")[0] == 0
    target = tmp_path / "t"
    killed_partial(tmp_path / "whole", target, damage=3)
    code, _, err = trace_small(capsys, small_video, target, "--resume")
    assert code == 0 and "at frame 6 (3 whole chunks kept, 4 frames after it dropped)" in err, err
    got = trace.open(target)
    assert resumed_at(got) == 6 and got.num_frames == 10
    trace_video(TraceOptions(video=str(small_video), model="mtcnn-pnet", output=str(tmp_path / "ref"),
                             chunk_frames=2, progress=False, reset_at=(6,)))
    assert_same_trace(got, trace.open(tmp_path / "ref"))
    assert not trace.open(tmp_path / "ref").frames.equals(trace.open(tmp_path / "whole").frames)


def test_resume_refuses_a_partial_trace_of_other_settings(capsys, small_video, tmp_path):
    assert trace_small(capsys, small_video, tmp_path / "other", "--threshold", "0.3")[0] == 0
    partial = killed_partial(tmp_path / "other", tmp_path / "t")
    code, out, err = trace_small(capsys, small_video, tmp_path / "t", "--resume")
    assert code == 2 and err.count("\n") == 1 and "cannot resume" in err and "other settings" in err, err
    assert partial.exists() and not (tmp_path / "t").exists()   # nothing taken, nothing written


def test_a_writer_killed_after_its_last_chunk_is_closed_by_the_resume(capsys, small_video, tmp_path):
    assert trace_small(capsys, small_video, tmp_path / "whole")[0] == 0
    killed_partial(tmp_path / "whole", tmp_path / "t")
    code, _, err = trace_small(capsys, small_video, tmp_path / "t", "--resume")
    assert code == 0 and "at frame 10 (5 whole chunks kept)" in err, err
    got = trace.open(tmp_path / "t")
    assert got.complete and manifest.problems(tmp_path / "t") == []
    assert_same_trace(got, trace.open(tmp_path / "whole"))   # nothing traced again, no reset added


def test_a_failed_resume_puts_the_killed_partial_back(capsys, small_video, tmp_path):
    assert trace_small(capsys, small_video, tmp_path / "whole")[0] == 0
    partial = killed_partial(tmp_path / "whole", tmp_path / "t", damage=4)  # frames 8, 9 to trace again
    layers = pq.read_table(partial / "layers.parquet")
    out_h = pa.array([h + 1 for h in layers.column("out_h").to_pylist()], layers.schema.field("out_h").type)
    pq.write_table(layers.set_column(layers.schema.get_field_index("out_h"), "out_h", out_h),
                   partial / "layers.parquet")
    before = sorted(p.relative_to(partial).as_posix() for p in partial.rglob("*"))
    code, _, err = trace_small(capsys, small_video, tmp_path / "t", "--resume")
    assert code == 2 and "the model's layers differ from the ones it recorded" in err, err
    dropped = {"masks/chunk-000004.parquet", "frame-chunks/chunk-000004.parquet"}   # the damaged chunk
    assert sorted(p.relative_to(partial).as_posix() for p in partial.rglob("*")) == sorted(set(before) - dropped)
    assert not (tmp_path / "t").exists() and hidden(tmp_path) == [partial.name]


def test_resume_without_anything_to_resume_traces_from_the_start(capsys, small_video, tmp_path):
    code, out, err = trace_small(capsys, small_video, tmp_path / "t", "--resume")
    assert code == 0 and err == f"nothing to resume at {tmp_path / 't'}: tracing from the start\n"
    assert trace.open(tmp_path / "t").complete and "resumed" not in trace.open(tmp_path / "t").meta


def test_resume_leaves_a_complete_trace_as_it_is(capsys, small_video, tmp_path):
    assert trace_small(capsys, small_video, tmp_path / "t")[0] == 0
    before = (tmp_path / "t" / manifest.NAME).read_bytes()
    code, out, err = trace_small(capsys, small_video, tmp_path / "t", "--resume")
    assert code == 0 and "is complete (10 frames): nothing to resume" in out and err == ""
    assert (tmp_path / "t" / manifest.NAME).read_bytes() == before


@pytest.mark.slow
def test_resume_after_sigkill_rife_frame_pairs(capsys, tmp_path):
    """RIFE steps on frame pairs: the resumed step needs the frame before it in its window."""
    src = tmp_path / "square.mp4"
    video.encode(src, moving_square(24, size=(64, 64)))
    target = tmp_path / "t"
    cmd = trace_cmd(target, "-q", model="rife", src=str(src), frames=24, chunk=CHUNK)
    killed = start_and_kill(cmd, target, 2, np.random.default_rng(3))
    assert killed.returncode == -signal.SIGKILL and not target.exists()
    code, _, err = run_here(capsys, trace_cmd(target, "--resume", "-q", model="rife", src=str(src), frames=24))
    assert code == 0, err
    got = trace.open(target)
    at = resumed_at(got)
    assert got.complete and got.num_frames == 23 and CHUNK * 2 <= at < 23
    assert_same_trace(got, reference(tmp_path / "ref", at, model="rife", src=str(src), frames=24))


@pytest.mark.slow
def test_resume_after_sigkill_with_vfi_eval_steps_two_frames_at_a_time(capsys, tmp_path):
    """--vfi-eval steps read frames 2k, 2k+1 (scored), 2k+2: the resumed run decodes from 2k, so its source
    and reference frames, masks and scores are the uninterrupted run's."""
    src = tmp_path / "square.mp4"
    video.encode(src, moving_square(40, size=(64, 64)))
    target = tmp_path / "t"
    cmd = trace_cmd(target, "-q", "--vfi-eval", model="rife", src=str(src), frames=40, chunk=CHUNK)
    killed = start_and_kill(cmd, target, 2, np.random.default_rng(4))
    assert killed.returncode == -signal.SIGKILL and not target.exists()
    code, _, err = run_here(capsys, trace_cmd(target, "--resume", "-q", "--vfi-eval", model="rife", src=str(src),
                                              frames=40))
    assert code == 0, err
    got = trace.open(target)
    at = resumed_at(got)
    assert got.complete and got.num_frames == 19 and CHUNK * 2 <= at < 19
    assert got.frames["reference_frame"].tolist() == list(range(1, 39, 2))
    assert_same_trace(got, reference(tmp_path / "ref", at, model="rife", src=str(src), frames=40, vfi_eval=True))
