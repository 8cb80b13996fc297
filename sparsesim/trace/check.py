"""`sparsesim check`: every trace against its manifest, every problem on its own line."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from . import manifest
from .format import read_meta
from ..errors import TraceError


def trace_problems(path: Path, upgrade: bool = False) -> list[str]:
    """What is wrong with one trace (empty: sound). `upgrade` records a manifest where none exists yet."""
    if not path.is_dir():
        return [f"{path}: no trace directory"]
    try:
        read_meta(path)
    except TraceError as e:
        return [f"{path}: meta.json: {e}"]
    if upgrade and not (path / manifest.NAME).exists():
        broken = [rel for rel in manifest.trace_files(path) if rel.endswith(".parquet")
                  and not manifest._parquet_ends_ok(path / rel, (path / rel).stat().st_size)]
        if broken:  # a manifest would vouch for damage: refuse
            return [f"{path}: {rel}: not a parquet file (magic bytes missing); not upgraded" for rel in broken]
        manifest.write(path)
        print(f"{path}: manifest recorded")
    return [f"{path}: {rel}: {what}" for rel, what in manifest.problems(path, deep=True)]


def check_traces(paths: Sequence[Path], upgrade: bool = False) -> bool:
    """Print every problem of every trace; True when all are sound."""
    sound = True
    for path in paths:
        found = trace_problems(path, upgrade)
        for line in found:
            print(line)
        if not found:
            print(f"{path}: ok")
        sound &= not found
    return sound
