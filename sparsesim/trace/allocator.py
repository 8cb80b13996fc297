"""Keep freed memory in the process heap while tracing, instead of handing it back to the kernel.

glibc serves an allocation above its mmap threshold (at most 32 MiB by default) with a fresh mmap and unmaps
it on free, so every full-size activation a 1280x720 frame makes is page-faulted in anew: a 59 MB
subtraction measured 40 ms that way and 5 ms from a heap that keeps its pages (benchmarks/trace_passes_speed.py
has the whole-trace figures). Tracing makes many such temporaries per layer and frame; raising the mmap
threshold and the trim threshold keeps their pages mapped for reuse. The values computed are untouched; the
resident memory stays at its peak instead of shrinking between frames.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3   # glibc's mallopt parameter numbers (malloc.h)
_KEEP = 1 << 30                                # 1 GiB: above any activation tensor a trace makes


@functools.cache
def keep_freed_memory() -> bool:
    """Once per process: True where glibc took the setting (elsewhere the allocator is left as it is)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _KEEP)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _KEEP))
    except (OSError, AttributeError, TypeError):   # not glibc (musl, macOS): nothing to tune
        return False
