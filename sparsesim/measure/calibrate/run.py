"""`sparsesim calibrate`: time the probes, turn them into figures, write the hardware description.

Nothing is written until every probe has run: then the conv-efficiency table, the table of every probe
and the YAML go to temporary files beside their targets, the YAML is parsed as a hardware description,
and only then are they renamed into place (an interrupt or an error leaves the old files untouched).
"""
from __future__ import annotations

import datetime
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from ...atomic import umask
from ...errors import SparsesimError, require
from ...hardware import reader
from ...hardware.conv_table import RATE
from ...hardware.edit import Figure, set_figures
from ...hardware.spec import Hardware
from .clock import Samples, sample
from .devices import Environment, Profile, budget, profile
from .probes import FIGURE_BLOCK, WORD, Conv, Copy, Indexed, Overhead, Plan, Probe

MARK = "measured by sparsesim calibrate"


@dataclass(frozen=True)
class CalibrateOptions:
    device: str = "cpu"
    output: str | None = None        # the YAML to write (default: accel_models/<base>.yaml, updated in place)
    base: str | None = None          # where a new file starts from (default: the device's base description)
    quick: bool = False              # a few seconds (CI): tiny sizes and grid, few repeats
    threads: int | None = None       # torch CPU threads (default: torch's choice)
    progress: bool = True

    def validate(self) -> None:
        profile(self.device)
        require(self.threads is None or self.threads >= 1, "threads", f"must be >= 1, got {self.threads}")
        require(self.output is None or Path(self.output).suffix in (".yaml", ".yml"), "output",
                f"must be a .yaml file, got {self.output}")
        require(self.output is None or Path(self.output).parent.is_dir() or not Path(self.output).parent.exists(),
                "output", f"{Path(self.output or '').parent} is not a directory")


@dataclass(frozen=True)
class Calibration:
    hardware: Hardware
    paths: tuple[Path, ...]          # YAML, conv table, probe table
    probes: pd.DataFrame
    conv: pd.DataFrame
    figures: tuple[Figure, ...]
    seconds: float
    warnings: tuple[str, ...] = ()


def sidecars(yaml_path: Path) -> tuple[Path, Path]:
    """The conv-efficiency table and the probe table written beside a description."""
    return yaml_path.with_name(f"{yaml_path.stem}.conv-efficiency.csv"), yaml_path.with_name(f"{yaml_path.stem}.calibration.csv")


def run_calibrate(options: CalibrateOptions, environment: Environment | None = None,
                  now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.timezone.utc)) -> Calibration:
    options.validate()
    prof = profile(options.device)
    target = Path(options.output) if options.output else reader.models_dir() / f"{prof.base}.yaml"
    source = target if target.exists() else reader._resolve(options.base or prof.base, reader.models_dir(), "hardware")
    base = reader.parse_hardware(source)
    require(base.kind == {"cpu": "cpu", "gpu": "gpu"}[prof.section], "base",
            f"{source} describes a {base.kind}, not a {options.device}")
    require(base.dtype in WORD, "base", f"{source}: calibrate times fp32, fp16 or bf16, not {base.dtype}")
    env = environment or prof.open(options.threads, base.dtype)
    plan = prof.plan(env.caches, env.threads, options.quick, WORD[base.dtype])
    start = datetime.datetime.now().timestamp()
    results = measure(plan, env, prof, options)
    conv, probes = conv_table(plan, results, base), probe_table(results, _overheads(results))
    figures = yaml_figures(prof, base, env, results, conv, target, options, now())
    hw = write(target, source.read_text(), figures, conv, probes)
    return Calibration(hw, (target, *sidecars(target)), probes, conv, tuple(figures),
                       datetime.datetime.now().timestamp() - start, tuple(sanity(hw, conv, env)))


def sanity(hw: Hardware, conv: pd.DataFrame, env: Environment) -> list[str]:
    """What the measurement says about the figures it does not set (spec-sheet figures, set by hand)."""
    out = []
    fastest, peak = float(conv["gflops"].max()) * 1e9, hw.peak_flops[hw.dtype]
    if fastest > peak:
        out.append(f"a conv ran at {fastest / 1e9:.0f} GFLOP/s, above peak_tflops.{hw.dtype} "
                   f"({peak / 1e9:.0f} GFLOP/s): check units, clock_ghz and peak_tflops in {hw.path}")
    if hw.kind == "cpu" and env.threads != hw.units:
        out.append(f"calibrated with {env.threads} threads on a description of {hw.units} units (cores): "
                   f"the conv table's rates are those of {env.threads} threads")
    return out


