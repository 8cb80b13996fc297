"""Tracing overhead: frames/s of `sparsesim trace` vs the same model run densely without recording.

Both sides decode the same video with the same code and load the same weights; torch uses one thread.
Usage: python benchmarks/trace_overhead.py [--video sample:carphone_pristine] [--model rife] [--repeat 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from sparsesim.trace import models, video
from sparsesim.trace.gates import GateConfig
from sparsesim.trace.tracer import TraceOptions, to_tensor, trace_video


def dense_run(path: Path, model_name: str) -> int:
    loaded = models.load(model_name)
    spec, steps, window = loaded.spec, 0, []
    with torch.inference_mode():
        for frame in video.frames(path):
            window = (window + [to_tensor(frame, spec.pad_multiple, "cpu")])[-spec.frames_per_step:]
            if len(window) == spec.frames_per_step:
                spec.run(loaded.module, window)
                steps += 1
    return steps


def traced_run(path: Path, model_name: str, quality_every: int, threshold: float, out: Path) -> int:
    options = TraceOptions(video=str(path), model=model_name, gate=GateConfig(threshold=threshold),
                           output=str(out), quality_every=quality_every, progress=False)
    return trace_video(options).frames


def best_fps(run, repeat: int) -> float:
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        steps = run()
        rates.append(steps / (time.perf_counter() - start))
    return max(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default="sample:carphone_pristine")
    parser.add_argument("--model", default="rife")
    parser.add_argument("--threshold", type=float, default=0.05, help="besides eps=0 (nothing skipped)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    path = video.resolve_video(args.video)
    with tempfile.TemporaryDirectory() as tmp:
        dense = best_fps(lambda: dense_run(path, args.model), args.repeat)
        runs = {f"eps={eps:g}, quality {'every frame' if q else 'off'}":
                best_fps(lambda: traced_run(path, args.model, q, eps, Path(tmp) / f"t{eps}-{q}"), args.repeat)
                for eps in (0.0, args.threshold) for q in (0, 1)}
    print(f"{args.model} on {args.video}, 1 torch thread, best of {args.repeat}:")
    print(f"  {'dense, no recording':32s} {dense:7.2f} frames/s")
    for label, fps in runs.items():
        print(f"  {'trace, ' + label:32s} {fps:7.2f} frames/s  overhead {dense / fps:.2f}x")


if __name__ == "__main__":
    main()
