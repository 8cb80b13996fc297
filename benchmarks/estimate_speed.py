"""Speed of the cost model: a 100-frame RIFE trace, 6 hardware x 6 block sizes (target: under 10 s).

Times the whole `sparsesim estimate` path in-process (trace read, block occupancy, cost model, tables)
after imports, best of --repeat runs.
Usage: python benchmarks/estimate_speed.py [--trace traces/carphone_pristine-rife-input-norm-e0.01]
"""
from __future__ import annotations

import argparse
import time

from sparsesim.cost.run import EstimateOptions, run_estimate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", default="traces/carphone_pristine-rife-input-norm-e0.01")
    parser.add_argument("--hw", default="h100,a100,orin,cpu,eyeriss,tpu-v1")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    options = EstimateOptions(trace=args.trace, hardware=args.hw.split(","), blocks=[1, 2, 4, 8, 16, 32],
                              frames=args.frames)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = run_estimate(options)
        times.append(time.perf_counter() - start)
    rows = len(result.estimate.rows)
    print(f"{args.trace}: {args.frames} frames x {len(options.hardware)} hw x 6 blocks = {rows} rows; "
          f"best of {args.repeat}: {min(times):.2f} s ({rows / min(times):,.0f} rows/s)")


if __name__ == "__main__":
    main()
