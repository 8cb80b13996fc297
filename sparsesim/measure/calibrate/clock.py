"""Clocks: how long one call of a probe took. `WallClock` (a CPU: perf_counter_ns around the call, torch's
threads pinned by the caller), `CudaClock` (CUDA events around the call, so the GPU's own time), and
`ScriptedClock` (tests: the time a given machine would take, from the probe's work; the call still runs,
on a fake device a no-op). `sample` turns a clock into a median and p10/p90 over repeats sized to a time
budget per probe.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol

import numpy as np

from .probes import Conv, Copy, Indexed, Overhead, Probe

Call = Callable[[], object]


class Clock(Protocol):
    name: str

    def time(self, probe: Probe, call: Call) -> float:
        """Seconds one call of `call` (which runs `probe`) took."""
        ...


class WallClock:
    name = "wall clock (time.perf_counter_ns)"

    def time(self, probe: Probe, call: Call) -> float:
        getattr(call, "before", lambda: None)()   # untimed preparation (kernels.TorchKernels.evict)
        start = time.perf_counter_ns()
        call()
        return (time.perf_counter_ns() - start) * 1e-9


class CudaClock:
    """CUDA events recorded around the call on the current stream; `events` makes one (torch.cuda.Event
    with timing on a GPU; a fake in tests)."""
    name = "CUDA events"

    def __init__(self, events: Callable[[], object]) -> None:
        self.events = events

    def time(self, probe: Probe, call: Call) -> float:
        start, end = self.events(), self.events()
        start.record()
        call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) * 1e-3      # elapsed_time is in milliseconds


@dataclass(frozen=True)
class Truth:
    """A machine with known figures: what each probe costs on it (for `ScriptedClock`)."""
    copy_gbps: Mapping[str, float]
    gather_gbps: float
    scatter_gbps: float
    copy_call_s: float
    conv_call_s: float
    launch_s: float
    peak_gflops: float
    efficiency: Callable[[Conv], float]      # fraction of the peak a conv's GEMM reaches
    step_s: float = 0.0                      # one gather-scatter step of a tiny layer
    mask_gbps: float = 1.0                   # the mask step (reduction), per billed byte
    by_block: Callable[[int], float] = lambda block: 1.0   # the indexed passes' rate at block B, relative to B=8

    def seconds(self, probe: Probe) -> float:
        return _COSTS[type(probe)](self, probe)


_COSTS: dict[type, Callable[[Truth, Probe], float]] = {
    Copy: lambda t, p: t.copy_call_s + p.moved / (t.copy_gbps[p.level] * 1e9),
    Indexed: lambda t, p: t.copy_call_s + p.moved / ({"gather": t.gather_gbps, "scatter": t.scatter_gbps,
                                                      "reduce": t.mask_gbps}[p.op] * t.by_block(p.block) * 1e9),
    Overhead: lambda t, p: {"copy": t.copy_call_s, "conv": t.conv_call_s, "launch": t.launch_s * p.ops,
                            "step": t.step_s * p.ops}[p.op],
    Conv: lambda t, p: t.conv_call_s + p.flops / (t.peak_gflops * 1e9 * t.efficiency(p)),
}


@dataclass
class ScriptedClock:
    """Times from `truth`, with multiplicative noise of relative size `jitter` (seeded: deterministic)."""
    truth: Truth
    jitter: float = 0.0
    seed: int = 0
    name: str = "scripted clock"
    calls: int = 0
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def time(self, probe: Probe, call: Call) -> float:
        call()
        self.calls += 1
        return self.truth.seconds(probe) * (1.0 + self.jitter * float(self._rng.uniform(-1, 1)))


@dataclass(frozen=True)
class Budget:
    """Per probe: `warmup` untimed calls, then repeats sized so that a probe takes about `target_s`,
    between `min_repeat` and `max_repeat`."""
    target_s: float = 0.25
    min_repeat: int = 5
    max_repeat: int = 200
    warmup: int = 2


QUICK = Budget(target_s=0.004, min_repeat=3, max_repeat=20, warmup=1)


@dataclass(frozen=True)
class Samples:
    median_s: float
    p10_s: float
    p90_s: float
    repeats: int


def sample(probe: Probe, call: Call, clock: Clock, budget: Budget) -> Samples:
    for _ in range(budget.warmup):
        call()
    first = clock.time(probe, call)
    repeats = min(max(math.ceil(budget.target_s / max(first, 1e-9)), budget.min_repeat), budget.max_repeat)
    times = [first, *(clock.time(probe, call) for _ in range(repeats - 1))]
    p10, median, p90 = np.percentile(times, [10, 50, 90])
    return Samples(float(median), float(p10), float(p90), repeats)
