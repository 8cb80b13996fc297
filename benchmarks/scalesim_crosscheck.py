"""sparsesim's systolic simulator beside SCALE-Sim 3.0.0 on dense conv layers: ResNet-18's convs at
224 x 224 and a 3x3 64->64 layer at 128 x 128, on 32x32 and 128x128 arrays, weight- and
output-stationary, with a 10 word/cycle DRAM (SCALE-Sim's USER bandwidth mode) and without a limit
(CALC mode), input-stationary on four layers (two 1x1 with no shared input words, two 3x3 with
USER bandwidth), plus SCALE-Sim's 2:4 weight-sparse mode on three layers.

SCALE-Sim needs numpy<2, so it runs in its own venv (made on first use at benchmarks/.venv-scalesim,
or --scalesim-python) through benchmarks/scalesim/run_one.py. Its results are cached as JSON under
benchmarks/results/scalesim-3.0.0/ (committed: they are the reference the tests read); --rerun runs it
again. The table compares every cached run; the inputs are the files in benchmarks/scalesim/.

How they agree (SCALE-Sim's operand_matrix, systolic_compute_*, read_buffer, write_buffer and
double_buffered_scratchpad modules, replayed event by event):
- Compute cycles and SRAM reads and writes follow SCALE-Sim's fold arithmetic (its "total cycles" is
  the last cycle's index, one less than the count; output-stationary SRAM writes include the R + C
  that systolic_compute_os adds per fold, DRAM writes do not).
- DRAM reads: each read buffer holds sets of its prefetch stream's addresses and serves a word from
  any copy of it (an im2col stream holds an input word once per window that reads it); a miss slides
  the window by the prefetch half around the stream, one transfer of ceil(half / bandwidth) lines.
- Stalls: prefetches run back to back whatever the buffer holds, each landing one transfer and a
  cycle after the last; a waiting line's offset grows by the wait twice (read_buffer.service_reads
  adds a positive potential stall twice; kept, since that is what SCALE-Sim reports); the output
  buffer drains a half's worth of lines once more than its active half holds and no drain runs, and
  stalls the array only when full while draining; a line's stall is the largest of the three.
- CALC mode: only compute cycles and SRAM counts are comparable; SCALE-Sim's bandwidth-estimating
  buffers count DRAM reads in their own way (sparsesim counts distinct words).
Speed: sparsesim's CPU time per layer (best of 5, in this process) against SCALE-Sim's wall time per
layer (its own run, cached); the machine's load at the time is printed with the figures.

Usage: python benchmarks/scalesim_crosscheck.py [--run] [--rerun] [--timeout 900] [--only NAME]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from sparsesim.interop import scalesim

HERE = Path(__file__).resolve().parent
INPUTS = HERE / "scalesim"
CACHE = HERE / "results" / "scalesim-3.0.0"
VENV = HERE / ".venv-scalesim"

# name: (ifmap h/w as SCALE-Sim takes it, padded; filter; channels; filters; stride)
LAYERS = {
    "conv1": (230, 7, 3, 64, 2), "l1_3x3": (58, 3, 64, 64, 1), "l2_down3x3": (58, 3, 64, 128, 2),
    "l2_proj1x1": (56, 1, 64, 128, 2), "l2_3x3": (30, 3, 128, 128, 1), "l3_down3x3": (30, 3, 128, 256, 2),
    "l3_proj1x1": (28, 1, 128, 256, 2), "l3_3x3": (16, 3, 256, 256, 1), "l4_down3x3": (16, 3, 256, 512, 2),
    "l4_proj1x1": (14, 1, 256, 512, 2), "l4_3x3": (9, 3, 512, 512, 1), "big128_3x3": (130, 3, 64, 64, 1),
}
SPARSE = ("l2_proj1x1", "l3_proj1x1", "l2_down3x3")


def config_text(name: str, array: int, dataflow: str, mode: str, sparse: bool) -> str:
    return f"""[general]
