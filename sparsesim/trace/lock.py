"""One writer per trace directory: an flock on `.NAME.lock` beside it, holding pid, host and start time.

The kernel drops an flock when its process dies, however it dies, so a lock file left by a killed writer
is stale by construction and the next writer simply takes it (no pid guessing, no race between a
"is it dead?" test and the takeover). The file's text is only there to name the holder in the error.
Caveat: flock across machines needs a filesystem that supports it (local disks do; some NFS setups not).
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path

from ..errors import TraceError


def lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


class OutputLock:
    """Held from construction until `release()`; a second holder gets a TraceError naming the first."""

    def __init__(self, target: Path) -> None:
        self.path = lock_path(Path(target))
        self.fd: int | None = None
        while self.fd is None:
            self.fd = self._try_lock(Path(target))
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, record.encode(), 0)

    def _try_lock(self, target: Path) -> int | None:
        """The locked descriptor, or None when the file was unlinked by its releasing holder meanwhile."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise TraceError(f"cannot write output directory {target}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise TraceError(f"output directory {target} is in use by pid {holder.get('pid', '?')} on host "
                             f"{holder.get('host', '?')} (since {holder.get('started', '?')}); wait for it "
                             "or choose another -o") from None
        try:
            same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # we locked an inode its holder had just unlinked: try the current file
            os.close(fd)
            return None
        return fd

    def release(self) -> None:
        if self.fd is None:
            return
        # Unlink while still holding the lock; a writer that opened the old inode sees it is gone (_try_lock).
        self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None


def _holder(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
