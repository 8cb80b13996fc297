"""Quality targets: the largest gate threshold that keeps a quality target over the whole video.

`sparsesim trace --target METRIC=VALUE` (`--target-psnr DB` is `--target psnr=DB`; the metrics and how
each pools its frames are in target_metrics.py) searches in two stages, each trial a run of the same tracer
(with the metric's ground-truth protocol, where it has one) into a temporary directory, and then traces the
video at the threshold found; meta.json records both (`calibration`):
1. windows: short windows at the start, middle and end of the video, traced at trial thresholds; epsilon is
   bisected on a log scale between EPS_LO and EPS_HI for the largest one whose metric, pooled over the
   windows' gated frames, passes the target. Cheap, but a window starts from a dense frame and the gated
   error grows for ten or more frames before it levels off (P-Net on bigbuckbunny: 42 dB on the first gated
   frame, 32 dB from the twelfth on at one epsilon), so a window scores better than the video.
2. the whole video: traced at the windows' epsilon, then at epsilons moved by the gap left (the windows'
   curve shifted by the offset measured, then secants through the whole-video trials), until the video's
   figure lies within the metric's tolerance on the passing side of the target (PSNR: [target, target +
   0.5 dB)) or VIDEO_TRIALS runs are spent; the largest passing epsilon is kept. Skipped where one window
   already is the whole video.
The search works on the metric's score (its value, negated where lower is better), so "passes" is always
"scores at least the target's score". It assumes the score falls as epsilon grows (true of the gates up to
noise); it keeps the largest passing epsilon it saw.
"""
from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..errors import SparsesimError, require
from .gate_config import THRESHOLDED_KINDS, GateConfig
from .per_layer import PerLayerSearch, search_multipliers
from .target_metrics import METRICS, Metric, QualityTarget, pooled_psnr  # noqa: F401  (pooled_psnr: its old home)

EPS_LO, EPS_HI = 1e-4, 2.0
WINDOWS = 3             # places in the video the search traces: its start, middle and end
BISECTIONS = 8          # (EPS_HI / EPS_LO) ** (1 / 2**8): epsilon found within 4 % of the boundary
VIDEO_TRIALS = 4        # whole-video runs at most (each costs a trace of the video with a dense pass per step)
PSNR = METRICS["psnr"]


@dataclass(frozen=True)
class Trial:
    eps: float
    value: float            # the metric's figure over the run's gated frames
    active_mean: float      # mean over the gated frames of the mean active fraction over layers
    active_macs: float = math.nan   # the same weighted by each layer's dense MACs (the work left)


@dataclass(frozen=True)
class Calibration:
    goal: QualityTarget
    frames: int
    chosen: Trial
    trials: tuple[Trial, ...]          # stage 1, on the windows
    starts: tuple[int, ...] = (0,)   # first decoded frame of each traced window
    video_trials: tuple[Trial, ...] = ()   # stage 2, on the whole video (none where a window was the video)
    per_layer: "PerLayerSearch | None" = None   # --per-layer: multipliers on chosen.eps (per_layer.py)

    def apply(self, gate: GateConfig) -> GateConfig:
        """The gate the trace runs at: the chosen epsilon, times the per-layer multipliers where searched."""
        gate = replace(gate, threshold=self.chosen.eps)
        return gate.with_multipliers(self.per_layer.multipliers) if self.per_layer else gate

    def record(self) -> dict:
        metric = self.goal.metric
        over = "the whole video's gated frames" if self.video_trials else "the gated calibration frames"
        return {"metric": metric.name, "target": self.goal.value, "unit": metric.unit.strip(),
                "higher_is_better": metric.higher_is_better, "columns": list(metric.columns),
                "ground_truth": " or ".join(metric.tasks), "pooled": metric.pooled.format(frames=over),
                "tolerance": metric.tolerance, "frames": self.frames, "window_starts": list(self.starts),
                "chosen_eps": self.chosen.eps, "chosen_value": self.chosen.value,
                "search": [vars(t) for t in self.trials], "video_search": [vars(t) for t in self.video_trials],
                **({"per_layer": self.per_layer.multipliers, "per_layer_search": self.per_layer.record()}
                   if self.per_layer else {})}


