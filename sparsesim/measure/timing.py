"""Timing harness: warm-up, median of many, p10/p90, rotating inputs; CUDA events on a GPU."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

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
    samples = []
    for i in range(repeat):
        call = calls[i % len(calls)]
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            call()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            call()
            samples.append(time.perf_counter() - t0)
    p10, median, p90 = np.percentile(samples, [10, 50, 90])
    return Timing(float(median), float(p10), float(p90), repeat)
