"""One writer per output directory; a lock left by a killed writer is taken over."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap

import pytest

from sparsesim.errors import TraceError
from sparsesim.trace import TraceWriter
from sparsesim.trace.lock import OutputLock, lock_path

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from sparsesim.trace import TraceWriter
    w = TraceWriter(Path(sys.argv[1]), {"model": {"name": "toy"}, "gate": {"kind": "input-norm"}})
    print("locked", flush=True)
    time.sleep(60)
""")


def holder(target):
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(target)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_second_writer_is_told_who_holds_the_directory(tmp_path):
    target = tmp_path / "out"
    p = holder(target)
    try:
        with pytest.raises(TraceError, match=rf"in use by pid {p.pid} on host {socket.gethostname()}"):
            TraceWriter(target, {"model": {"name": "toy"}})
    finally:
        p.kill()
        p.wait()


def test_lock_of_a_killed_writer_is_taken_over(tmp_path):
    target = tmp_path / "out"
    p = holder(target)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert lock_path(target).exists()          # the stale lock file is still there
    w = TraceWriter(target, {"model": {"name": "toy"}, "gate": {"kind": "input-norm"}})
    assert str(os.getpid()) in lock_path(target).read_text()
    w.abort()
    assert not lock_path(target).exists()


def test_released_lock_can_be_taken_again_and_other_outputs_are_free(tmp_path):
    a = OutputLock(tmp_path / "a")
    b = OutputLock(tmp_path / "b")              # another directory: no conflict
    with pytest.raises(TraceError, match="in use by pid"):
        OutputLock(tmp_path / "a")               # a second writer in the same process too
    a.release()
    OutputLock(tmp_path / "a").release()
    b.release()