def largest_passing(evaluate: Callable[[float], Trial], target: float, lo: float = EPS_LO, hi: float = EPS_HI,
                    steps: int = BISECTIONS, metric: Metric = PSNR) -> tuple[Trial | None, list[Trial]]:
    """Bisect log(eps) in [lo, hi] for the largest eps whose trial passes `target`; (None, trials) when
    not even `lo` does."""
    passes = lambda t: metric.passes(t.value, target)  # noqa: E731
    trials = [evaluate(hi)]
    if passes(trials[-1]):
        return trials[-1], trials
    trials.append(evaluate(lo))
    if not passes(trials[-1]):
        return None, trials
    good, bad = lo, hi
    for _ in range(steps):
        mid = math.sqrt(good * bad)
        trials.append(evaluate(mid))
        good, bad = (mid, bad) if passes(trials[-1]) else (good, mid)
    return max(filter(passes, trials), key=lambda t: t.eps), trials


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


def next_video_eps(video: list[Trial], windows: list[Trial], target: float, metric: Metric = PSNR) -> float:
    """Where the next whole-video trial goes. One video trial: the windows' score curve (piecewise linear in
    log eps through their trials) shifted by the offset that trial measured, solved for the target. Two or
    more: a secant in log eps through the two nearest the middle of the band, kept inside the bracket of
    passing and failing trials when there is one (a bisection when the secant leaves it)."""
    goal = metric.score(target)
    aim = goal + metric.tolerance / 2
    if len(video) == 1:
        offset = metric.score(video[0].value) - _curve(windows, video[0].eps, metric)
        return _solve(windows, goal - offset, metric)
    passing = [t.eps for t in video if metric.passes(t.value, target)]
    failing = [t.eps for t in video if not metric.passes(t.value, target)]
    lo, hi = (max(passing) if passing else EPS_LO), (min(failing) if failing else EPS_HI)
    a, b = sorted(video, key=lambda t: abs(metric.score(t.value) - aim))[:2]
    sa, sb = metric.score(a.value), metric.score(b.value)
    slope = (sb - sa) / (math.log(b.eps) - math.log(a.eps)) if a.eps != b.eps else 0.0
    guess = math.exp(math.log(a.eps) + (aim - sa) / slope) if slope < 0 else math.nan
    return guess if lo < guess < hi else math.sqrt(lo * hi)


def _curve(trials: list[Trial], eps: float, metric: Metric) -> float:
    """The windows' score at eps, linear in log eps between their trials (infinite scores capped for the line)."""
    xs, ys = _points(trials, metric)
    return float(np.interp(math.log(eps), xs, ys))


def _solve(trials: list[Trial], score: float, metric: Metric) -> float:
    """The largest eps at which the windows' curve still reaches `score` (aiming inside the tolerance)."""
    xs, ys = _points(trials, metric)
    want = score + metric.tolerance / 2
    above = np.flatnonzero(ys >= want)
    if not above.size:
        return EPS_LO
    i = above[-1]
    if i == len(xs) - 1:
        return EPS_HI
    # crossing between trial i (passes) and i + 1 (fails): linear in log eps
    x = xs[i] + (want - ys[i]) * (xs[i + 1] - xs[i]) / (ys[i + 1] - ys[i]) if ys[i + 1] < ys[i] else xs[i]
    return float(math.exp(x))


