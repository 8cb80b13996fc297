"""The tracer's allocator setting: taken once per process where glibc is the allocator, and harmless."""
from __future__ import annotations

import subprocess
import sys


def test_keep_freed_memory_is_taken_once_and_tracing_values_do_not_depend_on_it():
    code = ("import ctypes.util, torch; from sparsesim.trace.allocator import keep_freed_memory as k; "
            "a = k(); b = k(); x = torch.arange(10_000_000, dtype=torch.float64); "
            "print(a, b, k.cache_info().misses, float((x * 2 - x).sum()), ctypes.util.find_library('c'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    applied, again, misses, total = out[0] == "True", out[1] == "True", int(out[2]), float(out[3])
    assert applied == again and misses == 1 and total == sum(range(10_000_000))
    assert applied == (out[4] != "None" and sys.platform.startswith("linux"))   # glibc on Linux takes it
