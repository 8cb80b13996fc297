"""Analytical vs simulated latency on the sample trace, per hardware at its best block size (the one
the analytical model picks), with the stall cause that explains most of the gap, and the time the
simulation took.

Usage: python benchmarks/sim_vs_analytical.py [--trace traces/carphone_pristine-rife-input-norm-e0.01]
"""
from __future__ import annotations

import argparse
import time

import pandas as pd

from sparsesim.cost.run import EstimateOptions, run_estimate
from sparsesim.sim import SimulateOptions, run_simulate

HW = ["h100", "a100", "orin", "eyeriss", "tpu-v1", "gemmini"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="traces/carphone_pristine-rife-input-norm-e0.01")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--hw", default=",".join(HW))
    args = ap.parse_args()
    hws = args.hw.split(",")
    est = run_estimate(EstimateOptions(trace=args.trace, hardware=hws, blocks=[1, 2, 4, 8, 16, 32],
                                       frames=args.frames)).estimate.summary
    rows = []
    for hw in hws:
        best = est[est["hw"] == hw].sort_values("latency_s").iloc[0]
        t0 = time.perf_counter()
        sim = run_simulate(SimulateOptions(trace=args.trace, hardware=[hw], block=int(best["block"]),
                                           frames=args.frames))
        seconds = time.perf_counter() - t0
        s = sim.summary.iloc[0]
        stalls = {c[len("stall_"):-2]: s[c] for c in sim.summary.columns if c.startswith("stall_") and s[c] > 0}
        gap_s = s["sim_s"] - s["analytical_s"]
        rows.append({"hw": hw, "best_block": int(best["block"]), "analytical_ms": 1e3 * s["analytical_s"],
                     "simulated_ms": 1e3 * s["sim_s"], "gap_%": 100 * s["gap"],
                     "analytical_speedup": s["analytical_speedup"], "simulated_speedup": s["sim_speedup"],
                     "stalls_ms": ", ".join(f"{k} {1e3 * v:.3g}" for k, v in sorted(stalls.items(), key=lambda kv: -kv[1])),
                     "gap_ms": 1e3 * gap_s, "sim_wall_s": seconds})
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 120)
    print(pd.DataFrame(rows).round(3).to_string(index=False))


if __name__ == "__main__":
    main()
