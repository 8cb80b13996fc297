"""A trace's manifest: every file's size and SHA-256, written last and atomically.

Two checks read it. `quick_problems` runs whenever a trace is opened and must stay cheap on hours-long
traces: the small files (meta, layers, graph, frames, channels) are hashed, since they are read anyway,
while mask chunks are checked by size and parquet magic at both ends only, never read whole.
`problems` (`sparsesim check`) hashes everything and lists every file that differs.
A trace written before manifests existed has none; `upgrade` records one for it (schema migration).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

from ..atomic import write_json
from ..errors import TraceError

NAME = "manifest.json"
VERSION = 1
PARQUET_MAGIC = b"PAR1"
# Mask chunks grow with the video; everything else is small and read on every open anyway.
BULK_DIRS = ("masks",)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _entries_digest(files: dict) -> str:
    """A checksum of the entries themselves, so an edited manifest is noticed too."""
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def trace_files(path: Path) -> list[str]:
    """Every file of the trace (relative, sorted), the manifest itself left out."""
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                  if p.is_file() and p.name != NAME and not p.name.startswith("."))


def build(path: Path) -> dict:
    files = {rel: {"size": (path / rel).stat().st_size, "sha256": sha256(path / rel)} for rel in trace_files(path)}
    return {"manifest_version": VERSION, "files": files, "entries_sha256": _entries_digest(files)}


def write(path: Path) -> dict:
    manifest = build(path)
    write_json(path / NAME, manifest)
    return manifest


def read(path: Path) -> dict:
    """The manifest, checked for shape and for its own checksum; a TraceError naming it otherwise."""
    mpath = path / NAME
    try:
        manifest = json.loads(mpath.read_text())
    except FileNotFoundError:
        raise TraceError(f"trace {path} has no {NAME} (written before manifests, or damaged); "
                         f"`sparsesim check --upgrade {path}` records one") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TraceError(f"{mpath}: not valid JSON") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if (manifest.get("manifest_version") if isinstance(manifest, dict) else None) != VERSION:
        raise TraceError(f"{mpath}: manifest version is not {VERSION}")
    if not isinstance(files, dict) or not all(_valid_entry(rel, e) for rel, e in files.items()):
        raise TraceError(f"{mpath}: malformed file entries")
    if manifest.get("entries_sha256") != _entries_digest(files):
        raise TraceError(f"{mpath}: its entries do not match its checksum (edited or damaged)")
    return manifest


def _valid_entry(rel: object, entry: object) -> bool:
    return (isinstance(rel, str) and ".." not in Path(rel).parts and not Path(rel).is_absolute()
            and isinstance(entry, dict) and type(entry.get("size")) is int and entry["size"] >= 0
            and isinstance(entry.get("sha256"), str))


def _is_bulk(rel: str) -> bool:
    return rel.split("/", 1)[0] in BULK_DIRS


def _parquet_ends_ok(path: Path, size: int) -> bool:
    if size < 8:
        return False
    with path.open("rb") as f:
        head = f.read(4)
        f.seek(size - 4)
        return head == PARQUET_MAGIC and f.read(4) == PARQUET_MAGIC


def _file_problem(path: Path, rel: str, entry: dict, deep: bool) -> str | None:
    file = path / rel
    if not file.is_file():
        return "missing"
    size = file.stat().st_size
    if size != entry["size"]:
        return f"size {size} bytes, the manifest says {entry['size']} (truncated or replaced)"
    if rel.endswith(".parquet") and not _parquet_ends_ok(file, size):
        return "not a parquet file (magic bytes missing)"
    if (deep or not _is_bulk(rel)) and sha256(file) != entry["sha256"]:
        return "contents differ from the manifest's SHA-256 (damaged or replaced)"
    return None


def _extra_files(path: Path, listed: Iterable[str]) -> list[tuple[str, str]]:
    known = set(listed)
    return [(rel, "not in the manifest (left over or added)") for rel in trace_files(path) if rel not in known]


def problems(path: Path, deep: bool = True) -> list[tuple[str, str]]:
    """(file, what is wrong) for every problem; empty when the trace matches its manifest."""
    try:
        manifest = read(path)
    except TraceError as e:
        return [(NAME, str(e))]
    found = [(rel, p) for rel, entry in sorted(manifest["files"].items())
             if (p := _file_problem(path, rel, entry, deep)) is not None]
    return found + _extra_files(path, manifest["files"])


def quick_check(path: Path) -> dict:
    """The open-time check: raises a one-line TraceError naming the first damaged file."""
    manifest = read(path)
    for rel, entry in sorted(manifest["files"].items()):
        problem = _file_problem(path, rel, entry, deep=False)
        if problem is not None:
            raise TraceError(f"damaged trace {path}: {rel}: {problem}; `sparsesim check {path}` lists every problem")
    return manifest


def upgrade(path: Path) -> bool:
    """Record a manifest for a trace written before manifests (False when it already has a sound one)."""
    if (path / NAME).exists():
        return False
    write(path)
    return True
