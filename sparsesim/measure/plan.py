"""`sparsesim measure --plan FILE -o DIR`: a prepared set of measurement runs from one YAML file, in one go.

A plan (`benchmarks/h200_plan.yaml` is the H200's) reads
    prefix: h200-          # each run writes DIR/<prefix><name>.parquet
    root: ..               # relative paths in runs (traces) start here; itself relative to the plan file
    budget_s: 360          # no case starts once the plan has measured this long (what ran is kept)
    assumed_call_s: 1.0e-4 # the dry run's time estimate: seconds per timed call, host overhead included
    defaults: {...}        # `MeasureOptions` fields shared by every run
    runs:                  # in order, most important first: the budget may cut the last ones
      - {name: rife-fp32, trace: traces/..., dtype: fp32}
Each run is one `sparsesim measure` (the same options, field for field), written atomically when done;
`DIR/plan.log` gets a timestamped line per run and `DIR/versions.json` the software and device.
`--smoke` runs the same plan at tiny sizes (every shape shrunk, one repeat, the end blocks and densities;
on a CPU without the CUDA-only kernels and energy), which is how the tests check a plan end to end; `--dry-run` counts the
cases and timed calls of each run and estimates the time from `assumed_call_s`.
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Callable

import yaml

from .. import __version__
from ..atomic import write_json
from ..errors import OptionError, SparsesimError, require
from .kernels import ConvShape
from .runner import MeasureOptions, cases, run_measure
from .strategies import STRATEGIES, timed_groups

PLAN_KEYS = {"prefix", "root", "budget_s", "assumed_call_s", "defaults", "runs"}
RUN_FIELDS = {"trace", "layers", "shapes", "blocks", "densities", "dtype", "repeat", "warmup", "rotate", "seed",
              "kernels", "energy", "energy_s", "idle_s"}


@dataclass(frozen=True)
class PlanOptions:
    plan: str
    output: str                 # a directory
    device: str = "cuda"
    smoke: bool = False
    dry_run: bool = False
    progress: bool = True


@dataclass(frozen=True)
class PlannedRun:
    name: str
    options: MeasureOptions


@dataclass(frozen=True)
class Plan:
    prefix: str
    budget_s: float
    assumed_call_s: float
    runs: tuple[PlannedRun, ...]
    sha256: str


@dataclass(frozen=True)
class RunCount:
    name: str
    cases: int
    timed_calls: int            # warm-up included
    energy_s: float             # the energy loops' minimum length, idle window included

    def estimate_s(self, call_s: float) -> float:
        return self.timed_calls * call_s + self.energy_s


def _read(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise SparsesimError(f"plan {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise SparsesimError(f"plan {path} is not valid YAML: {(str(e).splitlines() or [type(e).__name__])[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list) or not data["runs"]:
        raise SparsesimError(f"plan {path}: needs a `runs:` list (see benchmarks/h200_plan.yaml)")
    unknown = set(data) - PLAN_KEYS
    if unknown:
        raise SparsesimError(f"plan {path}: unknown keys {', '.join(sorted(unknown))} (known: {', '.join(sorted(PLAN_KEYS))})")
    return data


def _measure_options(path: Path, name: str, entry: dict, base: Path, device: str, progress: bool) -> MeasureOptions:
    unknown = set(entry) - RUN_FIELDS
    if unknown:
        raise SparsesimError(f"plan {path}, run {name}: unknown fields {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(sorted(RUN_FIELDS))})")
    values = dict(entry)
    try:
        values["shapes"] = tuple(ConvShape.parse(s) for s in values.get("shapes", ()))
    except OptionError as e:
        raise SparsesimError(f"plan {path}, run {name}: {e}") from None
    if values.get("trace"):
        values["trace"] = str(base / values["trace"])
    for key in ("blocks", "densities", "kernels", "layers"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    return MeasureOptions(device=device, progress=progress, **values)


def smoke_options(options: MeasureOptions) -> MeasureOptions:
    """The run at tiny sizes: shapes shrunk, one repeat, only the smallest and largest block and density;
    on a CPU without CUDA-only kernels and energy."""
    cuda = options.device.startswith("cuda")
    kernels = tuple(k for k in options.kernels if cuda or not STRATEGIES[k].cuda_only)
    ends = lambda values: tuple(sorted({min(values), max(values)}))  # noqa: E731
    return replace(options, smoke=True, repeat=1, warmup=0, rotate=1, kernels=kernels, energy=options.energy and cuda,
                   energy_s=0.05, idle_s=0.1, blocks=ends(options.blocks), densities=ends(options.densities))


def load_plan(options: PlanOptions) -> Plan:
    path = Path(options.plan)
    data = _read(path)
    base = (path.parent / str(data.get("root", "."))).resolve()
    defaults = data.get("defaults") or {}
    runs, names = [], set()
    for entry in data["runs"]:
        name = str(entry.get("name", "")) if isinstance(entry, dict) else ""
        if not name or name in names:
            raise SparsesimError(f"plan {path}: every run needs a unique `name:` (got {name or 'none'})")
        names.add(name)
        run = _measure_options(path, name, {**defaults, **{k: v for k, v in entry.items() if k != "name"}}, base,
                               options.device, options.progress)
        runs.append(PlannedRun(name, smoke_options(run) if options.smoke else run))
    return Plan(str(data.get("prefix", "")), float(data.get("budget_s", 420)), float(data.get("assumed_call_s", 1e-4)),
                tuple(runs), hashlib.sha256(path.read_bytes()).hexdigest())


def count(run: PlannedRun) -> RunCount:
    """Cases and timed calls of one run, without running it (the traces are read for their shapes)."""
    o = run.options
    n = len(cases(o))
    groups = sum(timed_groups(STRATEGIES[k]) for k in o.kernels)
    energy = n * len(o.kernels) * o.energy_s + o.idle_s if o.energy else 0.0
    return RunCount(run.name, n, n * groups * (o.warmup + o.repeat), energy)


def versions(device: str) -> dict:
    """The software and device a plan ran with (README of the committed measurements quotes it)."""
    import numpy
    import torch
    info = {"sparsesim": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "torch": torch.__version__, "cuda": torch.version.cuda or "", "numpy": numpy.__version__,
            "cudnn": str(torch.backends.cudnn.version() or ""), "argv": sys.argv}
    try:
        import triton
        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = ""
    if device.startswith("cuda") and torch.cuda.is_available():
        info["device_name"] = torch.cuda.get_device_name(torch.device(device))
        try:
            import pynvml
            pynvml.nvmlInit()
            info["driver"] = str(pynvml.nvmlSystemGetDriverVersion())
        except Exception as e:  # NVML missing or unreadable: the versions still get written
            info["driver"] = f"unknown ({type(e).__name__})"
    return info


class Log:
    """Lines to stdout and to DIR/plan.log, each with the seconds since the plan started."""

    def __init__(self, path: Path) -> None:
        self.path, self.start = path, time.monotonic()

    def __call__(self, text: str) -> None:
        line = f"[{time.monotonic() - self.start:7.1f} s] {text}"
        print(line, flush=True)
        with self.path.open("a") as f:
            f.write(line + "\n")


@dataclass(frozen=True)
class PlanResult:
    counts: tuple[RunCount, ...]
    outputs: tuple[Path, ...]
    estimate_s: float


def run_plan(options: PlanOptions, echo: Callable[[str], None] = print) -> PlanResult:
    require(options.device == "cpu" or options.device.startswith("cuda"), "device",
            f"must be cpu or cuda, got {options.device}")
    plan = load_plan(options)
    out = Path(options.output)
    if options.dry_run:   # counts what the plan would run on options.device, which need not be here
        counts = tuple(count(r) for r in plan.runs)
        total = sum(c.estimate_s(plan.assumed_call_s) for c in counts)
        for c in counts:
            echo(f"{c.name}: {c.cases} cases, {c.timed_calls} timed calls, {c.energy_s:.0f} s of energy loops, "
                 f"about {c.estimate_s(plan.assumed_call_s):.0f} s")
        echo(f"total about {total:.0f} s at {plan.assumed_call_s * 1e6:.0f} us per timed call (budget {plan.budget_s:.0f} s)")
        return PlanResult(counts, (), total)
    for run in plan.runs:   # every run checked before the first starts: a bad plan costs no GPU time
        try:
            run.options.validate()
        except OptionError as e:   # named by the plan's field, not a command-line flag
            raise SparsesimError(f"plan {options.plan}, run {run.name}: {e}") from None
    out.mkdir(parents=True, exist_ok=True)
    log = Log(out / "plan.log")
    write_json(out / "versions.json", {**versions(options.device), "plan": str(options.plan), "plan_sha256": plan.sha256})
    log(f"plan {options.plan} on {options.device}{' (smoke)' if options.smoke else ''}: {len(plan.runs)} runs, "
        f"budget {plan.budget_s:.0f} s")
    outputs = []
    for run in plan.runs:
        left = plan.budget_s - (time.monotonic() - log.start)
        if left <= 0:
            log(f"{run.name}: skipped, the budget is spent")
            continue
        path = out / f"{plan.prefix}{run.name}.parquet"
        t0 = time.monotonic()
        table = run_measure(replace(run.options, output=str(path), budget_s=left), log=lambda m, n=run.name: log(f"{n}: {m}"))
        outputs.append(path)
        log(f"{run.name}: {len(table)} rows in {time.monotonic() - t0:.1f} s -> {path.name}")
    log("done")
    return PlanResult((), tuple(outputs), time.monotonic() - log.start)
