"""SCALE-Sim's own input files (topology CSV, .cfg) and its report terms, so its users bring their files.

Topology (conv): `Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,
Num Filter, Strides[, Sparsity N:M],` with no padding (the IFMAP is given padded), output side
ceil((H - R + S) / S). GEMM topologies (`Layer, M, N, K[, Sparsity],`) are read as SCALE-Sim reads
them. Config: the `[architecture_presets]`, `[layout]`, `[sparsity]` and `[run_presets]` sections.
In USER bandwidth mode SCALE-Sim feeds the ifmap and filter buffers at the `[layout]` section's
IfmapSRAMBankBandwidth / FilterSRAMBankBandwidth and drains the ofmap at the first `Bandwidth` value;
in CALC mode bandwidth is an output, not a limit.
"""
from __future__ import annotations

import configparser
import csv
import math
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from ..errors import SparsesimError
from ..sim.systolic import Gemm, SystolicConfig, SystolicResult, simulate_gemm


class ScaleSimInputError(SparsesimError):
    """A SCALE-Sim topology or config file sparsesim cannot read."""


@dataclass(frozen=True)
class ConvLayer:
    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    filters: int
    stride: int
    sparsity: tuple[int, int] = (1, 1)

    @property
    def ofmap(self) -> tuple[int, int]:
        return (math.ceil((self.ifmap_h - self.filter_h + self.stride) / self.stride),
                math.ceil((self.ifmap_w - self.filter_w + self.stride) / self.stride))

    @property
    def ifmap_touched(self) -> int:
        """Input words the windows read (the rows and columns a stride skips past are never read)."""
        oh, ow = self.ofmap
        return ((oh - 1) * self.stride + self.filter_h) * ((ow - 1) * self.stride + self.filter_w) * self.channels

    def gemm(self) -> Gemm:
        oh, ow = self.ofmap
        return Gemm(m=oh * ow, k=self.filter_h * self.filter_w * self.channels, n=self.filters,
                    sparsity=self.sparsity, name=self.name, ifmap_unique=self.ifmap_touched)


