"""A full disk or a read-only target: writing a trace, an estimate (-o FILE) or a report (-o DIR) fails in
one line with a non-zero exit, and the previous result stays as it was (no mix of old and new files, no
temporary files left beside it).

The disk fills through a fake: every file sparsesim writes (through Python's `open`, and the temporary
files of the atomic writers, which pyarrow fills from C++, charged when they are complete) counts against a
budget of N bytes; the write that crosses it raises OSError(ENOSPC), as a full filesystem does. Read-only targets raise EROFS where a
file or directory would be created there (tests run as root here, and chmod does not stop root). One test
mounts a real 256 KiB tmpfs where this user may mount (skipped elsewhere; the fakes cover the same paths).
"""
from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sparsesim.cli import main

REPO = Path(__file__).resolve().parent.parent


def snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` (hidden ones too) -> its SHA-256."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code: int, err: str, words: str) -> None:
    assert code != 0
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err and words in err, err


class Disk:
    """A fake filesystem budget: writes beyond `budget` bytes in all raise ENOSPC."""

    def __init__(self, monkeypatch, budget: int) -> None:
        self.budget, self.used = budget, 0
        real_open, real_chmod = builtins.open, os.chmod

        def charge(n: int, name) -> None:
            self.used += n
            if self.used > self.budget:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(name))

        class Counted(io.IOBase):
            def __init__(self, f, name):
                self._f, self._name = f, name

            def write(self, data):
                charge(len(data), self._name)
                return self._f.write(data)

            def __getattr__(self, attr):
                return getattr(self._f, attr)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self._f.close()

            def close(self):
                self._f.close()

        def counted_open(file, mode="r", *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            return Counted(f, file) if any(c in mode for c in "wax+") else f

        def chmod(path, mode, *args, **kwargs):
            # The atomic writers chmod each temporary file once it is filled (pyarrow fills it from C++,
            # past Python's open): its size is charged there.
            if str(path).endswith(".tmp") and Path(path).is_file():
                charge(Path(path).stat().st_size, path)
            return real_chmod(path, mode, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", counted_open)
        monkeypatch.setattr(io, "open", counted_open)
        monkeypatch.setattr(os, "chmod", chmod)


def read_only(monkeypatch, root: Path) -> None:
    """Creating anything under `root` fails with EROFS (temporary files and directories, lock files)."""
    def refuse(path) -> None:
        if Path(path).resolve().is_relative_to(root.resolve()):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
    real_mkstemp, real_mkdtemp, real_os_open, real_mkdir = tempfile.mkstemp, tempfile.mkdtemp, os.open, os.mkdir
    monkeypatch.setattr(tempfile, "mkstemp", lambda *a, dir=None, **k: (refuse(dir or "."), real_mkstemp(*a, dir=dir, **k))[1])
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, dir=None, **k: (refuse(dir or "."), real_mkdtemp(*a, dir=dir, **k))[1])
    monkeypatch.setattr(os, "open", lambda path, flags, *a, **k: (refuse(path) if flags & os.O_CREAT else None,
                                                                   real_os_open(path, flags, *a, **k))[1])
    monkeypatch.setattr(os, "mkdir", lambda path, *a, **k: (refuse(path), real_mkdir(path, *a, **k))[1])


# ------------------------------------------------------------------------------------------- estimate

def estimate_argv(trace: Path, out: Path, blocks: str) -> tuple:
    return ("estimate", trace, "--hw", "h100,eyeriss", "--block", blocks, "-o", out)


@pytest.mark.parametrize("runs_out_in", [0, 1, 2])
def test_estimate_on_a_full_disk_keeps_the_previous_tables(capsys, monkeypatch, small_trace, tmp_path, runs_out_in):
    """The disk runs out halfway through FILE, FILE.layers or FILE.summary of the new estimate: all three
    stay as the previous run wrote them (they were replaced one by one before: a mix)."""
    probe = tmp_path / "probe"
    probe.mkdir()
    assert run(capsys, *estimate_argv(small_trace, probe / "est.parquet", "2,4,8,16"))[0] == 0
    sizes = [(probe / name).stat().st_size for name in ("est.parquet", "est.layers.parquet", "est.summary.parquet")]
    work = tmp_path / "work"
    work.mkdir()
    out = work / "est.parquet"
    code, _, err = run(capsys, *estimate_argv(small_trace, out, "2"))
    assert code == 0, err
    before = snapshot(work)
    Disk(monkeypatch, sum(sizes[:runs_out_in]) + sizes[runs_out_in] // 2)
    code, _, err = run(capsys, *estimate_argv(small_trace, out, "2,4,8,16"))
    assert_one_line(code, err, "No space left on device")
    assert snapshot(work) == before


# --------------------------------------------------------------------------------------------- report

def report_argv(trace: Path, out: Path, blocks: str) -> tuple:
    return ("report", trace, "--hw", "h100", "--block", blocks, "-o", out)


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.95])
def test_report_on_a_full_disk_keeps_the_previous_report(capsys, monkeypatch, small_trace, tmp_path, fraction):
    out = tmp_path / "report"
    code, _, err = run(capsys, *report_argv(small_trace, out, "2,4"))
    assert code == 0, err
    before = snapshot(tmp_path)
    Disk(monkeypatch, int(sum((tmp_path / f).stat().st_size for f in before) * fraction))
    code, _, err = run(capsys, *report_argv(small_trace, out, "8"))
    assert_one_line(code, err, "No space left on device")
    assert snapshot(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


# ---------------------------------------------------------------------------------------------- trace

def trace_argv(video: Path, out: Path, threshold: str) -> tuple:
    return ("trace", video, "--model", "mtcnn-pnet", "--threshold", threshold, "--chunk-frames", "4", "-o", out, "-q")


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.5, 0.8, 0.97])
def test_trace_on_a_full_disk_keeps_the_previous_trace(capsys, monkeypatch, small_video, tmp_path, fraction):
    """Budgets that run out in the layers, a mask chunk, frames.parquet or the manifest of the new trace."""
    out = tmp_path / "t"
    code, _, err = run(capsys, *trace_argv(small_video, out, "0.05"))
    assert code == 0, err
    before = snapshot(tmp_path)
    Disk(monkeypatch, int(sum((tmp_path / f).stat().st_size for f in before) * fraction))
    code, _, err = run(capsys, *trace_argv(small_video, out, "0.05"))
    assert_one_line(code, err, "No space left on device")
    monkeypatch.undo()
    assert snapshot(tmp_path) == before       # nothing partial beside it either
    assert run(capsys, "check", out)[0] == 0


# One table for the read-only target of every writer: (argv builder, its input fixture, the output, the
# first and the second run's setting).
READ_ONLY = {"estimate": (estimate_argv, "small_trace", "est.csv", "2", "8"),
             "report": (report_argv, "small_trace", "report", "2", "8"),
             "trace": (trace_argv, "small_video", "t", "0.05", "0.05")}


@pytest.mark.parametrize("command", READ_ONLY)
def test_a_read_only_directory_keeps_the_previous_result(capsys, monkeypatch, request, tmp_path, command):
    argv, fixture, name, first, second = READ_ONLY[command]
    source, out = request.getfixturevalue(fixture), tmp_path / name
    assert run(capsys, *argv(source, out, first))[0] == 0
    before = snapshot(tmp_path)
    read_only(monkeypatch, tmp_path)
    code, _, err = run(capsys, *argv(source, out, second))
    assert_one_line(code, err, "Read-only file system")
    monkeypatch.undo()
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------- a real small tmpfs

@pytest.fixture
def tmpfs(tmp_path):
    """A 256 KiB tmpfs, where this user may mount one (root in a container); skipped elsewhere."""
    point = tmp_path / "mnt"
    point.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(point)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the fake disks above cover the same writes")
    yield point
    subprocess.run(["umount", str(point)], check=True)


def test_a_real_full_tmpfs_and_remounted_read_only(small_trace, tmpfs):
    """In a real process: an estimate that fills the tmpfs fails in one line and keeps the previous tables;
    remounted read-only, the same."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    def cli(*argv):
        return subprocess.run([sys.executable, "-m", "sparsesim.cli", *map(str, argv)], capture_output=True,
                              text=True, env=env, timeout=300)
    out = tmpfs / "est.csv"
    first = cli("estimate", small_trace, "--hw", "h100", "--block", "2", "-o", out)
    assert first.returncode == 0, first.stderr
    before = snapshot(tmpfs)
    (tmpfs / "ballast").write_bytes(b"\0" * (os.statvfs(tmpfs).f_bavail * os.statvfs(tmpfs).f_frsize - 4096))
    before["ballast"] = snapshot(tmpfs)["ballast"]
    full = cli("estimate", small_trace, "--hw", "h100,eyeriss,tpu-v1", "--block", "1,2,4,8", "-o", out)
    assert full.returncode == 2 and len(full.stderr.splitlines()) == 1, full.stderr
    assert "No space left on device" in full.stderr and "Traceback" not in full.stderr
    assert snapshot(tmpfs) == before
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    ro = cli("estimate", small_trace, "--hw", "h100", "--block", "4", "-o", out)
    assert ro.returncode == 2 and len(ro.stderr.splitlines()) == 1 and "Read-only file system" in ro.stderr, ro.stderr
    assert snapshot(tmpfs) == before
