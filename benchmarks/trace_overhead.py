"""Tracing overhead: frames/s of `sparsesim trace` vs the same model run densely without recording.

Both sides decode the same frames with the same code and use the same loaded model (loading and, for
ONNX files, converting it is left out of both); torch uses one thread. Wall-clock and CPU-time rates are
both printed: on a shared machine, the CPU-time ratios are the ones to quote. For an `onnx:` model, onnxruntime
running the original file densely (one thread) is timed too.
Usage: python benchmarks/trace_overhead.py [--video sample:carphone_pristine] [--model rife] [--repeat 3]
       python benchmarks/trace_overhead.py --video sample:bikes --model onnx:DET.onnx --input-size 384x160 \
           --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225 --color bgr --start 56 --frames 64
"""
from __future__ import annotations

import argparse
import copy
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from sparsesim.text import parse_size
from sparsesim.trace import models, video
from sparsesim.trace.allocator import keep_freed_memory
from sparsesim.trace.gates import GateConfig
from sparsesim.trace.preprocess import Preprocess
from sparsesim.trace.tracer import TraceOptions, to_tensor, trace_video


def steps_of(loaded: models.LoadedModel, options: TraceOptions, size):
    """The model's input windows, frame by frame, decoded as the tracer decodes them."""
    spec, window = loaded.spec, []
    for frame in video.frames(video.resolve_video(options.video), options.start, options.frames, size):
        window = (window + [to_tensor(frame, spec.pad_multiple, "cpu")])[-spec.frames_per_step:]
        if len(window) == spec.frames_per_step:
            yield window


def dense_run(loaded: models.LoadedModel, options: TraceOptions, size) -> int:
    steps = 0
    module = copy.deepcopy(loaded.module)  # as trace_video copies it
    with torch.inference_mode():
        for window in steps_of(loaded, options, size):
            loaded.spec.run(module, window)
            steps += 1
    return steps


def onnxruntime_run(loaded: models.LoadedModel, options: TraceOptions, size, path: str) -> int:
    import onnxruntime
    session_options = onnxruntime.SessionOptions()
    session_options.intra_op_num_threads = session_options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, session_options, providers=["CPUExecutionProvider"])
    run, steps = loaded.spec.run, 0
    for window in steps_of(loaded, options, size):
        session.run(None, dict(zip(run.inputs, (t.numpy() for t in run.tensors(window)))))
        steps += 1
    return steps


def best_fps(run, repeat: int) -> tuple[float, float]:
    """Best frames per wall-clock second and per CPU second of this process (the CPU figure stays
    meaningful when other work shares the machine)."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        steps = run()
        wall.append(steps / (time.perf_counter() - start))
        cpu.append(steps / (time.process_time() - start_cpu))
    return max(wall), max(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default="sample:carphone_pristine")
    parser.add_argument("--model", default="rife")
    parser.add_argument("--threshold", type=float, default=0.05, help="besides eps=0 (nothing skipped)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--frames", type=int)
    for flag in ("--input-size", "--mean", "--std", "--color"):
        parser.add_argument(flag)
    args = parser.parse_args()
    torch.set_num_threads(1)
    keep_freed_memory()   # the tracer's allocator setting (trace/allocator.py) for the dense side as well
    pre = Preprocess.parse(args.input_size, args.mean, args.std, color=args.color)
    base = TraceOptions(video=args.video, model=args.model, preprocess=pre, start=args.start, frames=args.frames,
                        progress=False)
    loaded = models.load(args.model, preprocess=pre)
    info = video.probe(video.resolve_video(args.video))
    size = parse_size(args.input_size) if args.input_size else (info.width, info.height)
    rates = {"dense torch, no recording": best_fps(lambda: dense_run(loaded, base, size), args.repeat)}
    if args.model.startswith("onnx:"):
        source = args.model.removeprefix("onnx:")
        rates["dense onnxruntime"] = best_fps(lambda: onnxruntime_run(loaded, base, size, source), args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        for eps in (0.0, args.threshold):
            for q in (0, 1):
                options = replace(base, gate=GateConfig("input-norm", threshold=eps), quality_every=q, output=f"{tmp}/t{eps}-{q}")
                label = f"trace, eps={eps:g}, quality {'every frame' if q else 'off'}"
                rates[label] = best_fps(lambda: trace_video(options, loaded).frames, args.repeat)
    dense, dense_cpu = rates["dense torch, no recording"]
    print(f"{args.model} on {args.video} ({size[0]}x{size[1]}), 1 torch thread, best of {args.repeat}:")
    print(f"  {'':38s} {'frames/s':>9s} {'vs dense':>9s} {'frames/CPU-s':>13s} {'vs dense':>9s}")
    for label, (fps, cpu) in rates.items():
        print(f"  {label:38s} {fps:9.2f} {dense / fps:8.2f}x {cpu:13.2f} {dense_cpu / cpu:8.2f}x")


if __name__ == "__main__":
    main()
