"""Run Timeloop v3.0.3's `timeloop-mapper` and `timeloop-model` on exported files: `make timeloop` builds
them into the venv (`.venv/timeloop/bin`), else they are found on PATH."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ...errors import SparsesimError
from .stats import TimeloopStats, parse_stats

INSTALL_HINT = ("Timeloop is not installed: `{tool}` is neither in the venv (`make timeloop` builds Timeloop v3.0.3 "
                "there from ../shared/timeloop-src) nor on PATH; or leave out --engine timeloop")


def venv_bin() -> Path:
    """Where `make timeloop` puts the binaries: <venv>/timeloop/bin."""
    return Path(sys.prefix) / "timeloop" / "bin"


def find_tool(tool: str = "timeloop-mapper") -> str:
    built = venv_bin() / tool
    if built.exists():
        return str(built)
    path = shutil.which(tool)
    if path:
        return path
    raise SparsesimError(INSTALL_HINT.format(tool=tool))


def find_mapper() -> str:
    return find_tool("timeloop-mapper")


@dataclass(frozen=True)
class Run:
    stats: TimeloopStats
    command: tuple[str, ...]     # relative to the work directory
    seconds: float
    work: Path


def run_tool(tool: str, work: Path, inputs: list[Path], timeout_s: int = 3600) -> Run:
    """One Timeloop binary on its input files, in `work`; the stats it writes, parsed."""
    binary = find_tool(tool)
    work.mkdir(parents=True, exist_ok=True)
    args = [str(Path(p).resolve()) for p in inputs]
    start = time.perf_counter()
    try:
        result = subprocess.run([binary, *args], cwd=work, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise SparsesimError(f"{tool} ran past {timeout_s} s on {Path(inputs[-1]).name}") from None
    seconds = time.perf_counter() - start
    stats = work / f"{tool}.stats.txt"
    if result.returncode != 0 or not stats.exists():
        errors = [line for line in (result.stdout + result.stderr).splitlines() if "ERROR" in line or "rror" in line]
        last = (errors or (result.stderr or result.stdout).strip().splitlines() or ["no output"])[-1]
        raise SparsesimError(f"{tool} failed on {Path(inputs[-1]).name} (exit {result.returncode}): {last.strip()[:200]}")
    return Run(parse_stats(stats), (tool, *args), seconds, work)


def arch_inputs(export_dir: Path) -> list[Path]:
    """The architecture files `write_architecture` puts in an export folder, in Timeloop's order."""
    d = Path(export_dir)
    return [d / "architecture.yaml", *sorted((d / "components").glob("*.yaml")),
            *([d / "ERT.yaml"] if (d / "ERT.yaml").exists() else []), *sorted((d / "constraints").glob("*.yaml"))]


def run_layer(mapper: str, export_dir: Path, problem: Path, timeout_s: int = 3600) -> TimeloopStats:
    """timeloop-mapper on one exported (dense) problem, in its own work directory; the parsed stats."""
    name = problem.name.removesuffix(".problem.yaml")
    work = export_dir / "timeloop-runs" / name
    return run_tool("timeloop-mapper", work, [*arch_inputs(export_dir), problem, export_dir / "mapper.yaml"],
                    timeout_s).stats
