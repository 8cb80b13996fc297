#!/usr/bin/env bash
# What the trace manifest, the open-time check and the writer lock cost (issue 18): the same trace and the
# same trace open, timed interleaved on BASE (default 9541b0b, the commit before the manifest) and on this
# checkout, RUNS times each, on a quiet machine.
#   benchmarks/trace_integrity_overhead.sh [BASE] [RUNS]
# Prints per run: tracing frames/s (whole command, start-up included: P-Net on carphone, 120 frames,
# Skip-Conv input-norm absolute eps 0.05, no quality pass, 2 threads) and the mean time of 20 opens of
# traces/carphone_pristine-rife-input-norm-e0.05.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
base=${1:-9541b0b}
runs=${2:-3}
py=${PYTHON:-$root/.venv/bin/python}
old=$(mktemp -d)/base
out=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$old" >/dev/null 2>&1 || true; rm -rf "$out"' EXIT
git -C "$root" worktree add -q --detach "$old" "$base"
for run in $(seq "$runs"); do
  for side in base new; do
    if [[ $side == base ]]; then src=$old; gate=(); else src=$root; gate=(--gate input-norm --threshold-mode absolute --cut-threshold 0); fi
    rm -rf "$out/$side"
    t0=$(date +%s.%N)
    (cd "$src" && PYTHONPATH=$src "$py" -m sparsesim.cli trace sample:carphone_pristine --model mtcnn-pnet --threshold 0.05 \
      "${gate[@]}" --quality-every 0 --threads 2 -q -o "$out/$side" >/dev/null 2>&1)
    t1=$(date +%s.%N)
    open_ms=$(cd "$src" && PYTHONPATH=$src "$py" -c "
import time
from sparsesim.trace.format import Trace
t = time.perf_counter()
for _ in range(20):
    Trace('traces/carphone_pristine-rife-input-norm-e0.05')
print(f'{(time.perf_counter() - t) / 20 * 1e3:.3f}')")
    frames=$("$py" -c "import json; print(json.load(open('$out/$side/meta.json'))['frames_recorded'])")
    echo "run $run $side: $(echo "scale=1; $frames / ($t1 - $t0)" | bc) frames/s, open $open_ms ms"
  done
done
