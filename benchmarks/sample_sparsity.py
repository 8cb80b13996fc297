"""Sparsity and quality on the bundled sample video: the figures for the trace issue's closing note.

Traces the sample with each model at each threshold into traces/ and prints, per trace, the mean
active fraction over layers and frames (first, dense frame excluded), the MAC-weighted active fraction,
and the mean PSNR of the gated against the dense output.
Usage: python benchmarks/sample_sparsity.py [--video sample:carphone_pristine] [--eps 0.01,0.05,0.1]
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import torch

from sparsesim import trace
from sparsesim.gates import GateConfig
from sparsesim.tracer import TraceOptions, trace_video


def summarise(t: trace.Trace) -> dict:
    active = t.active.iloc[1:]
    macs = t.layers_df.set_index("name")["dense_macs"][active.columns]
    psnr = t.frames["psnr_db"].iloc[1:].replace(np.inf, np.nan)
    return {"model": t.meta["model"]["name"], "eps": t.meta["gate"]["threshold"], "frames": t.num_frames,
            "active_mean": float(active.to_numpy().mean()),
            "active_mac_weighted": float((active * macs).sum(axis=1).mean() / macs.sum()),
            "psnr_db_mean": float(psnr.mean()), "psnr_db_min": float(psnr.min()),
            "identical_frames": int(np.isinf(t.frames["psnr_db"].iloc[1:]).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default="sample:carphone_pristine")
    parser.add_argument("--models", default="rife,mtcnn-pnet")
    parser.add_argument("--eps", default="0.01,0.05,0.1")
    parser.add_argument("--gate", default="input-norm")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for model in args.models.split(","):
        for eps in map(float, args.eps.split(",")):
            result = trace_video(TraceOptions(video=args.video, model=model, progress=False,
                                              gate=GateConfig(args.gate, eps)))
            rows.append(summarise(trace.open(result.path)))
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
