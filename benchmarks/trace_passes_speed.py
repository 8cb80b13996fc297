"""Tracing speed with and without the quality and ground-truth passes (issue 17, "Tracing speed").

One configuration per process, so that `/usr/bin/time -v` gives each its own peak memory:

    dense    the model alone, densely, on the tracer's decoded windows (benchmarks/trace_overhead.py)
    gated    sparsesim trace at the default gate, no quality pass (--quality-every 0)
    quality  the same with the dense pass and PSNR on every step (--quality-every 1)
    truth    --vfi-eval (RIFE) / --ground-truth: the dense pass plus the ground-truth scores on every step

The model is loaded before the clock starts (loading is the same for all); steps/s counts model steps
(a --vfi-eval step reads two frames two apart and makes one interpolated frame).

    for p in dense gated quality truth; do /usr/bin/time -v python benchmarks/trace_passes_speed.py $p \\
        --video sample:bigbuckbunny --frames 9 2>&1 | grep -E 'steps/s|Maximum resident'; done
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from sparsesim.trace import models, video
from sparsesim.trace.allocator import keep_freed_memory
from sparsesim.trace.tracer import TraceOptions, trace_video

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trace_overhead import dense_run  # noqa: E402

PASSES = {"gated": {"quality_every": 0}, "quality": {"quality_every": 1}, "truth": {}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", choices=["dense", *PASSES])
    parser.add_argument("--video", default="sample:bigbuckbunny")
    parser.add_argument("--model", default="rife")
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--default-allocator", action="store_true",
                        help="dense: glibc's default allocator, not the tracer's (trace/allocator.py)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.default_allocator:   # a trace always runs with it: the dense side gets it too, to compare like with like
        keep_freed_memory()
    loaded = models.load(args.model)
    info = video.probe(video.resolve_video(args.video))
    size = (info.width, info.height)
    truth = {"vfi_eval": True} if loaded.spec.task == "interpolation" else {"ground_truth": True}
    options = TraceOptions(video=args.video, model=args.model, frames=args.frames, progress=False,
                           **(PASSES.get(args.run) or (truth | {"quality_every": 0})))
    with tempfile.TemporaryDirectory() as tmp:
        began, began_cpu = time.perf_counter(), time.process_time()
        if args.run == "dense":
            steps = dense_run(loaded, options, size)
        else:
            steps = trace_video(TraceOptions(**{**options.__dict__, "output": f"{tmp}/t"}), loaded).frames
        seconds, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    # on a shared machine the CPU-time rate is the one to compare; wall-clock is what a user waits
    print(f"{args.run}: {args.model} on {args.video} {size[0]}x{size[1]}, {args.frames} frames, {steps} steps in "
          f"{seconds:.1f} s wall, {cpu:.1f} s CPU: {steps / seconds:.3f} steps/s wall, {steps / cpu:.3f} per CPU "
          f"second ({args.threads} torch thread(s))")


if __name__ == "__main__":
    main()
