"""Activity against quality across gate settings: the table issue 17 asks for (its "Must show").

For each video x model x gate semantics (skip-conv input-norm, delta) x threshold mode x epsilon, trace a
short clip and report the mean active fraction after frame 0 (over layers and frames), the same by layer
depth (layers in data-flow order cut into four quarters, d1 = nearest the input), the MAC-weighted active
fraction, and the PSNR of the gated output against the dense one (mean and worst frame). With --truth, each
model is also scored against ground truth by its task's protocol (sparsesim/trace/ground_truth.py): RIFE
by --vfi-eval (frames 2k, 2k+2 interpolated and scored against the real 2k+1, gated and dense: gt_psnr_db,
gt_psnr_dense_db, gt_ssim, gt_ssim_dense), P-Net by --ground-truth (face-probability MAE and detection
recall/precision against the dense run). The CSV is rewritten (atomically) after every row, so a killed
sweep keeps what it finished, and --resume skips the rows already there.

A video may carry its own frame count and size: VIDEO@FRAMES@WxH (e.g. sample:bigbuckbunny@9@640x360).

    PYTHONPATH=. python benchmarks/gate_sweep.py --frames 12 -o benchmarks/results/gate_sweep.csv
    PYTHONPATH=. python benchmarks/gate_sweep.py --truth --frames 25 \
        --videos sample:carphone_pristine,sample:bikes,sample:bigbuckbunny@9@640x360 \
        -o benchmarks/results/gate_sweep_gt.csv                                        # the "Must show" table
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
# Ground-truth columns averaged over gated steps, per protocol (the rest of frames.parquet is summarised above)
TRUTH_COLUMNS = ("gt_psnr_db", "gt_psnr_dense_db", "gt_ssim", "gt_ssim_dense",
                 "gt_prob_mae", "gt_det_recall", "gt_det_precision")


def parse_video(spec: str, frames: int) -> tuple[str, int, tuple[int, int] | None]:
    """VIDEO[@FRAMES[@WxH]] -> (video, frames, size or None)."""
    name, *rest = spec.split("@")
    count = int(rest[0]) if rest and rest[0] else frames
    size = tuple(int(v) for v in rest[1].split("x")) if len(rest) > 1 else None
    return name, count, size


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
    row["psnr_db_min"] = float(psnr.min()) if psnr.size else float("nan")
    if not gated.any():   # a single step: nothing gated to summarise
        return row
    for column in TRUTH_COLUMNS:
        if column in frames:
            row[f"{column}_mean"] = float(np.nanmean(frames[column].to_numpy(float)[gated]))
    if "gt_psnr_db" in frames:   # the gated interpolation's loss against the real frame, worst step included
        loss = frames["gt_psnr_dense_db"].to_numpy(float)[gated] - frames["gt_psnr_db"].to_numpy(float)[gated]
        row["gt_psnr_loss_db_mean"] = float(row["gt_psnr_dense_db_mean"] - row["gt_psnr_db_mean"])
        row["gt_psnr_loss_db_max"] = float(np.nanmax(loss))
    return row


def truth_flags(model: str, enabled: bool) -> dict:
    """RIFE interpolates: --vfi-eval; every other model: its task's --ground-truth protocol."""
    if not enabled:
        return {}
    return {"vfi_eval": True} if model == "rife" else {"ground_truth": True}


def save(rows: list[dict], output: Path) -> None:
    df = pd.DataFrame(rows)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, lambda p: df.to_csv(p, index=False, float_format="%.5g"))


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
    parser.add_argument("--truth", action="store_true",
                        help="score against ground truth: --vfi-eval for RIFE, --ground-truth for the others")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in OUTPUT, trace the rest")
    parser.add_argument("-o", "--output", default="benchmarks/results/gate_sweep.csv")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    output = Path(args.output)
    rows = pd.read_csv(output).to_dict("records") if args.resume and output.exists() else []
    done = {(r["video"], r["model"], r["semantics"], r["threshold_mode"], float(r["eps"])) for r in rows}
    settings = itertools.product([parse_video(v, args.frames) for v in args.videos.split(",")],
                                 args.models.split(","), args.semantics.split(","),
                                 args.modes.split(","), [float(e) for e in args.eps.split(",")])
    with tempfile.TemporaryDirectory() as tmp:
        for i, ((vid, frames, size), model, kind, mode, eps) in enumerate(settings):
            gate = GateConfig(kind, eps, threshold_mode=mode)
            if (vid.removeprefix("sample:"), model, gate.semantics, mode, eps) in done:
                continue
            options = TraceOptions(video=vid, model=model, gate=gate, frames=frames, start=args.start, size=size,
                                   quality_every=1, progress=False, output=f"{tmp}/t{i}",
                                   **truth_flags(model, args.truth))
            began = time.perf_counter()
            result = trace_video(options)
            seconds = time.perf_counter() - began
            t = trace.open(result.path)
            width, height = t.meta["identity"]["size"]
            rows.append({"video": vid.removeprefix("sample:"), "size": f"{width}x{height}", "model": model,
                         "semantics": gate.semantics, "threshold_mode": mode, "eps": eps, **summarise(t),
                         "seconds": round(seconds, 1)})
            save(rows, output)   # after every row: a killed sweep keeps what it finished
            print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()),
                  flush=True)
    print(f"{len(rows)} rows in {args.output} ({args.start} is the first frame, {args.threads} torch thread(s))")


if __name__ == "__main__":
    main()
