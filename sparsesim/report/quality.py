"""Quality a trace recorded, summarised for `info` and the report: the gated-vs-dense drift and, with
ground truth (`trace --ground-truth/--vfi-eval`), the scores against real frames (no torch: reads columns)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import pandas as pd

    from ..trace.format import Trace


def column_means(frames: "pd.DataFrame", prefix: str = "gt_") -> dict[str, float]:
    """Mean of each `prefix*` column over the frames that scored it; an infinite PSNR (identical images,
    e.g. a dense first frame against itself) is left out of the mean, as for psnr_db."""
    import numpy as np
    out = {}
    for col in (c for c in frames.columns if c.startswith(prefix)):
        values = frames[col].replace([np.inf, -np.inf], np.nan).dropna()
        out[col] = float(values.mean()) if len(values) else float("nan")
    return out


def _image(m: dict[str, float], n: int) -> str:
    return (f"PSNR gated {m['gt_psnr_db']:.2f} dB (dense {m['gt_psnr_dense_db']:.2f} dB), SSIM gated "
            f"{m['gt_ssim']:.4f} (dense {m['gt_ssim_dense']:.4f}), mean over {n} frames")


def _detection(m: dict[str, float], n: int) -> str:
    return (f"vs dense: face-map MAE {m['gt_prob_mae']:.4f}, proposals recall {m['gt_det_recall']:.3f} "
            f"precision {m['gt_det_precision']:.3f} ({m['gt_det_dense']:.1f} dense proposals per frame), "
            f"mean over {n} frames")


LINES: dict[str, Callable[[dict[str, float], int], str]] = {
    "interpolation": _image, "super-resolution": _image, "detection": _detection}


def ground_truth_line(trace: "Trace") -> str | None:
    """One line of ground-truth means, or None for a trace recorded without ground truth."""
    task = trace.meta.get("ground_truth", {}).get("task")
    if task not in LINES or not len(trace.frames):
        return None
    return f"{task}: {LINES[task](column_means(trace.frames), len(trace.frames))}"
