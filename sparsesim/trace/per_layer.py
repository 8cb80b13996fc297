"""Per-layer thresholds (`sparsesim trace --target ... --per-layer`): multipliers on the epsilon the quality
target search found, raised where a layer's skipping costs little quality.

One epsilon (relative: a fraction of each layer's activation scale) is a fair start, but layers differ in
how much of their error reaches the output. After the global search (target.py) this greedy, bounded search
visits the layers in order of their dense MACs (largest first: they save most) and tries each at 2, 4, 8
times epsilon on the search's windows, keeping every raise whose windows still pass and stopping a layer at
its first failure; at most `runs` window runs (3 per layer by default). The windows must keep the target
with the margin the whole video had at the global epsilon: their score at that epsilon minus the video's
slack above the target (windows start dense and score better than the video; the offset is stage 2's).
Then one whole-video check as stage 2 does it: where the video misses the target, every multiplier is
scaled back (its logarithm halved) and checked again, within VIDEO_TRIALS runs; if none passes, the trace
keeps the global epsilon alone, which stage 2 verified.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable

from .target_metrics import QualityTarget

if TYPE_CHECKING:
    from .target import Runner, Trial

FACTORS = (2.0, 4.0, 8.0)     # multipliers tried on each layer, in order
RUNS_PER_LAYER = len(FACTORS)   # the default cap on window runs: this many per layer
VIDEO_CHECKS = 4                # whole-video runs at most (stage 2's budget)


@dataclass(frozen=True)
class Step:
    """One run of the search: the multipliers tried and what the run scored."""
    multipliers: dict[str, float]
    trial: "Trial"
    passed: bool
    layer: str = ""           # the layer raised (window runs; '' for a whole-video check)

    def record(self) -> dict:
        return {**({"layer": self.layer} if self.layer else {}), "multipliers": self.multipliers,
                **{k: v for k, v in vars(self.trial).items() if k != "eps"}, "passed": self.passed}


@dataclass(frozen=True)
class PerLayerSearch:
    multipliers: dict[str, float]      # what the trace runs at ({} = the global epsilon alone)
    order: tuple[str, ...]             # layers in the order visited (dense MACs, largest first)
    window_goal: float                 # the metric's value the windows had to keep
    baseline: "Trial | None"           # the windows at the global epsilon (None: skipped)
    steps: tuple[Step, ...]            # window runs
    video: tuple[Step, ...]            # whole-video checks
    runs_cap: int
    traces: int                        # traces run by this search (a window run is one per window)
    final: "Trial | None" = None       # the run at the chosen multipliers (video, or windows that are it)
    start: "Trial | None" = None       # the global result on the same frames (multipliers all 1)
    note: str = ""                     # why nothing was searched, or why the global epsilon was kept

    def record(self) -> dict:
        final = {f"chosen_{k}": v for k, v in vars(self.final).items() if k != "eps"} if self.final else {}
        return {**final, "global": vars(self.start) if self.start else None, "order": list(self.order),
                "window_goal": self.window_goal, "runs_cap": self.runs_cap,
                "window_runs": len(self.steps), "video_runs": len(self.video), "traces": self.traces,
                "baseline": vars(self.baseline) if self.baseline else None,
                "search": [s.record() for s in self.steps], "video_search": [s.record() for s in self.video],
                **({"note": self.note} if self.note else {})}


def raise_layers(evaluate: Callable[[dict[str, float]], "Trial"], order: list[str],
                 passes: Callable[["Trial"], bool], runs: int,
                 factors: tuple[float, ...] = FACTORS) -> tuple[dict[str, float], list[Step]]:
    """The greedy search: each layer in `order` tried at each factor in turn (on top of the raises already
    kept), kept while it passes, left at its last passing factor at its first failure; at most `runs` runs."""
    multipliers: dict[str, float] = {}
    steps: list[Step] = []
    for layer in order:
        for factor in factors:
            if len(steps) >= runs:
                return multipliers, steps
            trying = {**multipliers, layer: factor}
            trial = evaluate(trying)
            steps.append(Step(trying, trial, passes(trial), layer))
            if not steps[-1].passed:
                break
            multipliers = trying
    return multipliers, steps


def settle_on_video(evaluate: Callable[[dict[str, float]], "Trial"], multipliers: dict[str, float],
                    passes: Callable[["Trial"], bool], runs: int = VIDEO_CHECKS) -> tuple[dict[str, float], list[Step]]:
    """Whole-video checks of the windows' multipliers: each miss takes every multiplier's square root (its
    log halved, so the layers keep their order) and tries again; {} (the global epsilon) when runs run out."""
    checks: list[Step] = []
    while multipliers and len(checks) < runs:
        trial = evaluate(multipliers)
        checks.append(Step(multipliers, trial, passes(trial)))
        if checks[-1].passed:
            return multipliers, checks
        multipliers = {layer: math.sqrt(m) for layer, m in multipliers.items()}
    return {}, checks


def search_multipliers(runner: "Runner", goal: QualityTarget, chosen: "Trial", window_trial: "Trial | None",
                       starts: tuple[int, ...], frames: int, video_checked: bool,
                       runs: int | None = None) -> PerLayerSearch:
    """The search of the module docstring. `chosen`: the global result (a whole-video trial where stage 2
    ran, `video_checked`; else the windows' trial, `window_trial`, the windows being the video)."""
    from tqdm import tqdm
    metric, target, options = goal.metric, goal.value, runner.options
    order = sorted(runner.layers, key=lambda name: -runner.layers[name])   # stable: trace order among equals
    cap = runs if runs is not None else RUNS_PER_LAYER * len(order)
    if video_checked and not metric.passes(chosen.value, target):
        return PerLayerSearch({}, tuple(order), target, None, (), (), cap, 0, chosen, chosen,
                              "the global epsilon missed the target on the whole video: nothing to raise")
    base = replace(options.gate, threshold=chosen.eps)
    on_windows = lambda m: runner.gate(base.with_multipliers(m), starts, frames)  # noqa: E731
    on_video = lambda m: runner.gate(base.with_multipliers(m), (options.start,), options.frames)  # noqa: E731
    traces_before, bar_before = runner.traces, runner.bar
    runner.bar = tqdm(total=(cap + video_checked) * len(starts) + VIDEO_CHECKS * video_checked, unit="trace",
                      desc="--per-layer search", disable=not options.progress, dynamic_ncols=True)
    try:
        with runner.bar:
            baseline = on_windows({}) if video_checked else window_trial
            # the windows may lose what the video had above the target at the global epsilon, no more
            slack = metric.score(chosen.value) - metric.score(target)   # chosen: the video (or the windows, = it)
            need = metric.score(baseline.value) - slack
            window_goal = need if metric.higher_is_better else -need
            passes_windows = lambda t: metric.score(t.value) >= need  # noqa: E731
            multipliers, steps = raise_layers(on_windows, order, passes_windows, cap)
            video: list[Step] = []
            if video_checked and multipliers:
                multipliers, video = settle_on_video(on_video, multipliers, lambda t: metric.passes(t.value, target))
    finally:
        runner.bar = bar_before
    note = "no whole-video check kept the target: the global epsilon alone" if video and not multipliers else ""
    kept = [s.trial for s in (video or steps) if s.passed and s.multipliers == multipliers]
    return PerLayerSearch(multipliers, tuple(order), window_goal, baseline, tuple(steps), tuple(video), cap,
                          runner.traces - traces_before, kept[-1] if kept else chosen, chosen, note)
