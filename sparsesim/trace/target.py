"""Quality targets: the largest gate threshold that keeps a PSNR target over the whole video.

`sparsesim trace --target-psnr DB` searches in two stages, each trial a run of the same tracer into a
temporary directory, and then traces the video at the threshold found; meta.json records both (`calibration`):
1. windows: short windows at the start, middle and end of the video, traced at trial thresholds; epsilon is
   bisected on a log scale between EPS_LO and EPS_HI for the largest one whose pooled gated-vs-dense PSNR
   reaches the target. Cheap, but a window starts from a dense frame and the gated error grows for ten or
   more frames before it levels off (P-Net on bigbuckbunny: 42 dB on the first gated frame, 32 dB from the
   twelfth on at one epsilon), so a window's PSNR is higher than the video's.
2. the whole video: traced at the windows' epsilon, then at epsilons moved by the gap left (the windows'
   curve shifted by the offset measured, then secants through the whole-video trials), until the video's
   PSNR lies in [target, target + TOLERANCE_DB) or VIDEO_TRIALS runs are spent; the largest passing epsilon
   is kept. Skipped where one window already is the whole video.
The PSNR of several frames is that of their mean squared error, so one bad frame counts as it does in the
error, not as one dB among many. The search assumes the PSNR falls as epsilon grows (true of the gates up
to noise); it keeps the largest passing epsilon it saw.
"""
from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from tqdm import tqdm

from ..errors import SparsesimError, require
from .gate_config import THRESHOLDED_KINDS

EPS_LO, EPS_HI = 1e-4, 2.0
WINDOWS = 3             # places in the video the search traces: its start, middle and end
BISECTIONS = 8          # (EPS_HI / EPS_LO) ** (1 / 2**8): epsilon found within 4 % of the boundary
VIDEO_TRIALS = 4        # whole-video runs at most (each costs a trace of the video with a dense pass per step)
TOLERANCE_DB = 0.5      # a whole-video PSNR in [target, target + this) is a hit


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
    trials: tuple[Trial, ...]          # stage 1, on the windows
    starts: tuple[int, ...] = (0,)   # first decoded frame of each traced window
    video_trials: tuple[Trial, ...] = ()   # stage 2, on the whole video (none where a window was the video)

    def record(self) -> dict:
        over = "the whole video's gated frames" if self.video_trials else "the gated calibration frames"
        return {"target_psnr_db": self.target_db, "frames": self.frames, "window_starts": list(self.starts),
                "metric": f"psnr_db of the mean squared error over {over}, gated vs dense",
                "chosen_eps": self.chosen.eps, "chosen_psnr_db": self.chosen.psnr_db,
                "search": [vars(t) for t in self.trials], "video_search": [vars(t) for t in self.video_trials],
                "tolerance_db": TOLERANCE_DB}


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


def next_video_eps(video: list[Trial], windows: list[Trial], target: float) -> float:
    """Where the next whole-video trial goes. One video trial: the windows' PSNR curve (piecewise linear in
    log eps through their trials) shifted by the offset that trial measured, solved for the target. Two or
    more: a secant in log eps through the two nearest the target, kept inside the bracket of passing and
    failing trials when there is one (a bisection when the secant leaves it)."""
    if len(video) == 1:
        offset = video[0].psnr_db - _curve(windows, video[0].eps)
        return _solve(windows, target - offset)
    passing = [t.eps for t in video if t.psnr_db >= target]
    failing = [t.eps for t in video if t.psnr_db < target]
    lo, hi = (max(passing) if passing else EPS_LO), (min(failing) if failing else EPS_HI)
    a, b = sorted(video, key=lambda t: abs(t.psnr_db - target - TOLERANCE_DB / 2))[:2]
    slope = (b.psnr_db - a.psnr_db) / (math.log(b.eps) - math.log(a.eps)) if a.eps != b.eps else 0.0
    guess = math.exp(math.log(a.eps) + (target + TOLERANCE_DB / 2 - a.psnr_db) / slope) if slope < 0 else math.nan
    return guess if lo < guess < hi else math.sqrt(lo * hi)


