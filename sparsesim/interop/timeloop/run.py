"""Run Timeloop on exported files where a user has it installed (`sparsesim estimate --engine timeloop`)."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import yaml

from ...errors import SparsesimError
from .stats import TimeloopStats, parse_stats

MAPPER_CONFIG = {"mapper": {"optimization-metrics": ["edp"], "live-status": False, "num-threads": 4,
                            "timeout": 2000, "victory-condition": 200, "search-size": 0}}
INSTALL_HINT = ("Timeloop is not installed: `timeloop-mapper` is not on PATH and `pytimeloop` does not import. "
                "Install Timeloop v3.0.x (https://github.com/NVlabs/timeloop, with Accelergy) or leave out "
                "--engine timeloop")


def find_mapper() -> str:
    path = shutil.which("timeloop-mapper")
    if path:
        return path
    if importlib.util.find_spec("pytimeloop") is not None:
        raise SparsesimError("pytimeloop imports but `timeloop-mapper` is not on PATH; sparsesim drives the "
                             "command-line tool: put timeloop-mapper on PATH")
    raise SparsesimError(INSTALL_HINT)


def run_layer(mapper: str, export_dir: Path, problem: Path, timeout_s: int = 3600) -> TimeloopStats:
    """timeloop-mapper on one exported problem, in its own work directory; returns the parsed stats."""
    work = export_dir / "timeloop-runs" / problem.name.removesuffix(".problem.yaml")
    work.mkdir(parents=True, exist_ok=True)
    (work / "mapper.yaml").write_text(yaml.safe_dump(MAPPER_CONFIG))
    layer_opt = problem.with_name(problem.name.replace(".problem.yaml", ".sparse_optimizations.yaml"))
    inputs = [export_dir / "architecture.yaml", *sorted((export_dir / "components").glob("*.yaml")), problem,
              work / "mapper.yaml", layer_opt if layer_opt.exists() else export_dir / "sparse_optimizations.yaml"]
    result = subprocess.run([mapper, *map(str, inputs)], cwd=work, capture_output=True, text=True, timeout=timeout_s)
    stats = work / "timeloop-mapper.stats.txt"
    if result.returncode != 0 or not stats.exists():
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SparsesimError(f"timeloop-mapper failed on {problem.name} (exit {result.returncode}): {last[0][:200]}")
    return parse_stats(stats)
