#!/usr/bin/env bash
# The CPU measurement set of issue 15, in one go, on a QUIET machine (other jobs on the cores move every figure):
#   benchmarks/cpu_measure.sh [OUTDIR]          (default OUTDIR: traces/measurements)
#   1. traces sample:bikes with RIFE at its native 640x272 (eps 0.01, 4 frames) into traces/bikes-rife-input-norm-e0.01
#      unless it is there: layer shapes the calibration's grid never saw (maps up to 320x144);
#   2. `sparsesim measure` with the interleaved protocol, THREADS torch threads pinned, REPEAT repetitions:
#      OUTDIR/cpu-synthetic.parquet, cpu-mtcnn.parquet, cpu-rife.parquet (carphone traces) and cpu-bikes.parquet.
# Calibrate first with the same thread count (`sparsesim calibrate --device cpu --threads 2`), validate after:
#   sparsesim validate OUTDIR/cpu-*.parquet --hw cpu --seeds 0,1,2,3,4 -o OUTDIR/validation
# Environment overrides: PYTHON=.venv/bin/python  THREADS=2  REPEAT=25  (everything printed goes to OUTDIR/measure.log)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/traces/measurements}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-$root/.venv/bin/python}
threads=${THREADS:-2}
repeat=${REPEAT:-25}
bikes=traces/bikes-rife-input-norm-e0.01
sparsesim() { "$py" -m sparsesim.cli "$@"; }
measure() { sparsesim measure --threads "$threads" --repeat "$repeat" -q "$@"; }

{
  echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) benchmarks/cpu_measure.sh $out (threads $threads, repeat $repeat)"
  git -C "$root" rev-parse HEAD 2>/dev/null || echo "(not a git checkout)"
  uptime
  [[ -d $bikes ]] || sparsesim trace sample:bikes --model rife --threshold 0.01 --frames 4 --threads "$threads" -q -o "$bikes"
  measure -o "$out/cpu-synthetic.parquet"
  measure --trace traces/carphone_pristine-mtcnn-pnet-input-norm-e0.05 -o "$out/cpu-mtcnn.parquet"
  measure --trace traces/carphone_pristine-rife-input-norm-e0.01 -o "$out/cpu-rife.parquet"
  measure --trace "$bikes" -o "$out/cpu-bikes.parquet"
  uptime
  echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) done"
} 2>&1 | tee -a "$out/measure.log"
