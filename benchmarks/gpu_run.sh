#!/usr/bin/env bash
# The prepared GPU run of issue 16, in one go and offline: usage  benchmarks/gpu_run.sh OUTDIR
#   1. `sparsesim calibrate --device cuda -o OUTDIR/calibration/h200.yaml` (issue 15): accel_models/h200.yaml
#      with this GPU's measured figures, its conv-efficiency table and every probe beside it (copy the three
#      files into accel_models/ to use them);
#   2. `sparsesim measure --plan benchmarks/h200_plan.yaml`: OUTDIR/h200-*.parquet, plan.log, versions.json.
# Everything it prints also goes to OUTDIR/run.log. It runs from this checkout without installing it
# (PYTHONPATH), on the machine's own python3 with torch, Triton, pandas, pyarrow, pyyaml, tqdm and
# nvidia-ml-py; PyAV, altair and Ray are not needed. Environment overrides (the tests use them on a CPU):
#   DEVICE=cuda  PYTHON=python3  PLAN=benchmarks/h200_plan.yaml  PLAN_FLAGS="--smoke"  CALIBRATE_S=60
#   CALIBRATE_FLAGS="--quick -q"
set -euo pipefail
out=${1:?usage: benchmarks/gpu_run.sh OUTDIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
device=${DEVICE:-cuda}
sparsesim() { "$py" -m sparsesim.cli "$@"; }

{
  echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) benchmarks/gpu_run.sh $out (device $device)"
  git -C "$root" rev-parse HEAD 2>/dev/null || echo "(not a git checkout)"
  nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit,clocks.sm --format=csv 2>/dev/null \
    || echo "nvidia-smi: not on this machine"
  "$py" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)'
  # Calibrate first (issue 15), bounded so that the plan keeps its time; nothing is written unless it finishes.
  mkdir -p "$out/calibration"
  if [[ $device == cuda* ]]; then described=h200; else described=cpu; fi
  # shellcheck disable=SC2086  # CALIBRATE_FLAGS is a list of flags
  timeout "${CALIBRATE_S:-60}" "$py" -m sparsesim.cli calibrate --device "${device%%:*}" \
      -o "$out/calibration/$described.yaml" ${CALIBRATE_FLAGS:-} \
    || echo "calibrate: failed or ran out of its ${CALIBRATE_S:-60} s; measuring anyway"
  # shellcheck disable=SC2086  # PLAN_FLAGS is a list of flags
  sparsesim measure --plan "${PLAN:-benchmarks/h200_plan.yaml}" --device "$device" -o "$out" ${PLAN_FLAGS:-}
  echo "== $(date -u +%Y-%m-%dT%H:%M:%SZ) done"
} 2>&1 | tee -a "$out/run.log"
