"""The GPU run's parts that a CPU can check: NVML energy arithmetic (a fake NVML), the measurement plan
(counted, refused when wrong, run end to end at smoke size) and benchmarks/gpu_run.sh."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from sparsesim.cli import main
from sparsesim.measure import energy, runner
from sparsesim.measure.kernels import ConvShape
from sparsesim.measure.plan import PlanOptions, run_plan
from sparsesim.measure.tables import ENERGY_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "benchmarks" / "h200_plan.yaml"


class FakeGPU:
    """A board that draws `idle_w` when idle and `busy_w` while a kernel runs, on a fake clock. Its
    energy counter (mJ, as NVML's) publishes the exact energy every `period_s`, in steps."""

    def __init__(self, idle_w=100.0, busy_w=300.0, period_s=0.02, read_s=1e-4):
        self.idle_w, self.busy_w, self.period_s, self.read_s = idle_w, busy_w, period_s, read_s
        self.t, self.joules, self.published = 0.0, 0.0, 0.0

    def advance(self, dt: float, watts: float) -> None:
        edge = (np.floor(self.t / self.period_s) + 1) * self.period_s
        while edge <= self.t + dt:
            self.published = self.joules + watts * (edge - self.t)
            edge += self.period_s
        self.t += dt
        self.joules += watts * dt

    def nvml(self) -> types.ModuleType:
        fake = types.ModuleType("pynvml")
        fake.NVMLError = RuntimeError
        fake.nvmlInit = lambda: None
        fake.nvmlDeviceGetHandleByIndex = lambda i: ("gpu", i)
        fake.nvmlSystemGetDriverVersion = lambda: "580.0-fake"

        def read(handle):
            self.advance(self.read_s, self.idle_w)      # the host polls while the GPU idles
            return int(round(self.published * 1e3))     # millijoules, integers as NVML's
        fake.nvmlDeviceGetTotalEnergyConsumption = read
        return fake


@pytest.fixture
def gpu(monkeypatch):
    board = FakeGPU()
    monkeypatch.setitem(sys.modules, "pynvml", board.nvml())
    return board


def fake_meter(board: FakeGPU, device: str = "cuda:0") -> energy.Meter:
    return energy.Meter(device, clock=lambda: board.t, sleep=lambda s: board.advance(s, board.idle_w))


def test_energy_split_arithmetic():
    # 10 calls in 0.5 s of a 0.6 s window that took 150 J, idle 100 W: static 100*0.5/10 = 5 J per call,
    # dynamic (150 - 100*0.6)/10 = 9 J per call
    s = energy.split(150.0, 0.6, 0.5, 10, 100.0)
    assert (s.static_j, s.dynamic_j, s.energy_j, s.power_w) == pytest.approx((5.0, 9.0, 14.0, 250.0))
    assert tuple(f.name for f in dataclasses.fields(s)) == ENERGY_COLUMNS


def test_meter_measures_idle_power_and_splits_a_kernel_loop(gpu):
    meter = fake_meter(gpu)
    assert meter.driver() == "580.0-fake"
    idle = meter.idle_power(0.5)
    assert idle == pytest.approx(gpu.idle_w, rel=1e-3)
    kernel = lambda: gpu.advance(1e-3, gpu.busy_w)  # noqa: E731  1 ms at 300 W per call
    split = meter.loop([kernel, kernel], sync=lambda: None, per_call_s=1e-3, min_s=0.2, idle_w=idle)
    assert split.energy_calls == 200 and split.energy_loop_s == pytest.approx(0.2, rel=0.01)
    # per call: static = 100 W x 1 ms, dynamic = (300 - 100) W x 1 ms; the counter's 20 ms steps are aligned away
    assert split.static_j == pytest.approx(0.1, rel=0.01)
    assert split.dynamic_j == pytest.approx(0.2, rel=0.01)
    assert split.energy_j == pytest.approx(0.3, rel=0.01)


def test_a_counter_that_never_moves_is_an_error(gpu):
    meter = fake_meter(gpu, "cuda")
    gpu.period_s = 1e9
    with pytest.raises(energy.SparsesimError, match="did not move"):
        meter.idle_power(0.1)


def test_energy_columns_sit_on_each_kernels_total_row(gpu):
    meter = fake_meter(gpu)
    options = runner.MeasureOptions(repeat=2, warmup=0, rotate=1, energy_s=0.01, idle_s=0.1)
    probe = runner.energy_probe(meter, options, sync=lambda: None)
    shape = ConvShape(4, 4, 3, 1, 1, 1, 12, 12)
    case = runner.Case("e", shape, 4, "synthetic", runner.block_mask(shape, 4, 0.5, np.random.default_rng(0)))
    rows = pd.DataFrame(runner.measure_case(case, options, {}, energy=probe))
    total = rows[rows["step"] == "total"].set_index("kernel")
    assert set(total.index) == {"dense", "gather-scatter"}
    assert total[list(ENERGY_COLUMNS)].notna().all().all()
    assert (total["energy_calls"] >= 1).all() and np.allclose(total["idle_w"], gpu.idle_w, rtol=1e-3)
    assert rows[rows["step"] != "total"][list(ENERGY_COLUMNS)].isna().all().all()


def write_plan(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return path


def test_dry_run_counts_cases_and_timed_calls(tmp_path, capsys):
    plan = write_plan(tmp_path, """
prefix: t-
budget_s: 60
assumed_call_s: 0.001
defaults: {repeat: 3, warmup: 2, kernels: [dense, gather-scatter, fused]}
runs:
  - {name: a, shapes: ["4,4,3,1,1,16,16"], blocks: [2, 4], densities: [0.1, 0.5, 1.0]}
  - {name: b, shapes: ["4,4,3,1,1,16,16", "8,8,1,1,0,8,8"], blocks: [8], densities: [1.0], energy: true, energy_s: 0.5, idle_s: 2}
""")
    result = run_plan(PlanOptions(str(plan), str(tmp_path / "out"), "cuda", dry_run=True), echo=lambda _: None)
    a, b = result.counts
    # per case: dense 1 + gather-scatter 4 steps + e2e + fused 2 steps + e2e = 9 groups of (2 + 3) calls
    assert (a.cases, a.timed_calls, a.energy_s) == (6, 6 * 9 * 5, 0.0)
    assert (b.cases, b.timed_calls, b.energy_s) == (2, 2 * 9 * 5, 2 * 3 * 0.5 + 2)
    assert result.estimate_s == pytest.approx((6 + 2) * 45 * 0.001 + 5)
    assert not (tmp_path / "out").exists()     # a dry run writes nothing
    assert main(["measure", "--plan", str(PLAN), "--dry-run", "--device", "cuda", "-o", str(tmp_path / "o")]) == 0
    assert "total about" in capsys.readouterr().out


@pytest.mark.parametrize("text,needle", [
    ("runs: []", "needs a `runs:` list"),
    ("runs: [{name: a}]\nbudget: 3", "unknown keys budget"),
    ("runs: [{name: a, shape: ['1,2,3,1,1,8,8']}]", "unknown fields shape"),
    ("runs: [{name: a, shapes: ['1,2,3']}]", "run a: shapes must be CIN,COUT,K,S,P,H,W integers"),
    ("runs: [{name: a}, {name: a}]", "unique `name:`"),
    ("runs: [{name: a, kernels: [fused], shapes: ['4,4,3,1,1,8,8']}]", "run a: kernels fused runs on --device cuda only"),
    ("runs: [{name: a, energy_s: 0, shapes: ['4,4,3,1,1,8,8']}]", "run a: energy-s and idle-s must be > 0"),
    ("runs: [{name: a\n", "not valid YAML"),
])
def test_bad_plans_are_refused_in_one_line(tmp_path, capsys, text, needle):
    plan = write_plan(tmp_path, text)
    assert main(["measure", "--plan", str(plan), "-q", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()     # refused before anything is written


def test_a_missing_plan_is_one_line(tmp_path, capsys):
    assert main(["measure", "--plan", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "nope.yaml: No such file or directory" in err and len(err.strip().splitlines()) == 1


def test_a_spent_budget_stops_the_plan_and_keeps_what_ran(tmp_path):
    plan = write_plan(tmp_path, """
budget_s: 0.000001
defaults: {repeat: 1, warmup: 0, rotate: 1, blocks: [4], densities: [1.0]}
runs:
  - {name: first, shapes: ["4,4,3,1,1,8,8"]}
  - {name: second, shapes: ["4,4,3,1,1,8,8"]}
""")
    result = run_plan(PlanOptions(str(plan), str(tmp_path / "out"), "cpu", progress=False))
    log = (tmp_path / "out" / "plan.log").read_text()
    assert "first: skipped, the budget is spent" in log and "second: skipped" in log and result.outputs == ()
    # inside a run, the budget stops it between cases and the cases already measured are written
    said = []
    options = runner.MeasureOptions(shapes=(ConvShape(4, 4, 3, 1, 1, 1, 8, 8),), blocks=(2, 4), densities=(1.0,),
                                     repeat=1, warmup=0, rotate=1, budget_s=0.0, progress=False,
                                     output=str(tmp_path / "cut.parquet"))
    assert runner.run_measure(options, log=said.append).empty
    assert said == ["measure: time budget of 0 s spent: 0 of 2 cases measured"]
    assert (tmp_path / "cut.parquet").exists()


@pytest.mark.slow
def test_gpu_run_script_runs_the_h200_plan_at_smoke_size_on_a_cpu(tmp_path):
    """benchmarks/gpu_run.sh end to end, the real plan with every shape shrunk (no fused kernel and no
    NVML on a CPU): every run writes its table, both dtypes, the plan's smallest and largest block and density."""
    out = tmp_path / "h200"
    env = {**os.environ, "DEVICE": "cpu", "PYTHON": sys.executable, "PLAN_FLAGS": "--smoke -q --threads 1",
           "CALIBRATE_FLAGS": "--quick -q --threads 1"}
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_run.sh"), str(out)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    names = {p.name for p in out.glob("h200-*.parquet")}
    runs = ("sbnet", "rife", "mtcnn", "realesr", "energy")
    assert names == {f"h200-{r}-{d}.parquet" for r in runs for d in ("fp32", "fp16")}
    sbnet = pd.read_parquet(out / "h200-sbnet-fp16.parquet")
    assert set(sbnet["dtype"]) == {"fp16"} and set(sbnet["kernel"]) == {"dense", "gather-scatter"}
    assert set(sbnet["block"]) == {2, 32}                      # the plan's ends; the densities are of the
    assert sbnet["density"].between(0, 1).all() and (sbnet["density"] == 1).any()  # cropped masks
    rife = pd.read_parquet(out / "h200-rife-fp32.parquet")
    assert set(rife["source"]) == {"trace", "synthetic"} and (rife["median_s"] > 0).all()
    log = (out / "run.log").read_text()
    assert "calibrate" in log and "done" in (out / "plan.log").read_text()
    assert (out / "versions.json").exists()
