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
    l3_src = np.ones(8 * 2**20 // 8)        # 8 MiB: out of the 1.25 MiB L2, inside the 48 MiB L3
    l3_dst = np.empty_like(l3_src)
    l3_copy = median_time(lambda: np.copyto(l3_dst, l3_src), 50)
    x_t = torch.rand(64, 96, 96)
    idx = torch.randint(0, 96 - 4, (2048, 1, 1))
    offs = torch.arange(4)
    rows, cols = (idx + offs[:, None]), (idx + offs[None, :])
    gather = median_time(lambda: x_t[:, rows, cols], 30)   # 4x4 tiles by advanced indexing
    x = torch.randn(1, 64, 96, 80)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).eval()
    with torch.inference_mode():
        t_conv = median_time(lambda: conv(x), 30)
        tiny = torch.ones(4)
        t_op = median_time(lambda: tiny.add(1.0), 2000)
        small, small_w = torch.rand(1, 8, 8, 8), torch.rand(8, 8, 3, 3)
        t_small_conv = median_time(lambda: torch.nn.functional.conv2d(small, small_w, padding=1), 500)
    flops = 2 * 64 * 64 * 9 * 96 * 80
    print(f"threads {args.threads}")
    print(f"memory copy bandwidth (read+write) {2 * src.nbytes / copy / 1e9:8.1f} GB/s")
    print(f"L3 copy bandwidth (read+write)     {2 * l3_src.nbytes / l3_copy / 1e9:8.1f} GB/s")
    print(f"indexed 4x4 tile gather (r+w)      {2 * 64 * 2048 * 16 * 4 / gather / 1e9:8.1f} GB/s")
    print(f"conv2d 64->64 3x3 @ 96x80          {flops / t_conv / 1e9:8.1f} GFLOP/s")
    print(f"torch op dispatch (tiny add)        {t_op * 1e6:8.1f} us")
    print(f"tiny conv2d call (8->8 3x3 @ 8x8)   {t_small_conv * 1e6:8.1f} us")


if __name__ == "__main__":
    main()