def measure(plan: Plan, env: Environment, prof: Profile, options: CalibrateOptions) -> dict[Probe, Samples]:
    todo = plan.probes()
    spend = budget(prof, options.quick)
    out = {}
    for probe in tqdm(todo, desc=f"calibrate {env.device}", unit="probe", disable=not options.progress):
        out[probe] = sample(probe, env.kernels.make(probe), env.clock, spend)
    return out


def _overheads(results: Mapping[Probe, Samples]) -> dict[str, float]:
    return {p.op: s.median_s / p.ops for p, s in results.items() if isinstance(p, Overhead)}


def _net(s: Samples, overhead: float) -> float:
    """A call's time less its fixed per-call cost (which the cost model charges as launches), at least
    a twentieth of it (noise must not make it negative)."""
    return max(s.median_s - overhead, 0.05 * s.median_s)


def _rate(p: Probe, s: Samples, over: Mapping[str, float]) -> float:
    """GB/s of a copy or an indexed pass, GFLOP/s of a conv, µs of a call."""
    if isinstance(p, Overhead):
        return s.median_s / p.ops * 1e6
    if isinstance(p, Conv):
        return p.flops / _net(s, over.get("conv", 0.0)) / 1e9
    return p.moved / _net(s, over.get("copy", 0.0)) / 1e9


def probe_table(results: Mapping[Probe, Samples], over: Mapping[str, float]) -> pd.DataFrame:
    unit = {Copy: "GB/s", Indexed: "GB/s", Conv: "GFLOP/s", Overhead: "us"}
    return pd.DataFrame([{"probe": p.label, "kind": type(p).__name__.lower(), **asdict(s),
                          "figure": _rate(p, s, over), "unit": unit[type(p)]} for p, s in results.items()])


def conv_table(plan: Plan, results: Mapping[Probe, Samples], hw: Hardware) -> pd.DataFrame:
    """The grid's convs: measured time, useful GFLOP/s (net of the call overhead) and the rate per FLOP of
    the GEMM with N padded to whole register blocks (what the cost model interpolates)."""
    over = _overheads(results)
    reuse = hw.tiling.reuse_n
    rows = []
    for p in plan.grid.convs():
        s = results[p]
        gflops = _rate(p, s, over)
        lanes = np.ceil(p.cout / reuse) * reuse / p.cout
        rows.append({"kernel": p.kernel, "stride": p.stride, "width": p.width, "gemm_m": p.gemm_m, "gemm_n": p.cout,
                     "gemm_k": p.gemm_k, "cin": p.cin, "batch": p.batch, "height": p.height, **asdict(s),
                     "gflops": gflops, "reuse_n": reuse, RATE: gflops * lanes})
    return pd.DataFrame(rows)


