"""Start-up time of commands that run no model: wall time (median of 7 runs) and the heaviest imports.

    python benchmarks/startup.py

Measured on this machine; never gates CI. Target (architecture issue): `--help` and `hw list` within 0.5 s.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPARSESIM = [sys.executable, "-m", "sparsesim.cli"]
COMMANDS = (["--help"], ["--version"], ["hw", "list"], ["hw", "show", "h100"])


def wall(args: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([*SPARSESIM, *args], cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def heaviest_imports(args: list[str], top: int = 8) -> list[tuple[float, str]]:
    err = subprocess.run([sys.executable, "-X", "importtime", "-m", "sparsesim.cli", *args], cwd=ROOT,
                         capture_output=True, text=True).stderr
    rows = []
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = line.removeprefix("import time:").split("|")
            if not name[1:].startswith(" "):          # top level: not indented under another import
                rows.append((int(cumulative) / 1e6, name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    for args in COMMANDS:
        print(f"sparsesim {' '.join(args):<14} {wall(args):.3f} s wall (median of 7)")
    print("\nheaviest top-level imports of `sparsesim hw list` (cumulative seconds, python -X importtime):")
    for seconds, name in heaviest_imports(["hw", "list"]):
        print(f"  {seconds:6.3f}  {name}")


if __name__ == "__main__":
    main()
