"""`sparsesim estimate`: trace -> workload -> cost model -> tables on disk (trace -> Estimate)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from .. import hardware, trace, workload
from ..atomic import table_path, write_frame
from ..errors import SparsesimError, require
from .estimate import Estimate, estimate


@dataclass(frozen=True)
class EstimateOptions:
    trace: str
    hardware: Sequence[str]
    blocks: Sequence[int]
    frames: int | None = None
    output: str | None = None
    energy_tables: Sequence[str] | None = None   # None: each hardware's own
    channel_group: int | None = None             # G: output channels per work unit (B x B x G)

    def validate(self) -> None:
        require(bool(self.hardware), "hardware", "names no hardware")
        require(bool(self.blocks) and min(self.blocks) >= 1, "blocks", f"must be integers >= 1, got {list(self.blocks)}")
        require(self.frames is None or self.frames >= 1, "frames", f"must be >= 1, got {self.frames}")
        require(self.channel_group is None or self.channel_group >= 1, "channel_group",
                f"must be >= 1, got {self.channel_group}")


@dataclass(frozen=True)
class EstimateResult:
    estimate: Estimate
    trace: trace.Trace
    outputs: tuple[Path, ...]


def companion(path: Path, part: str) -> Path:
    """FILE.parquet -> FILE.<part>.parquet"""
    return path.with_name(f"{path.stem}.{part}{path.suffix}")


def output_tables(output: str | None) -> Path | None:
    """A checked table path (parquet or CSV) whose directory exists, or None."""
    out = table_path(output)
    if out is not None and not out.parent.is_dir():
        raise SparsesimError(f"cannot write {out}: directory {out.parent} does not exist")
    return out


def write_tables(out: Path | None, main, layers, summary) -> tuple[Path, ...]:
    """FILE, FILE.layers.* and FILE.summary.*, each written atomically."""
    if out is None:
        return ()
    written = (out, companion(out, "layers"), companion(out, "summary"))
    for path, df in zip(written, (main, layers, summary)):
        write_frame(path, df)
    return written


def with_channel_group(hw: hardware.Hardware, group: int | None) -> hardware.Hardware:
    """A work unit of B x B pixels x G output channels: the implicit GEMM's N tile becomes G.

    With spatial masks every channel group of an active block is active, so G changes tiling (tile
    quantisation, input re-reads per N tile), not the active set; channel-structured masks (SSL) will
    make groups individually skippable.
    """
    if group is None:
        return hw
    return replace(hw, tiling=replace(hw.tiling, tile_n=group, reuse_n=min(hw.tiling.reuse_n, group)))


def run_estimate(options: EstimateOptions) -> EstimateResult:
    options.validate()
    out = output_tables(options.output)
    tr = trace.open(options.trace)
    specs = [with_channel_group(hardware.load(name.strip()), options.channel_group) for name in options.hardware]
    pairs = [(hw, hardware.energy_table(t)) for hw in specs
             for t in (options.energy_tables or [hw.energy_table])]
    wl = workload.from_trace(tr, options.blocks, options.frames)
    result = estimate(wl, [hw for hw, _ in pairs], [t for _, t in pairs])
    written = write_tables(out, result.rows, result.layers, result.summary)
    return EstimateResult(result, tr, written)
