"""`sparsesim estimate`: workload (a trace, or shapes with synthetic masks) -> cost model -> tables on disk."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pandas as pd

from .. import hardware, trace
from ..atomic import frame_writer, table_path, write_atomic_all
from ..errors import OptionError, SparsesimError, require
from ..workload.source import Source
from ..workload.strategies import Kernel, parse_kernels
from .estimate import Estimate, estimate, runs


@dataclass(frozen=True)
class EstimateOptions:
    trace: str | None
    hardware: Sequence[str]
    blocks: Sequence[int]
    frames: int | None = None
    output: str | None = None
    energy_tables: Sequence[str] | None = None   # None: each hardware's own
    channel_group: int | None = None             # G: output channels per work unit (B x B x G)
    kernels: Sequence[str] = ()                  # strategy names, +graphs (empty: each hardware's natural one)
    mask_source: str = "residual"                # residual (Skip-Conv reduction) | given (indices handed in)
    shapes: Sequence[str] = ()                   # trace-free: a chain of CIN,COUT,K,S,P,H,W ...
    topology: str | None = None                  # ... or a SCALE-Sim topology CSV
    densities: Sequence[float] = (0.1,)          # synthetic masks: active fraction of each layer's output
    mask: str = "square"                         # square | random | clustered
    seed: int = 0

    @property
    def source(self) -> Source:
        return Source(self.trace, tuple(self.shapes), self.topology, tuple(self.densities), self.mask, self.frames,
                      self.seed)

    def validate(self) -> None:
        self.source.validate()
        require(bool(self.hardware), "hardware", "names no hardware")
        require(bool(self.blocks) and min(self.blocks) >= 1, "blocks", f"must be integers >= 1, got {list(self.blocks)}")
        require(self.channel_group is None or self.channel_group >= 1, "channel_group",
                f"must be >= 1, got {self.channel_group}")
        self.parsed_kernels()

    def parsed_kernels(self) -> tuple[Kernel, ...]:
        return parse_kernels(self.kernels or (), self.mask_source)


@dataclass(frozen=True)
class EstimateResult:
    estimate: Estimate
    trace: trace.Trace | None      # None for a trace-free workload
    outputs: tuple[Path, ...]
    name: str = ""                 # the trace's directory name, or the synthetic workload's


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
    """FILE, FILE.layers.* and FILE.summary.*, written as one: all three new, or all three as they were."""
    if out is None:
        return ()
    written = (out, companion(out, "layers"), companion(out, "summary"))
    write_atomic_all([(path, frame_writer(path, df)) for path, df in zip(written, (main, layers, summary))])
    return written


def with_channel_group(hw: hardware.Hardware, group: int | None) -> hardware.Hardware:
    """A work unit of B x B pixels x G output channels: the implicit GEMM's N tile becomes G.

    With spatial masks every channel group of an active block is active, so G changes tiling (tile
    quantisation, input re-reads per N tile), not the active set; channel-structured masks (SSL) will
    make groups individually skippable.
    """
    if group is None:
        return hw
    return hardware.kinds.of(hw).with_channel_group(hw, group)


def check_kernels(specs: Sequence[hardware.Hardware], kernels: Sequence[Kernel]) -> None:
    """Every kernel asked for runs on at least one hardware (each runs those its kind runs)."""
    for k in kernels:
        if not any(runs(hw, [k]) for hw in specs):
            kinds = "; ".join(f"{hw.name} runs {', '.join(hardware.kinds.of(hw).strategies)}" for hw in specs)
            raise OptionError("kernels", f"{{kernels}} {k.name} runs on none of the hardware ({kinds})")


def run_estimate(options: EstimateOptions) -> EstimateResult:
    options.validate()
    out = output_tables(options.output)
    specs = [with_channel_group(hardware.load(name.strip()), options.channel_group) for name in options.hardware]
    kernels = options.parsed_kernels()
    check_kernels(specs, kernels)
    pairs = [(hw, hardware.energy_table(t)) for hw in specs
             for t in (options.energy_tables or [hw.energy_table])]
    tr = options.source.open_trace()
    loads = options.source.block_workloads(options.blocks, tr)
    parts = [estimate(wl, [hw for hw, _ in pairs], [t for _, t in pairs], kernels) for wl in loads]
    result = Estimate(*(pd.concat([getattr(p, f) for p in parts], ignore_index=True)
                        for f in ("rows", "layers", "summary")))
    written = write_tables(out, result.rows, result.layers, result.summary)
    return EstimateResult(result, tr, written, options.source.label)
