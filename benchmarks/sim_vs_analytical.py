"""Analytical vs simulated latency on the sample trace, per hardware at its best block size (the one
the analytical model picks), with the stalls by cause, the weight-load time the arrays that prefetch
the next layer's weights hid behind the layer before (`prefetched_ms`), and the time the simulation
took. Writes benchmarks/results/sim_vs_analytical.csv (committed).

Usage: python benchmarks/sim_vs_analytical.py [--trace traces/carphone_pristine-rife-input-norm-e0.01]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd

from sparsesim.cost.run import EstimateOptions, run_estimate
from sparsesim.sim import SimulateOptions, run_simulate

HW = ["h100", "a100", "orin", "eyeriss", "tpu-v1", "gemmini"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default="traces/carphone_pristine-rife-input-norm-e0.01")
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--hw", default=",".join(HW))
    ap.add_argument("-o", "--output", default=str(Path(__file__).resolve().parent / "results" / "sim_vs_analytical.csv"))
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
                     "prefetched_ms": 1e3 * sim.rows["sim_prefetched_s"].sum() if "sim_prefetched_s" in sim.rows else 0.0,
                     "gap_ms": 1e3 * gap_s, "sim_wall_s": seconds})
    pd.set_option("display.width", 250)
    pd.set_option("display.max_colwidth", 120)
    table = pd.DataFrame(rows)
    print(table.round(3).to_string(index=False))
    table.round(4).to_csv(args.output, index=False)
    print(f"load average {os.getloadavg()[0]:.1f}; wrote {args.output}")


if __name__ == "__main__":
    main()
