"""Sparsity and quality on the bundled sample video: the figures for the trace issue's closing note.

Traces the sample with each model at each threshold into traces/ and prints, per trace, the mean
active fraction over layers and frames (first, dense frame excluded), the MAC-weighted active fraction,
and the mean PSNR of the gated against the dense output.
Usage: python benchmarks/sample_sparsity.py [--video sample:carphone_pristine] [--eps 0.01,0.05,0.1]
       python benchmarks/sample_sparsity.py --gate uncertainty [--keep 0.35,0.5,0.7]
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

from sparsesim import trace
from sparsesim.trace.gates import GateConfig
from sparsesim.trace.tracer import TraceOptions, trace_video


def summarise(t: trace.Trace) -> dict:
    first = 0 if t.meta["gate"]["kind"] == "uncertainty" else 1  # Skip-Conv's frame 0 is dense by construction
    active = t.active.iloc[first:]
    macs = t.layers_df.set_index("name")["dense_macs"][active.columns]
    psnr = t.frames["psnr_db"].iloc[first:].replace(np.inf, np.nan)
    return {"model": t.meta["model"]["name"], "gate": t.meta["gate"]["label"], "frames": t.num_frames,
            "active_mean": float(active.to_numpy().mean()),
            "active_mac_weighted": float((active * macs).sum(axis=1).mean() / macs.sum()),
            "psnr_db_mean": float(psnr.mean()), "psnr_db_min": float(psnr.min()),
            "identical_frames": int(np.isinf(t.frames["psnr_db"].iloc[first:]).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default="sample:carphone_pristine")
    parser.add_argument("--models", default="rife,mtcnn-pnet")
    parser.add_argument("--eps", default="0.01,0.05,0.1")
    parser.add_argument("--gate", default="input-norm")
    parser.add_argument("--keep", default="0.35,0.5,0.7", help="with --gate uncertainty (rife only)")
    # the committed traces predate threshold modes and cut detection: these defaults re-record them as they are
    parser.add_argument("--threshold-mode", default="absolute")
    parser.add_argument("--cut-threshold", type=float, default=0.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    common = dict(threshold_mode=args.threshold_mode, cut_threshold=args.cut_threshold)
    gates = ([GateConfig("uncertainty", keep=k, **common) for k in map(float, args.keep.split(","))]
             if args.gate == "uncertainty" else
             [GateConfig(args.gate, e, **common) for e in map(float, args.eps.split(","))])
    models = ["rife"] if args.gate == "uncertainty" else args.models.split(",")
    for model in models:
        for gate in gates:
            result = trace_video(TraceOptions(video=args.video, model=model, progress=False, gate=gate))
            rows.append(summarise(trace.open(result.path)))
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
