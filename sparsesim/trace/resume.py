"""`trace --resume`: continue a trace that was killed or interrupted, from its last whole chunk.

What can be continued, under the output lock (so no writer is running):
- killed: the partial directory `.NAME.partial-PID-X` of a writer whose process is gone (it has no
  manifest: a manifest is written last, so a partial with one is a finished trace that was swapped out);
- interrupted: a trace closed as incomplete (Ctrl-C, SIGTERM) at NAME itself; it is left untouched until
  the resumed trace replaces it, its chunks are hard-linked (copied where links fail) into a new partial.
Where both exist, the one with more frames recorded is continued. Its identity must be this run's.

A chunk is kept when its mask chunk and its frame chunk both parse, hold exactly the chunk's frames
(every layer of each for the masks) and follow the previous chunk; the first that does not, and every
chunk after it, is dropped. Only one chunk is ever in memory: earlier masks are read to be checked, not
kept. The tracer restarts the gates at the first dropped frame with a dense frame (reset_reason
'resume'), so a resumed trace equals an uninterrupted one with a reset there (TraceOptions.reset_at).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import write_table
from ..errors import TraceError
from . import manifest as manifest_
from .format import MASK_SCHEMA, LayerInfo, _process_alive

# Files carried from an interrupted trace into the partial that continues it (masks come chunk by chunk).
STATIC_FILES = ("layers.parquet", "graph.json", "channels.parquet", "thresholds.parquet")


@dataclass(frozen=True)
class Resumed:
    tmp: Path                 # the partial directory the writer carries on in
    source: str               # 'killed' | 'interrupted'
    origin: Path              # where it was found: a killed writer's partial goes back there on failure
    meta: dict                # the resumed trace's meta.json
    layers: tuple[LayerInfo, ...]
    chunk_frames: int
    chunks: int               # whole chunks kept
    dropped: int              # frames recorded before the interruption but dropped (in no whole chunk)

    @property
    def frames(self) -> int:
        """The step the trace resumes at: every earlier one is kept."""
        return self.chunks * self.chunk_frames


@dataclass(frozen=True)
class Candidate:
    path: Path
    source: str
    meta: dict


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def candidates(target: Path) -> list[Candidate]:
    """Everything at or beside `target` that `--resume` could continue, as found on disk."""
    found = []
    for partial in sorted(target.parent.glob(f".{target.name}.partial-*-*")):
        pid = partial.name.rsplit(".partial-", 1)[1].split("-")[0]
        if not pid.isdigit() or _process_alive(int(pid)) or (partial / manifest_.NAME).exists():
            continue
        meta = _read_json(partial / "meta.json")
        if meta is not None:
            found.append(Candidate(partial, "killed", meta))
    meta = _read_json(target / "meta.json") if target.is_dir() else None
    if meta is not None and meta.get("complete") is False:
        found.append(Candidate(target, "interrupted", meta))
    return found


def adopt(target: Path, matches: Callable[[dict], bool]) -> Resumed | None:
    """The trace to continue, moved into a partial directory of this process with only its whole chunks
    kept; None when there is nothing to resume (or no whole chunk). Call with the output lock held."""
    found = candidates(target)
    if not found:
        return None
    best = max(found, key=lambda c: (int(c.meta.get("frames_recorded") or 0), c.source == "interrupted"))
    if not matches(best.meta.get("identity") or {}):
        where = target if best.source == "interrupted" else best.path
        raise TraceError(f"cannot resume: {where} was traced with other settings (video, model, gate, frames "
                         "or size differ); give the same options, or drop --resume to start over")
    tmp = _take_over(target, best)
    resumed = _keep_whole_chunks(tmp, best)
    if resumed is None:
        shutil.rmtree(tmp, ignore_errors=True)
    return resumed


def _own_partial(target: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-{os.getpid()}-"))


def _take_over(target: Path, found: Candidate) -> Path:
    """A partial directory of this process holding the candidate's files (the candidate itself when it is
    a killed writer's: renamed, so that no other writer removes it as stale)."""
    tmp = _own_partial(target)
    if found.source == "killed":
        os.replace(found.path, tmp)  # onto the empty directory just made: atomic, and the name is ours
        (tmp / "frame-chunks").mkdir(exist_ok=True)
        (tmp / "masks").mkdir(exist_ok=True)
        return tmp
    (tmp / "masks").mkdir()
    (tmp / "frame-chunks").mkdir()
    for rel in [*STATIC_FILES, *(f"masks/{p.name}" for p in sorted((target / "masks").glob("chunk-*.parquet")))]:
        if (target / rel).is_file():
            _link_or_copy(target / rel, tmp / rel)
    _split_frames(target / "frames.parquet", tmp / "frame-chunks", _chunk_frames(found.meta))
    return tmp