def _points(trials: list[Trial], metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    ordered = sorted(trials, key=lambda t: t.eps)
    xs = np.log([t.eps for t in ordered])
    ys = np.array([metric.score(t.value) for t in ordered], float)
    finite = ys[np.isfinite(ys)]
    # an error-free trial (PSNR inf) is high, not inf: 40 tolerances (20 dB) above the best finite one
    margin = 40 * metric.tolerance
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    return xs, np.clip(ys, low - margin, high + margin)


class Runner:
    """Trials of the search: the tracer run at a gate over windows of the video into a temporary directory,
    scored by the metric over the gated frames of all the windows together. Counts the traces it ran."""

    def __init__(self, options, loaded, metric: Metric, tmp: str, bar) -> None:
        self.options, self.loaded, self.metric, self.tmp, self.bar = options, loaded, metric, tmp, bar
        self.traces = 0
        self.layers: dict[str, int] = {}    # layer name -> dense MACs, trace order (from the first trial)

    def eps(self, eps: float, places: tuple[int, ...], count: int | None) -> Trial:
        return self.gate(replace(self.options.gate, threshold=eps), places, count)

    def gate(self, gate: GateConfig, places: tuple[int, ...], count: int | None) -> Trial:
        from .tracer import trace_video
        from .format import open as open_trace
        gated_rows, active, weighted = [], [], []
        for at in places:
            self.traces += 1
            out = f"{self.tmp}/run{self.traces}"
            trial = replace(self.options, gate=gate, start=at, frames=count, quality_every=1, output=out,
                            progress=False, skip_complete=False, target_psnr=None, target=None,
                            per_layer=False, handle_signals=False)
            t = open_trace(trace_video(trial, self.loaded).path)
            gated = ~t.frames["reset"].to_numpy()
            self.layers = self.layers or {layer.name: layer.dense_macs for layer in t.layers}
            per_layer = t.active[list(self.layers)].to_numpy()[gated]
            gated_rows.append(t.frames[gated])
            active.append(t.frames["active_mean"].to_numpy()[gated])
            weighted.append(per_layer @ np.array(list(self.layers.values()), float) / sum(self.layers.values()))
            shutil.rmtree(out)   # read: a long search would otherwise fill the disk with trials
            self.bar.update()
        active_all, weighted_all = np.concatenate(active), np.concatenate(weighted)
        found = Trial(gate.threshold, self.metric.value(pd.concat(gated_rows, ignore_index=True)),
                      float(active_all.mean()) if active_all.size else math.nan,
                      float(weighted_all.mean()) if weighted_all.size else math.nan)
        self.bar.set_postfix_str(f"eps {gate.threshold:.4g}: {self.metric.show(found.value)}")
        return found


def calibrate(options, loaded, goal: QualityTarget, frames: int) -> Calibration:
    """The two-stage search (module docstring) over options.video (TraceOptions, a LoadedModel), then the
    per-layer multipliers where options.per_layer asks for them (per_layer.py); `options` already asks for
    the metric's ground-truth protocol where it needs one (tracer.trace_video)."""
    from . import video
    metric, target = goal.metric, goal.value
    flag = "target_psnr" if options.target_psnr is not None else "target"   # the flag the user typed
    require(options.gate.kind in THRESHOLDED_KINDS, (flag, "gate.kind"),
            f"{{{flag}}} searches a threshold: it needs a thresholded gate ({', '.join(THRESHOLDED_KINDS)}), "
            f"not {options.gate.kind}")
    info = video.probe(video.resolve_video(options.video))
    available = max(info.frame_count - options.start, 0)
    if options.frames is not None:
        available = min(available, options.frames) if available else options.frames
    starts = window_starts(options.start, frames, available)
    bar = tqdm(desc=f"--target {metric.name} search", unit="run", disable=not options.progress, dynamic_ncols=True)
    with tempfile.TemporaryDirectory(prefix="sparsesim-calibrate-") as tmp:
        runner = Runner(options, loaded, metric, tmp, bar)
        with bar:
            chosen, trials = largest_passing(lambda eps: runner.eps(eps, starts, frames), target, metric=metric)
            if chosen is None:
                best = max(trials, key=lambda t: metric.score(t.value))
                raise SparsesimError(f"no threshold reaches {metric.label} {target:g}{metric.unit} on "
                                     f"{_where(frames, starts)}: the best was {metric.show(best.value)} "
                                     f"at eps {best.eps:g}")
            whole = len(starts) == 1 and available and frames >= available
            videos = [] if whole else follow_video(lambda eps: runner.eps(eps, (options.start,), options.frames),
                                                   chosen.eps, trials, target, metric=metric)
        window_chosen = chosen
        if videos:
            passing = [t for t in videos if metric.passes(t.value, target)]
            chosen = (max(passing, key=lambda t: t.eps) if passing else
                      max(videos, key=lambda t: metric.score(t.value)))
        layers = None
        if options.per_layer:
            layers = search_multipliers(runner, goal, chosen, window_chosen if whole else None, starts, frames,
                                        bool(videos), options.per_layer_runs)
    return Calibration(goal, frames, chosen, tuple(trials), starts, tuple(videos), layers)


def in_band(value: float, target: float, metric: Metric) -> bool:
    """A hit: passing the target by less than the metric's tolerance."""
    margin = metric.score(value) - metric.score(target)
    return 0 <= margin < metric.tolerance


def follow_video(evaluate: Callable[[float], Trial], eps: float, windows: list[Trial], target: float,
                 runs: int = VIDEO_TRIALS, metric: Metric = PSNR) -> list[Trial]:
    """Stage 2: whole-video trials from the windows' eps until one lands in the metric's band."""
    videos = [evaluate(eps)]
    while len(videos) < runs and not in_band(videos[-1].value, target, metric):
        eps = next_video_eps(videos, windows, target, metric)
        if any(math.isclose(eps, t.eps, rel_tol=1e-3) for t in videos):
            break   # the search has nowhere new to go (eps at a bound of its range)
        videos.append(evaluate(eps))
    return videos
