"""Timing harness: warm-up, median of many, p10/p90, rotating inputs, groups interleaved; CUDA events on a GPU."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Hashable, Mapping, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class Timing:
    median_s: float
    p10_s: float
    p90_s: float
    repeats: int


def time_calls(calls: Sequence[Callable[[], object]], device: str, warmup: int = 3, repeat: int = 20) -> Timing:
    """Time `calls` round-robin (each a different input set, so caches do not flatter the result)."""
    cuda = device.startswith("cuda")
    for i in range(warmup):
        calls[i % len(calls)]()
    if cuda:
        torch.cuda.synchronize()
    samples = [_one(calls[i % len(calls)], cuda) for i in range(repeat)]
    return _timing(samples)


def time_interleaved(groups: Mapping[Hashable, Sequence[Callable[[], object]]], device: str, warmup: int = 3,
                     repeat: int = 20) -> dict[Hashable, Timing]:
    """Time several groups of calls (a dense conv, each sparse step) interleaved: every repetition runs one
    call of each group, the starting group shifted by one each time. A slow spell of the machine (another
    job, a frequency step) then lands on all of them alike instead of on whichever ran during it, so
    differences between kernels and block sizes are not drift. Each group rotates its input sets."""
    cuda = device.startswith("cuda")
    keys = list(groups)
    for i in range(warmup):
        for key in keys:
            groups[key][i % len(groups[key])]()
    if cuda:
        torch.cuda.synchronize()
    samples: dict[Hashable, list[float]] = {key: [] for key in keys}
    for i in range(repeat):
        for j in range(len(keys)):
            key = keys[(i + j) % len(keys)]
            samples[key].append(_one(groups[key][i % len(groups[key])], cuda))
    return {key: _timing(s) for key, s in samples.items()}


def _one(call: Callable[[], object], cuda: bool) -> float:
    if cuda:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def _timing(samples: Sequence[float]) -> Timing:
    p10, median, p90 = np.percentile(samples, [10, 50, 90])
    return Timing(float(median), float(p10), float(p90), len(samples))