def _link_or_copy(src: Path, dst: Path) -> None:
    """Chunks are never rewritten in place (always a new file renamed over), so a hard link is safe."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _chunk_frames(meta: dict) -> int:
    value = (meta.get("masks") or {}).get("chunk_frames")
    if not isinstance(value, int) or value < 1:
        raise TraceError("cannot resume: the trace's meta.json records no chunk size (masks.chunk_frames)")
    return value


def _split_frames(frames: Path, out: Path, chunk_frames: int) -> None:
    """frames.parquet back into per-chunk frame tables (one row per frame: small, unlike the masks)."""
    try:
        table = pq.read_table(frames)
        numbers = table.column("frame").to_numpy()
    except (pa.ArrowException, OSError, KeyError):
        return  # unreadable: no chunk will be kept, the trace restarts from its first frame
    for start in range(0, int(numbers.max(initial=-1)) + 1, chunk_frames):
        rows = np.flatnonzero((numbers >= start) & (numbers < start + chunk_frames))
        write_table(out / f"chunk-{start // chunk_frames:06d}.parquet", table.take(rows))


def _layers(tmp: Path) -> tuple[LayerInfo, ...] | None:
    try:
        rows = pq.read_table(tmp / "layers.parquet").to_pylist()
        return tuple(LayerInfo(**{f.name: row[f.name] for f in fields(LayerInfo)}) for row in rows)
    except (pa.ArrowException, OSError, KeyError, TypeError):
        return None


def _chunk_is_whole(tmp: Path, index: int, chunk_frames: int, layers: int) -> bool:
    name = f"chunk-{index:06d}.parquet"
    expected = np.arange(index * chunk_frames, (index + 1) * chunk_frames)
    try:
        masks = pq.read_table(tmp / "masks" / name).select(MASK_SCHEMA.names).cast(MASK_SCHEMA)
        rows = pq.read_table(tmp / "frame-chunks" / name, columns=["frame"]).column("frame").to_numpy()
    except (pa.ArrowException, OSError, KeyError, ValueError):
        return False
    mask_frames = masks.column("frame").to_numpy()
    return (np.array_equal(rows, expected) and len(mask_frames) == chunk_frames * layers
            and np.array_equal(np.unique(mask_frames), expected))


def _keep_whole_chunks(tmp: Path, found: Candidate) -> Resumed | None:
    """Drop everything after the last whole chunk (and what close() adds: frames, manifest, temp files)."""
    chunk_frames = _chunk_frames(found.meta)
    layers = _layers(tmp)
    kept = 0
    while layers and _chunk_is_whole(tmp, kept, chunk_frames, len(layers)):
        kept += 1
    for folder in ("masks", "frame-chunks"):
        for chunk in (tmp / folder).iterdir():
            number = chunk.name.removeprefix("chunk-").removesuffix(".parquet")
            if not (number.isdigit() and int(number) < kept and chunk.name.startswith("chunk-")):
                chunk.unlink()
    for leftover in [tmp / "frames.parquet", tmp / manifest_.NAME, *tmp.glob(".*")]:
        leftover.unlink(missing_ok=True)
    if not kept:
        return None
    recorded = int(found.meta.get("frames_recorded") or 0)
    return Resumed(tmp, found.source, found.path, found.meta, layers, chunk_frames, kept,
                   dropped=max(recorded - kept * chunk_frames, 0))