def yaml_figures(prof: Profile, hw: Hardware, env: Environment, results: Mapping[Probe, Samples], conv: pd.DataFrame,
                 target: Path, options: CalibrateOptions, when: datetime.datetime) -> list[Figure]:
    over = _overheads(results)
    versions = ", ".join(f"{k} {v}" for k, v in env.versions.items())
    stamp = f"{MARK} {when:%Y-%m-%d} on {env.device_name}, {env.threads} threads, {versions}" + \
        (" (--quick: a CI check, not for use)" if options.quick else "")
    by = {type(p): {} for p in results}
    for p, s in results.items():
        key = (p.op, p.block) if isinstance(p, Indexed) else getattr(p, "level", None) or getattr(p, "op", None) or p
        by[type(p)][key] = (p, s)
    out = []
    for level, (p, s) in by.get(Copy, {}).items():
        yaml_level = hw.level(prof.level_kinds[level]) if level in prof.level_kinds else None
        if yaml_level is not None:
            per = 1 if yaml_level.shared else env.threads
            out.append(Figure(("memory", yaml_level.name, prof.level_key), _rate(p, s, over) / per,
                              f"{stamp}: copy of {p.nbytes / 2**20:.3g} MiB, read+write bytes" +
                              ("" if per == 1 else f", per core ({per} threads)")))
    for level, size in env.caches.items():      # the sizes the probes were sized from: sysfs, the GPU's properties
        yaml_level = hw.level(prof.level_kinds[level]) if level in prof.level_kinds else None
        if yaml_level is not None:
            per = 1 if yaml_level.shared else hw.units
            if round(yaml_level.size_bytes / per / 1024) != size // 1024:
                out.append(Figure(("memory", yaml_level.name, "size_kib"), size // 1024,
                                  f"[{env.cache_source}] read by sparsesim calibrate {when:%Y-%m-%d}" +
                                  ("" if per == 1 else ", per core")))
    sec = prof.section
    for op, key in (("gather", "gather_gbps"), ("scatter", "scatter_gbps"), ("reduce", "mask_gbps")):
        p, s = by[Indexed][(op, FIGURE_BLOCK)]
        out.append(Figure((sec, key), _rate(p, s, over), f"{stamp}: {op}, {p.tiles} {p.block}x{p.block} blocks of a "
                          f"{p.channels}-channel {p.side}x{p.side} map, per byte the cost model bills the step"))
        rates = {b: float(f"{_rate(q, t, over):.4g}") for (o, b), (q, t) in sorted(by[Indexed].items()) if o == op}
        if len(rates) > 1:
            out.append(Figure((sec, f"{key}_by_block"), rates, f"{stamp}: {op} at each block size B (GB/s), "
                              f"interpolated in log B"))
    p, s = by[Overhead][prof.overhead]
    what = {"step": "the 4 gather-scatter steps of a 1-channel 8x8 layer (one 4x4 block) / 4",
            "launch": "64 back-to-back tiny kernels / 64"}.get(p.op, p.label)
    out.append(Figure((sec, prof.overhead_key), s.median_s / p.ops * 1e6, f"{stamp}: {what}, median"))
    if prof.sustained:
        ref = next(p for p in results if isinstance(p, Conv))
        out.append(Figure((sec, "sustained_tflops"), _rate(ref, results[ref], over) / 1e3,
                          f"{stamp}: {ref.label}, the roof where no conv table is read"))
    table = sidecars(target)[0].name
    out.append(Figure((sec, "conv_efficiency"), table, f"{stamp}: {len(conv)} convs, rate per GEMM shape "
                      f"({conv[RATE].min():.3g}-{conv[RATE].max():.3g} GFLOP/s per padded FLOP)"))
    meta = {"by": MARK, "date": f"{when:%Y-%m-%dT%H:%M:%SZ}", "device": env.device, "device_name": env.device_name,
            "threads": env.threads, **{k.lower(): v for k, v in env.versions.items()}, "clock": env.clock.name,
            "quick": options.quick, "probes": sidecars(target)[1].name}
    notes = {"threads": "torch threads, pinned for the whole run", "quick": "true: a CI check, not figures to use",
             "probes": "every probe's median, p10 and p90", "clock": "what timed each call"}
    return [*out, *(Figure(("calibration", k), v, notes.get(k, "recorded by sparsesim calibrate")) for k, v in meta.items())]


def write(target: Path, text: str, figures: Sequence[Figure], conv: pd.DataFrame, probes: pd.DataFrame) -> Hardware:
    """Temporary files first (the YAML parsed as a description from there), then three renames."""
    target.parent.mkdir(parents=True, exist_ok=True)
    table_path, probe_path = sidecars(target)
    temps = {path: Path(tempfile.mkstemp(dir=target.parent, prefix=f".{path.name}.", suffix=".tmp")[1])
             for path in (table_path, probe_path, target)}
    try:
        conv.to_csv(temps[table_path], index=False)
        probes.to_csv(temps[probe_path], index=False)
        # the temporary YAML must name the temporary table to be parsed from there
        staged = [Figure(f.path, temps[table_path].name, f.note) if f.path[-1] == "conv_efficiency" else f
                  for f in figures]
        temps[target].write_text(set_figures(text, staged))
        reader.parse_hardware(temps[target])
        temps[target].write_text(set_figures(text, figures))
        for path, tmp in temps.items():       # the table first: the YAML that names it comes last
            os.chmod(tmp, 0o666 & ~umask())
            os.replace(tmp, path)
    except BaseException:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        raise
    try:
        return reader.parse_hardware(target)
    except SparsesimError as e:
        raise SparsesimError(f"calibrate wrote {target}, but it does not load: {e}") from None
