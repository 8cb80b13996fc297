"""Atomic file writes: a temporary file in the same directory, renamed into place when complete."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:                 # loaded where a table is written, not by every command that imports this
    import pandas as pd
    import pyarrow as pa


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, write) -> None:
    """Write via a temporary file in the same directory, then rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp's 0600 would hide the trace from other users
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(e, path)


def write_atomic_all(writes: "list[tuple[Path, object]]") -> None:
    """Several files as one result: every temporary file is written before any is renamed, so a full
    disk or a failing write leaves all the previous files (not a mix of old and new)."""
    tmps: list[str] = []
    try:
        for path, write in writes:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            os.close(fd)
            tmps.append(tmp)
            write(tmp)
            os.chmod(tmp, 0o666 & ~umask())
        for (path, _), tmp in zip(writes, tmps):
            os.replace(tmp, path)   # renames within one directory: no data written, nothing to run out of
    except BaseException as e:
        for tmp in tmps:
            Path(tmp).unlink(missing_ok=True)
        raise _naming(e, writes[len(tmps) - 1][0] if tmps else writes[0][0])


def _naming(e: BaseException, path: Path) -> BaseException:
    """A write's OSError (disk full, read-only) names the file the user asked for, not its hidden temporary
    (pyarrow's carry the errno in their text only)."""
    if isinstance(e, OSError) and not isinstance(e, FileExistsError):
        return OSError(e.errno, e.strerror or (str(e).splitlines() or ["write failed"])[0], str(path))
    return e


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2, sort_keys=True)))


def write_table(path: Path, table: "pa.Table") -> None:
    import pyarrow.parquet as pq
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


def frame_writer(path: Path, df: "pd.DataFrame"):
    """A function writing a pandas table to a given path as parquet or CSV (by `path`'s extension)."""
    if path.suffix == ".csv":
        return lambda tmp: df.to_csv(tmp, index=False)
    return lambda tmp: df.to_parquet(tmp, index=False)


def write_frame(path: Path, df: "pd.DataFrame") -> None:
    """A pandas table as parquet or CSV, chosen by the file extension."""
    write_atomic(path, frame_writer(path, df))


def table_path(output: str | None) -> Path | None:
    """An output table path, checked: parquet or CSV by extension."""
    from .errors import SparsesimError
    if output is None:
        return None
    path = Path(output)
    if path.suffix not in (".parquet", ".csv"):
        raise SparsesimError(f"-o must end in .parquet or .csv, got {path.name}")
    return path


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE): whoever dies around it
    leaves each name holding one whole tree. False where the C library or the filesystem cannot."""
    import ctypes
    import errno
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2  # glibc >= 2.28
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):  # old kernel, or a filesystem without it
        return False
    raise OSError(err, os.strerror(err), str(b))