run_name = {name}

[architecture_presets]
ArrayHeight:    {array}
ArrayWidth:     {array}
IfmapSramSzkB:   64
FilterSramSzkB:  64
OfmapSramSzkB:   64
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : {dataflow}
MemoryBanks:   1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : {'true' if sparse else 'false'}
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: {mode}
UseRamulatorTrace: False
"""


def write_inputs() -> list[tuple[str, str]]:
    """The topology and config files (one layer per topology, so each run has its own time limit)."""
    INPUTS.mkdir(exist_ok=True)
    header = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,"
    for name, (h, k, c, n, s) in LAYERS.items():
        (INPUTS / f"{name}.csv").write_text(f"{header}\n{name},{h},{h},{k},{k},{c},{n},{s},\n")
    rows = "\n".join(f"{n},{LAYERS[n][0]},{LAYERS[n][0]},{LAYERS[n][1]},{LAYERS[n][1]},{LAYERS[n][2]},"
                     f"{LAYERS[n][3]},{LAYERS[n][4]},2:4," for n in SPARSE)
    (INPUTS / "sparse24.csv").write_text(f"{header} Sparsity,\n{rows}\n")
    pairs = []
    for array in (32, 128):
        for df in ("ws", "os"):
            for mode, tag in (("USER", "user10"), ("CALC", "calc")):
                cfg = f"a{array}_{df}_{tag}"
                (INPUTS / f"{cfg}.cfg").write_text(config_text(cfg, array, df, mode, False))
                pairs += [(layer, cfg) for layer in LAYERS]
    for mode, tag in (("USER", "user10"), ("CALC", "calc")):     # input-stationary on the small layers
        cfg = f"a32_is_{tag}"
        (INPUTS / f"{cfg}.cfg").write_text(config_text(cfg, 32, "is", mode, False))
        pairs += [(layer, cfg) for layer in ("l2_proj1x1", "l3_proj1x1")]
        if mode == "USER":                                       # 3x3 windows: words with copies
            pairs += [(layer, cfg) for layer in ("l4_down3x3", "l4_3x3")]
    for mode, tag in (("USER", "user10"), ("CALC", "calc")):
        cfg = f"a32_ws_{tag}_sparse"
        (INPUTS / f"{cfg}.cfg").write_text(config_text(cfg, 32, "ws", mode, True))
        pairs.append(("sparse24", cfg))
    return pairs


def scalesim_python(given: str | None) -> str:
    if given:
        return given
    python = VENV / "bin" / "python"
    if not python.exists():
        print(f"making {VENV} (scalesim==3.0.0 with numpy<2) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "numpy<2", "scalesim==3.0.0"], check=True)
    return str(python)


def run_scalesim(python: str, topology: str, config: str, timeout: float) -> dict | None:
    out = CACHE / f"{topology}__{config}.json"
    cmd = [python, str(INPUTS / "run_one.py"), "--topology", str(INPUTS / f"{topology}.csv"),
           "--config", str(INPUTS / f"{config}.cfg")]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})
    except subprocess.TimeoutExpired:
        print(f"  {topology} on {config}: over {timeout:.0f} s, skipped", file=sys.stderr)
        return None
    if done.returncode != 0:
        print(f"  {topology} on {config}: SCALE-Sim failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    result = json.loads(done.stdout)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.rename(out)
    return result


def err(ref: float, mine: float) -> float:
    return 0.0 if ref == mine else (mine / ref - 1) * 100 if ref else float("inf")


def _seconds(fn, repeat: int = 5) -> float:
    """CPU seconds of the best of `repeat` calls (steady on a shared machine, unlike wall time)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def compare(topology: str, config: str, ref: dict) -> list[dict]:
    mine = scalesim.run(INPUTS / f"{topology}.csv", INPUTS / f"{config}.cfg")
    cfg = scalesim.read_config(INPUTS / f"{config}.cfg")
    layers = scalesim.read_topology(INPUTS / f"{topology}.csv")
    rows = []
    for layer, r, (_, m) in zip(layers, ref["layers"], mine.iterrows()):
        ours = _seconds(lambda: scalesim.simulate_layer(layer, cfg))      # as SCALE-Sim's per-layer wall_s
        theirs = r["wall_s"] or ref["wall_s"] / len(ref["layers"])
        rows.append({
            "layer": r["name"], "config": config, "mode": ref["bw_mode"],
            "compute_scalesim": r["total_cycles"] - r["stall_cycles"], "compute_sparsesim": m.compute_cycles,
            "total_scalesim": r["total_cycles"], "total_err_%": err(r["total_cycles"], m.total_cycles),
            "overall_err_%": err(r["total_cycles_incl_prefetch"], m.overall_cycles),
            **{f"{k}_err_%": err(r[k], m[k]) for k in ("sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes",
                                                       "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes")},
            "scalesim_s": theirs, "sparsesim_s": ours, "speedup": theirs / ours})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="store_true", help="run SCALE-Sim where no cached result exists")
    ap.add_argument("--rerun", action="store_true", help="run SCALE-Sim again even where cached")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per SCALE-Sim run")
    ap.add_argument("--only", help="only runs whose layer or config contains this text")
    ap.add_argument("--scalesim-python", help="a python with scalesim==3.0.0 (default: make benchmarks/.venv-scalesim)")
    ap.add_argument("-o", "--output", default=str(HERE / "results" / "scalesim_crosscheck.csv"))
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    pairs = [p for p in write_inputs() if not args.only or args.only in p[0] or args.only in p[1]]
    python = scalesim_python(args.scalesim_python) if args.run or args.rerun else None
    rows = []
    for topology, config in pairs:
        cached = CACHE / f"{topology}__{config}.json"
        if args.rerun or (args.run and not cached.exists()):
            print(f"SCALE-Sim: {topology} on {config} ...", file=sys.stderr)
            ref = run_scalesim(python, topology, config, args.timeout)
        else:
            ref = json.loads(cached.read_text()) if cached.exists() else None
        if ref is not None:
            rows += compare(topology, config, ref)
    if not rows:
        sys.exit("no SCALE-Sim results cached: run with --run")
    df = pd.DataFrame(rows)
    df.to_csv(args.output, index=False)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_rows", 500)
    show = df.assign(compute_exact=df["compute_scalesim"] == df["compute_sparsesim"]).drop(
        columns=["compute_scalesim", "compute_sparsesim"])
    print(show.round({c: 1 for c in show.columns if c.endswith("%")} | {"scalesim_s": 2, "sparsesim_s": 5,
                                                                      "speedup": 0}).to_string(index=False))
    user = df[df["mode"] == "USER"]
    within = lambda col: int((user[col].abs() <= 5).sum())  # noqa: E731
    print(f"\n{len(df)} runs; compute cycles exact in {int((df.compute_scalesim == df.compute_sparsesim).sum())}; "
          f"USER mode ({len(user)} runs) within 5%: total cycles {within('total_err_%')}, "
          f"overall cycles {within('overall_err_%')}, "
          + ", ".join(f"{k} {within(k + '_err_%')}" for k in ("sram_ifmap_reads", "sram_filter_reads",
                                                                  "sram_ofmap_writes", "dram_ifmap_reads",
                                                                  "dram_filter_reads", "dram_ofmap_writes")))
    print(f"speed-up over SCALE-Sim per layer (sparsesim CPU time, load average {os.getloadavg()[0]:.1f}): "
          f"median {df['speedup'].median():.0f}x, min {df['speedup'].min():.0f}x over all runs; USER mode "
          f"median {user['speedup'].median():.0f}x, min {user['speedup'].min():.0f}x "
          f"(SCALE-Sim {df['scalesim_s'].sum():.0f} s in all, sparsesim {df['sparsesim_s'].sum():.2f} s)")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