def _curve(trials: list[Trial], eps: float) -> float:
    """The windows' PSNR at eps, linear in log eps between their trials (inf PSNRs capped for the line)."""
    xs, ys = _points(trials)
    return float(np.interp(math.log(eps), xs, ys))


def _solve(trials: list[Trial], psnr: float) -> float:
    """The largest eps at which the windows' curve still reaches `psnr` (aiming inside the tolerance)."""
    xs, ys = _points(trials)
    want = psnr + TOLERANCE_DB / 2
    above = np.flatnonzero(ys >= want)
    if not above.size:
        return EPS_LO
    i = above[-1]
    if i == len(xs) - 1:
        return EPS_HI
    # crossing between trial i (passes) and i + 1 (fails): linear in log eps
    x = xs[i] + (want - ys[i]) * (xs[i + 1] - xs[i]) / (ys[i + 1] - ys[i]) if ys[i + 1] < ys[i] else xs[i]
    return float(math.exp(x))


def _points(trials: list[Trial]) -> tuple[np.ndarray, np.ndarray]:
    ordered = sorted(trials, key=lambda t: t.eps)
    xs = np.log([t.eps for t in ordered])
    ys = np.array([t.psnr_db for t in ordered], float)
    finite = ys[np.isfinite(ys)]
    return xs, np.minimum(ys, (finite.max() if finite.size else 0.0) + 20.0)   # an error-free trial: high, not inf


def calibrate(options, loaded, target_db: float, frames: int) -> Calibration:
    """The two-stage search (module docstring) over options.video (TraceOptions, a LoadedModel)."""
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
    bar = tqdm(desc="--target-psnr search", unit="run", disable=not options.progress, dynamic_ncols=True)
    with tempfile.TemporaryDirectory(prefix="sparsesim-calibrate-") as tmp, bar:
        def run(eps: float, places: tuple[int, ...], count: int | None) -> Trial:
            psnr, active = [], []
            for at in places:
                trial = replace(options, gate=replace(options.gate, threshold=eps), start=at, frames=count,
                                quality_every=1, output=f"{tmp}/e{eps:.6g}-{at}-{count}", progress=False,
                                skip_complete=False, target_psnr=None, handle_signals=False)
                t = open_trace(trace_video(trial, loaded).path)
                gated = ~t.frames["reset"].to_numpy()
                psnr.append(t.frames["psnr_db"].to_numpy()[gated])
                active.append(t.active.to_numpy()[gated])
                bar.update()
            active_all = np.concatenate(active)
            found = Trial(eps, pooled_psnr(np.concatenate(psnr)),
                          float(active_all.mean()) if active_all.size else math.nan)
            bar.set_postfix_str(f"eps {eps:.4g}: {found.psnr_db:.2f} dB")
            return found

        chosen, trials = largest_passing(lambda eps: run(eps, starts, frames), target_db)
        if chosen is None:
            best = max(trials, key=lambda t: t.psnr_db)
            raise SparsesimError(f"no threshold reaches PSNR {target_db:g} dB on {_where(frames, starts)}: the "
                                 f"best was {best.psnr_db:.2f} dB at eps {best.eps:g}")
        whole = len(starts) == 1 and available and frames >= available
        videos = [] if whole else follow_video(lambda eps: run(eps, (options.start,), options.frames),
                                               chosen.eps, trials, target_db)
    if videos:
        passing = [t for t in videos if t.psnr_db >= target_db]
        chosen = max(passing, key=lambda t: t.eps) if passing else max(videos, key=lambda t: t.psnr_db)
    return Calibration(target_db, frames, chosen, tuple(trials), starts, tuple(videos))


def follow_video(evaluate: Callable[[float], Trial], eps: float, windows: list[Trial], target: float,
                 runs: int = VIDEO_TRIALS) -> list[Trial]:
    """Stage 2: whole-video trials from the windows' eps until one lands in [target, target + tolerance)."""
    videos = [evaluate(eps)]
    while len(videos) < runs and not target <= videos[-1].psnr_db < target + TOLERANCE_DB:
        eps = next_video_eps(videos, windows, target)
        if any(math.isclose(eps, t.eps, rel_tol=1e-3) for t in videos):
            break   # the search has nowhere new to go (eps at a bound of its range)
        videos.append(evaluate(eps))
    return videos
