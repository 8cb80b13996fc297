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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SparsesimError
from ..sim.systolic import Conv, Gemm, SystolicConfig, SystolicResult, simulate_gemm
from ..workload.topology import ConvLayer, ScaleSimInputError, read_topology  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    import pandas as pd


def conv_gemm(layer: ConvLayer) -> Gemm:
    """A topology layer's implicit GEMM, as SCALE-Sim folds it."""
    oh, ow = layer.ofmap
    return Gemm(m=oh * ow, k=layer.filter_h * layer.filter_w * layer.channels, n=layer.filters,
                sparsity=layer.sparsity, name=layer.name, ifmap_unique=layer.ifmap_touched,
                conv=Conv(layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w, layer.channels, layer.stride))


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
    except (configparser.Error, UnicodeDecodeError) as e:
        raise ScaleSimInputError(f"{path}: not a SCALE-Sim config ({(str(e).splitlines() or [type(e).__name__])[0][:160]})") from None

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


def rows(topology: str | Path, config: str | Path) -> list[dict]:
    """Every layer of a SCALE-Sim topology on a SCALE-Sim config, in SCALE-Sim's report terms."""
    cfg = read_config(config)
    return [report_row(layer, simulate_layer(layer, cfg), cfg.array) for layer in read_topology(topology)]


def run(topology: str | Path, config: str | Path) -> "pd.DataFrame":
    """`rows` as a table: one row per layer."""
    import pandas as pd
    return pd.DataFrame(rows(topology, config))


def simulate_layer(layer: ConvLayer, cfg: ScaleSimConfig) -> SystolicResult:
    g = conv_gemm(layer)
    if not cfg.sparsity_support and g.sparsity != (1, 1):
        g = replace(g, sparsity=(1, 1))   # SCALE-Sim ignores the column without SparsitySupport
    return simulate_gemm(g, cfg.array)


def run_files(topology: str, config: str, output: str | None = None) -> tuple[list[dict], Path | None]:
    """`sparsesim simulate --topology F.csv --config F.cfg [-o FILE]`: the rows, written where asked
    (pandas is loaded only to write them)."""
    from ..atomic import table_path
    out = table_path(output)
    if out is not None and not out.parent.is_dir():
        raise SparsesimError(f"cannot write {out}: directory {out.parent} does not exist")
    table = rows(topology, config)
    if out is not None:
        import pandas as pd
        from ..atomic import write_frame
        write_frame(out, pd.DataFrame(table))
    return table, out
