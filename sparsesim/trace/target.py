"""Quality targets: the largest gate threshold that keeps a PSNR target, found on a video's first frames.

`sparsesim trace --target-psnr DB` traces the first frames at trial thresholds (the same tracer, into a
temporary directory), bisects epsilon on a log scale between EPS_LO and EPS_HI for the largest one whose
gated-vs-dense PSNR still reaches the target, and traces the whole video at it; the search is recorded in
meta.json (`calibration`). The PSNR of several frames is that of their mean squared error, so one bad
frame counts as it does in the error, not as one dB among many. The search assumes the PSNR falls as
epsilon grows (true of the gates up to noise); it reports the largest passing epsilon it saw.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ..errors import SparsesimError, require
from .gate_config import THRESHOLDED_KINDS

EPS_LO, EPS_HI = 1e-4, 2.0
WINDOWS = 3             # places in the video the search traces: its start, middle and end
BISECTIONS = 8          # (EPS_HI / EPS_LO) ** (1 / 2**8): epsilon found within 4 % of the boundary


@dataclass(frozen=True)
class Trial:
    eps: float
    psnr_db: float
    active_mean: float


@dataclass(frozen=True)
class Calibration:
    target_db: float
    frames: int
    chosen: Trial
    trials: tuple[Trial, ...]
    starts: tuple[int, ...] = (0,)   # first decoded frame of each traced window

    def record(self) -> dict:
        return {"target_psnr_db": self.target_db, "frames": self.frames, "window_starts": list(self.starts),
                "metric": "psnr_db of the mean "
                "squared error over the gated calibration frames, gated vs dense", "chosen_eps": self.chosen.eps,
                "chosen_psnr_db": self.chosen.psnr_db, "search": [vars(t) for t in self.trials]}


def pooled_psnr(psnr_db: np.ndarray) -> float:
    """PSNR of the mean squared error behind several frames' PSNRs (inf frames: no error)."""
    values = np.asarray(psnr_db, float)
    values = values[~np.isnan(values)]
    if not values.size:
        return math.nan
    mse = np.mean(10.0 ** (-values / 10.0))
    return math.inf if mse == 0 else float(-10.0 * np.log10(mse))


def largest_passing(evaluate: Callable[[float], Trial], target: float, lo: float = EPS_LO, hi: float = EPS_HI,
                    steps: int = BISECTIONS) -> tuple[Trial | None, list[Trial]]:
    """Bisect log(eps) in [lo, hi] for the largest eps whose trial reaches `target`; (None, trials) when
    not even `lo` does."""
    trials = [evaluate(hi)]
    if trials[-1].psnr_db >= target:
        return trials[-1], trials
    trials.append(evaluate(lo))
    if trials[-1].psnr_db < target:
        return None, trials
    good, bad = lo, hi
    for _ in range(steps):
        mid = math.sqrt(good * bad)
        trials.append(evaluate(mid))
        good, bad = (mid, bad) if trials[-1].psnr_db >= target else (good, mid)
    passing = [t for t in trials if t.psnr_db >= target]
    return max(passing, key=lambda t: t.eps), trials


def window_starts(start: int, frames: int, available: int, windows: int = WINDOWS) -> tuple[int, ...]:
    """Where the search's windows of `frames` decoded frames begin: spread evenly from `start` to the last
    window that fits. The first frames alone did not tell: bikes' opening frames barely move, so a search on
    them took the largest epsilon, and the whole video came out 9 dB under its target."""
    room = available - frames
    if room <= 0 or windows <= 1:
        return (start,)
    return tuple(sorted({start + round(i * room / (windows - 1)) for i in range(windows)}))


def _where(frames: int, starts: tuple[int, ...]) -> str:
    if len(starts) == 1:
        return f"the first {frames} frames" if starts[0] == 0 else f"{frames} frames from frame {starts[0]}"
    return f"{frames} frames at each of frames {', '.join(map(str, starts))}"


def calibrate(options, loaded, target_db: float, frames: int) -> Calibration:
    """The search on windows of `frames` decoded frames spread over options.video (TraceOptions, a
    LoadedModel): each trial traces every window and pools their gated frames' squared errors."""
    from .tracer import trace_video
    from .format import open as open_trace
    from . import video
    require(options.gate.kind in THRESHOLDED_KINDS, ("target_psnr", "gate.kind"),
            f"{{target_psnr}} searches a threshold: it needs a thresholded gate ({', '.join(THRESHOLDED_KINDS)}), "
            f"not {options.gate.kind}")
    info = video.probe(video.resolve_video(options.video))
    available = max(info.frame_count - options.start, 0)
    if options.frames is not None:
        available = min(available, options.frames) if available else options.frames
    starts = window_starts(options.start, frames, available)
    with tempfile.TemporaryDirectory(prefix="sparsesim-calibrate-") as tmp:
        def evaluate(eps: float) -> Trial:
            psnr, active = [], []
            for at in starts:
                trial = replace(options, gate=replace(options.gate, threshold=eps), start=at, frames=frames,
                                quality_every=1, output=f"{tmp}/e{eps:.6g}-{at}", progress=False,
                                skip_complete=False, target_psnr=None, handle_signals=False)
                t = open_trace(trace_video(trial, loaded).path)
                gated = ~t.frames["reset"].to_numpy()
                psnr.append(t.frames["psnr_db"].to_numpy()[gated])
                active.append(t.active.to_numpy()[gated])
            active_all = np.concatenate(active)
            return Trial(eps, pooled_psnr(np.concatenate(psnr)),
                         float(active_all.mean()) if active_all.size else math.nan)

        chosen, trials = largest_passing(evaluate, target_db)
    if chosen is None:
        best = max(trials, key=lambda t: t.psnr_db)
        raise SparsesimError(f"no threshold reaches PSNR {target_db:g} dB on {_where(frames, starts)}: the best "
                             f"was {best.psnr_db:.2f} dB at eps {best.eps:g}")
    return Calibration(target_db, frames, chosen, tuple(trials), starts)
