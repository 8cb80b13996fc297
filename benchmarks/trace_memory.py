"""Memory stays flat as the video grows: peak RSS of `sparsesim trace` for 30 vs 300 frames.

Makes a 300-frame video from the real carphone sample (played forwards then backwards, re-encoded at
its native 176x144), then traces 30 and 300 frames of it, each in a fresh process.
Usage: python benchmarks/trace_memory.py [--model rife]
"""
from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import tempfile
from pathlib import Path

from sparsesim.trace import video

CHILD = """
import resource, sys, torch
from sparsesim.cli import main
torch.set_num_threads(1)
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
sys.exit(code)
"""


def long_video(path: Path, frames: int) -> None:
    sample = list(video.frames(video.resolve_video("sample:carphone_pristine")))
    ping_pong = itertools.cycle(sample + sample[-2:0:-1])
    video.encode(path, itertools.islice(ping_pong, frames), fps=30)


def peak_rss_mib(src: Path, frames: int, model: str, out: Path) -> float:
    args = ["trace", str(src), "--model", model, "--frames", str(frames), "-o", str(out), "-q"]
    result = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, check=True)
    return int(result.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="rife")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "carphone-300.mp4"
        long_video(src, 300)
        short = peak_rss_mib(src, 30, args.model, Path(tmp) / "t30")
        long = peak_rss_mib(src, 300, args.model, Path(tmp) / "t300")
    print(f"{args.model}, 176x144, quality check on every frame, 1 torch thread:")
    print(f"  peak RSS  30 frames: {short:7.1f} MiB")
    print(f"  peak RSS 300 frames: {long:7.1f} MiB  ({(long / short - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
