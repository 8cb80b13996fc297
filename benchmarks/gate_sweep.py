"""Activity against quality across gate settings: the table issue 17 asks for (its "Must show").

For each video x model x gate semantics (skip-conv input-norm, delta) x threshold mode x epsilon, trace a
short clip and report the mean active fraction after frame 0 (over layers and frames), the same by layer
depth (layers in data-flow order cut into four quarters, d1 = nearest the input), the MAC-weighted active
fraction, and the PSNR of the gated output against the dense one (mean and worst frame). Quality against
ground truth (the real frames) is not here: that needs the --vfi-eval pass.

    PYTHONPATH=. python benchmarks/gate_sweep.py --frames 12 -o benchmarks/results/gate_sweep.csv
    PYTHONPATH=. python benchmarks/gate_sweep.py --videos sample:carphone_pristine --frames 120 --modes relative \
        --eps 0.05,0.1,0.2 -o benchmarks/results/gate_sweep_carphone_120.csv     # drift over a whole video
"""
from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from sparsesim import trace
from sparsesim.atomic import write_atomic
from sparsesim.trace.gates import GateConfig
from sparsesim.trace.tracer import TraceOptions, trace_video

QUARTERS = 4


def summarise(t: trace.Trace) -> dict:
    """Gated frames only (frame 0 and any reset are dense by construction)."""
    frames = t.frames
    gated = ~frames["reset"].to_numpy()
    active = t.active.to_numpy()[gated]                        # (gated frames, layers), data-flow order
    macs = t.layers_df["dense_macs"].to_numpy(float)
    psnr = frames["psnr_db"].to_numpy()[gated]
    finite = psnr[np.isfinite(psnr)]
    row = {"frames": t.num_frames, "gated_frames": int(gated.sum()), "resets": int((~gated).sum()),
           "active_mean": float(active.mean()), "active_mac_weighted": float((active @ macs).mean() / macs.sum())}
    for q, cols in enumerate(np.array_split(np.arange(active.shape[1]), QUARTERS), start=1):
        row[f"active_d{q}"] = float(active[:, cols].mean())
    row["psnr_db_mean"] = float(finite.mean()) if finite.size else float("inf")
    row["psnr_db_min"] = float(psnr.min())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", default="sample:carphone_pristine,sample:bikes")
    parser.add_argument("--models", default="rife,mtcnn-pnet")
    parser.add_argument("--eps", default="0.01,0.02,0.05,0.1,0.2")
    parser.add_argument("--semantics", default="input-norm,delta", help="gate kinds: input-norm (skip-conv), delta")
    parser.add_argument("--modes", default="relative,absolute")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("-o", "--output", default="benchmarks/results/gate_sweep.csv")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    settings = itertools.product(args.videos.split(","), args.models.split(","), args.semantics.split(","),
                                 args.modes.split(","), [float(e) for e in args.eps.split(",")])
    with tempfile.TemporaryDirectory() as tmp:
        for i, (vid, model, kind, mode, eps) in enumerate(settings):
            gate = GateConfig(kind, eps, threshold_mode=mode)
            options = TraceOptions(video=vid, model=model, gate=gate, frames=args.frames, start=args.start,
                                   quality_every=1, progress=False, output=f"{tmp}/t{i}")
            began = time.perf_counter()
            result = trace_video(options)
            seconds = time.perf_counter() - began
            t = trace.open(result.path)
            rows.append({"video": vid.removeprefix("sample:"), "model": model, "semantics": gate.semantics,
                         "threshold_mode": mode, "eps": eps, **summarise(t), "seconds": round(seconds, 1)})
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()),
                  flush=True)
    df = pd.DataFrame(rows)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(args.output), lambda p: df.to_csv(p, index=False, float_format="%.5g"))
    print(f"{len(df)} rows written to {args.output} ({args.frames} frames from {args.start}, "
          f"{args.threads} torch thread(s))")


if __name__ == "__main__":
    main()
