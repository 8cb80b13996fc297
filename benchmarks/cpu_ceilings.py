"""This machine's ceilings for accel_models/cpu.yaml: memory bandwidth, sustained conv rate, op overhead.

Usage: python benchmarks/cpu_ceilings.py [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def median_time(fn, repeat: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    src = np.ones(64 * 2**20 // 8)          # 64 MiB, larger than the 48 MiB L3
    dst = np.empty_like(src)
    copy = median_time(lambda: np.copyto(dst, src), 15)
    x = torch.randn(1, 64, 96, 80)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
    with torch.inference_mode():
        t_conv = median_time(lambda: conv(x), 30)
        tiny = torch.ones(4)
        t_op = median_time(lambda: tiny.add(1.0), 2000)
    flops = 2 * 64 * 64 * 9 * 96 * 80
    print(f"threads {args.threads}")
    print(f"memory copy bandwidth (read+write) {2 * src.nbytes / copy / 1e9:8.1f} GB/s")
    print(f"conv2d 64->64 3x3 @ 96x80          {flops / t_conv / 1e9:8.1f} GFLOP/s")
    print(f"torch op dispatch (tiny add)        {t_op * 1e6:8.1f} us")


if __name__ == "__main__":
    main()
