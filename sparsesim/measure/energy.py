"""Energy beside time on an NVIDIA GPU: NVML's total-energy counter over a timed loop of one kernel.

The counter (`nvmlDeviceGetTotalEnergyConsumption`, millijoules since the driver loaded) updates in
steps, not continuously, so every window starts and ends on a step: `_edge` spins until the counter
moves and notes the time. The idle power is the same counter over a window with the GPU idle. A loop of
n calls that lasted `loop_s` inside a window of `window_s` (the loop plus the wait for the closing step)
that took E joules splits per call as
    static_j  = idle_w * loop_s / n                      (what the board draws anyway while the call runs)
    dynamic_j = (E - idle_w * window_s) / n              (what running the call added)
    energy_j  = static_j + dynamic_j
so a kernel slower than dense pays static energy for its extra time. The idle power is read with the
GPU idle (its clocks falling from the work before, not at a kernel's clocks): the split is an estimate,
the per-call total `energy_j` is what was measured.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from ..errors import SparsesimError

EDGE_TIMEOUT_S = 2.0    # a counter that has not moved in this long is not updating


@dataclass(frozen=True)
class EnergySplit:
    energy_j: float       # per call
    static_j: float
    dynamic_j: float
    power_w: float        # mean board power over the window
    idle_w: float
    energy_loop_s: float  # the loop's duration
    energy_calls: int


def split(window_j: float, window_s: float, loop_s: float, calls: int, idle_w: float) -> EnergySplit:
    """The per-call static/dynamic split of `window_j` joules over `window_s` seconds, `calls` of which
    ran in the first `loop_s` seconds (see the module's docstring)."""
    static = idle_w * loop_s / calls
    dynamic = (window_j - idle_w * window_s) / calls
    return EnergySplit(static + dynamic, static, dynamic, window_j / window_s, idle_w, loop_s, calls)


class Meter:
    """NVML's energy counter of one CUDA device (`pynvml`, from the `nvidia-ml-py` package)."""

    def __init__(self, device: str, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.clock, self.sleep = clock, sleep
        try:
            import pynvml
        except ImportError:
            raise SparsesimError("energy needs NVML's Python bindings: pip install nvidia-ml-py") from None
        self.nvml = pynvml
        try:
            pynvml.nvmlInit()
            index = int(device.split(":")[1]) if ":" in device else 0
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self.read()
        except pynvml.NVMLError as e:
            raise SparsesimError(f"NVML cannot read the energy counter of {device}: {e}") from None

    def read(self) -> float:
        """Joules since the driver loaded."""
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1e3

    def driver(self) -> str:
        return str(self.nvml.nvmlSystemGetDriverVersion())

    def _edge(self) -> tuple[float, float]:
        """(joules, time) just after the counter's next step."""
        start, t0 = self.read(), self.clock()
        while True:
            now, t = self.read(), self.clock()
            if now != start:
                return now, t
            if t - t0 > EDGE_TIMEOUT_S:
                raise SparsesimError(f"NVML's energy counter did not move in {EDGE_TIMEOUT_S:.0f} s")

    def idle_power(self, seconds: float) -> float:
        """Watts drawn with the GPU idle, over about `seconds`."""
        e0, t0 = self._edge()
        self.sleep(seconds)
        e1, t1 = self._edge()
        return (e1 - e0) / (t1 - t0)

    def loop(self, calls: Sequence[Callable[[], object]], sync: Callable[[], None], per_call_s: float,
             min_s: float, idle_w: float) -> EnergySplit:
        """Run `calls` round-robin back to back for at least `min_s` (the count from `per_call_s`)."""
        n = max(len(calls), math.ceil(min_s / max(per_call_s, 1e-7)))
        sync()
        e0, t0 = self._edge()
        for i in range(n):
            calls[i % len(calls)]()
        sync()
        loop_end = self.clock()
        e1, t1 = self._edge()
        return split(e1 - e0, t1 - t0, loop_end - t0, n, idle_w)