def _int(path: Path, row: int, column: str, text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ScaleSimInputError(f"{path}: row {row}: {column} must be an integer, got {text.strip()!r}") from None
    if value < 1:
        raise ScaleSimInputError(f"{path}: row {row}: {column} must be >= 1, got {value}")
    return value


def _ratio(path: Path, row: int, text: str) -> tuple[int, int]:
    parts = text.strip().split(":")
    if len(parts) != 2:
        raise ScaleSimInputError(f"{path}: row {row}: sparsity must be N:M (e.g. 2:4), got {text.strip()!r}")
    n, m = (_int(path, row, "sparsity", p) for p in parts)
    if n > m:
        raise ScaleSimInputError(f"{path}: row {row}: sparsity {n}:{m} keeps more than it has")
    return n, m


CONV_COLUMNS = ("IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels", "Num Filter", "Strides")


def read_topology(path: str | Path) -> list[ConvLayer]:
    """Layers of a SCALE-Sim topology CSV (conv or GEMM format, detected from the header)."""
    path = Path(path)
    try:
        rows = [r for r in csv.reader(path.read_text().splitlines()) if any(c.strip() for c in r)]
    except FileNotFoundError:
        raise ScaleSimInputError(f"topology file not found: {path}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise ScaleSimInputError(f"{path}: not a CSV file ({e})") from None
    if len(rows) < 2:
        raise ScaleSimInputError(f"{path}: needs a header row and at least one layer")
    header = [c.strip().lower() for c in rows[0] if c.strip()]
    conv = "ifmap height" in header
    layers = []
    for i, raw in enumerate(rows[1:], start=2):
        cells = [c for c in raw]
        while cells and not cells[-1].strip():
            cells.pop()                        # SCALE-Sim rows end with a comma
        need = 8 if conv else 4
        if len(cells) < need:
            raise ScaleSimInputError(f"{path}: row {i}: expected at least {need} columns "
                                     f"({'name, ' + ', '.join(CONV_COLUMNS) if conv else 'name, M, N, K'}), got {len(cells)}")
        ratio = _ratio(path, i, cells[need]) if len(cells) > need else (1, 1)
        name = cells[0].strip()
        if conv:
            v = [_int(path, i, col, cells[j + 1]) for j, col in enumerate(CONV_COLUMNS)]
            layer = ConvLayer(name, *v, sparsity=ratio)
            if layer.filter_h > layer.ifmap_h or layer.filter_w > layer.ifmap_w:
                raise ScaleSimInputError(f"{path}: row {i}: filter {layer.filter_h}x{layer.filter_w} "
                                         f"is larger than the ifmap {layer.ifmap_h}x{layer.ifmap_w}")
        else:
            m, n, k = (_int(path, i, col, cells[j + 1]) for j, col in enumerate("MNK"))
            layer = ConvLayer(name, m, k, 1, k, 1, n, 1, sparsity=ratio)   # SCALE-Sim's GEMM-as-conv
        layers.append(layer)
    return layers


@dataclass(frozen=True)
class ScaleSimConfig:
    run_name: str
    array: SystolicConfig
    sram_kib: tuple[int, int, int]
    user_bandwidth: bool
    sparsity_support: bool


def read_config(path: str | Path) -> ScaleSimConfig:
    """A SCALE-Sim .cfg as a `SystolicConfig` (1-byte words, as SCALE-Sim counts)."""
    path = Path(path)
    parser = configparser.ConfigParser()
    try:
        if not parser.read(path):
            raise ScaleSimInputError(f"config file not found: {path}")
    except configparser.Error as e:
        raise ScaleSimInputError(f"{path}: not a SCALE-Sim config ({str(e).splitlines()[0]})") from None

    def get(section: str, key: str, default: str | None = None) -> str:
        if parser.has_option(section, key):
            return parser.get(section, key).strip()
        if default is None:
            raise ScaleSimInputError(f"{path}: [{section}] {key} is missing")
        return default

    def number(section: str, key: str, default: str | None = None) -> int:
        text = get(section, key, default)
        try:
            return int(text.split(",")[0])
        except ValueError:
            raise ScaleSimInputError(f"{path}: [{section}] {key} must be an integer, got {text!r}") from None

    arch = "architecture_presets"
    mode = get("run_presets", "InterfaceBandwidth", "CALC").upper()
    if mode not in ("USER", "CALC"):
        raise ScaleSimInputError(f"{path}: [run_presets] InterfaceBandwidth must be USER or CALC, got {mode!r}")
    dataflow = get(arch, "Dataflow").lower()
    sizes = tuple(number(arch, k) for k in ("IfmapSramSzkB", "FilterSramSzkB", "OfmapSramSzkB"))
    user = mode == "USER"
    if user:
        ofmap_bw = number(arch, "Bandwidth")
        bandwidth = (number("layout", "IfmapSRAMBankBandwidth", "10"),
                     number("layout", "FilterSRAMBankBandwidth", "10"), ofmap_bw)
    else:
        cols = number(arch, "ArrayWidth")
        bandwidth = (10, 10, cols)    # SCALE-Sim's CALC-mode defaults (single_layer_sim.py)
    try:
        array = SystolicConfig(rows=number(arch, "ArrayHeight"), cols=number(arch, "ArrayWidth"), dataflow=dataflow,
                               sram_words=tuple(1024 * s for s in sizes), bandwidth=bandwidth,
                               limited_bandwidth=user, run_ahead=True)
    except SparsesimError as e:
        raise ScaleSimInputError(f"{path}: {e}") from None
    support = get("sparsity", "SparsitySupport", "false").lower() == "true"
    return ScaleSimConfig(run_name=get("general", "run_name", path.stem), array=array, sram_kib=sizes,
                          user_bandwidth=user, sparsity_support=support)


REPORT_COLUMNS = ("layer", "total_cycles", "stall_cycles", "compute_cycles", "overall_cycles", "overall_util",
                  "mapping_efficiency", "compute_util", "sram_ifmap_reads", "sram_filter_reads",
                  "sram_ofmap_writes", "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes")


def report_row(layer: ConvLayer, r: SystolicResult, cfg: SystolicConfig) -> dict:
    """One layer in SCALE-Sim's report terms (COMPUTE_REPORT and DETAILED_ACCESS_REPORT)."""
    cells = cfg.rows * cfg.cols
    total = max(r.total_cycles - 1, 0)     # SCALE-Sim reports the index of the last cycle, counted from 0
    return {"layer": layer.name, "total_cycles": total, "stall_cycles": r.stall_cycles,
            "compute_cycles": max(r.compute_cycles - 1, 0), "overall_cycles": r.overall_cycles,
            "overall_util": 100 * r.macs / max(total * cells, 1),
            "mapping_efficiency": 100 * r.mapping_efficiency, "compute_util": 100 * r.compute_utilisation,
            "sram_ifmap_reads": r.sram_reads["ifmap"], "sram_filter_reads": r.sram_reads["filter"],
            "sram_ofmap_writes": r.sram_writes["ofmap"], "dram_ifmap_reads": r.dram_reads["ifmap"],
            "dram_filter_reads": r.dram_reads["filter"], "dram_ofmap_writes": r.dram_writes["ofmap"],
            **{f"stall_{k}": v for k, v in r.stalls.items()}}


def run(topology: str | Path, config: str | Path) -> pd.DataFrame:
    """Every layer of a SCALE-Sim topology on a SCALE-Sim config: one row per layer."""
    cfg = read_config(config)
    return pd.DataFrame([report_row(layer, simulate_layer(layer, cfg), cfg.array) for layer in read_topology(topology)])


def simulate_layer(layer: ConvLayer, cfg: ScaleSimConfig) -> SystolicResult:
    g = layer.gemm()
    if not cfg.sparsity_support and g.sparsity != (1, 1):
        g = replace(g, sparsity=(1, 1))   # SCALE-Sim ignores the column without SparsitySupport
    return simulate_gemm(g, cfg.array)


def run_files(topology: str, config: str, output: str | None = None) -> tuple[pd.DataFrame, Path | None]:
    """`sparsesim simulate --topology F.csv --config F.cfg [-o FILE]`: the table, written where asked."""
    from ..cost.run import output_tables
    from ..atomic import write_frame
    out = output_tables(output)
    df = run(topology, config)
    if out is not None:
        write_frame(out, df)
    return df, out
