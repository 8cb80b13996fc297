"""Throughput of many-video tracing (frames/s) with 1 and 2 local workers, and the sweep's rows/s.

Traces the three sample videos (the first --frames frames of each, MTCNN P-Net, quality check off) into
a temporary directory, once per worker count; then sweeps the traces over 6 hardware x 6 blocks.
Usage: python benchmarks/scale_throughput.py [--frames 60] [--model mtcnn-pnet]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sparsesim.trace import video
from sparsesim.trace.gates import GateConfig
from sparsesim.distributed.sweep import sweep
from sparsesim.distributed.tracing import trace_many
from sparsesim.trace.tracer import TraceOptions

SAMPLES = ("carphone_pristine", "bikes", "bigbuckbunny")
HW = ["h100", "a100", "orin", "cpu", "eyeriss", "tpu-v1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--model", default="mtcnn-pnet")
    args = parser.parse_args()
    videos = [video.resolve_video(f"sample:{name}") for name in SAMPLES]
    base = TraceOptions(video="", model=args.model, gate=GateConfig("input-norm", threshold=0.05), frames=args.frames,
                        quality_every=0)
    with tempfile.TemporaryDirectory() as tmp:
        copies = Path(tmp) / "copies"  # a balanced set: four equal videos (carphone under four names)
        copies.mkdir()
        for i in range(4):
            (copies / f"carphone{i}.mp4").write_bytes(videos[0].read_bytes())
        balanced = sorted(copies.iterdir())
        for label, batch in (("the three samples", videos), ("4 x carphone", balanced)):
            for workers in (1, 2):
                start = time.perf_counter()
                result = trace_many(batch, base, Path(tmp) / f"{label[:3]}-w{workers}", workers=workers, progress=False)
                seconds = time.perf_counter() - start
                frames = int(result.table["frames"].sum())
                print(f"trace {label}, {workers} worker(s): {frames} frames in {seconds:.1f} s = "
                      f"{frames / seconds:.1f} frames/s (worker start and model load included)")
            if label == "the three samples":
                traces = list(result.table["trace"])
        for workers in (1, 2):
            start = time.perf_counter()
            rows = sweep(traces, HW, [1, 2, 4, 8, 16, 32], workers=workers, progress=False)
            seconds = time.perf_counter() - start
            print(f"sweep, {workers} worker(s): {len(rows)} rows in {seconds:.1f} s = {len(rows) / seconds:,.0f} rows/s")


if __name__ == "__main__":
    main()
