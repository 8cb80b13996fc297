"""`sparsesim calibrate`: figures recovered from a scripted clock (CPU and CUDA paths, fake devices), the
YAML written with its comments kept, atomic writes under interruption, one-line errors, and a real quick
CPU run whose output loads as a hardware description."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparsesim import hardware
from sparsesim.cli import main
from sparsesim.hardware import conv_table
from sparsesim.hardware.edit import Figure, set_figures
from sparsesim.hardware.spec import HardwareError
from sparsesim.measure.calibrate import CalibrateOptions, run_calibrate
from sparsesim.measure.calibrate.clock import CudaClock, ScriptedClock, Truth
from sparsesim.measure.calibrate.devices import Environment
from sparsesim.measure.calibrate.probes import Conv

MiB = 2 ** 20
STOCK = Path(__file__).parent / "data" / "cpu-stock.yaml"   # cpu.yaml as it was before any calibration


def efficiency(p: Conv) -> float:
    """A made-up but shape-dependent efficiency: small maps, thin GEMMs and 1x1 kernels run slower."""
    return 0.6 * p.gemm_m / (p.gemm_m + 400) * p.width / (p.width + 6) * p.gemm_k / (p.gemm_k + 50) * \
        (0.7 if p.kernel == 1 else 1.0) * (0.8 if p.stride == 2 else 1.0)


TRUTH = Truth(copy_gbps={"l1": 300.0, "l2": 120.0, "llc": 40.0, "dram": 18.0}, gather_gbps=2.5, scatter_gbps=0.9,
              copy_call_s=1.5e-6, conv_call_s=9e-6, launch_s=4e-6, peak_gflops=350.0, efficiency=efficiency,
              step_s=14e-6, mask_gbps=6.0, by_block=lambda b: (b / 8) ** 0.3)
GPU_TRUTH = Truth(copy_gbps={"l2": 9000.0, "dram": 4100.0}, gather_gbps=900.0, scatter_gbps=450.0, copy_call_s=2e-6,
                  conv_call_s=5e-6, launch_s=3.2e-6, peak_gflops=60000.0, efficiency=efficiency)


class NoKernels:
    """A fake device: every probe's call does nothing (the scripted clock says how long it took)."""
    made = 0

    def make(self, probe):
        self.made += 1
        return lambda: None


def fake(device="cpu", truth=TRUTH, jitter=0.0, threads=2):
    caches = {"l1": 48 * 1024, "l2": 2 * MiB, "llc": 64 * MiB} if device == "cpu" else {"l2": 50 * MiB}
    return Environment(device, f"fake {device}", caches, threads, {"torch": "9.9", "oneDNN": "9.9"},
                       ScriptedClock(truth, jitter), NoKernels())


def calibrate(tmp_path, device="cpu", truth=TRUTH, jitter=0.0, quick=False, name="cpu.yaml"):
    return run_calibrate(CalibrateOptions(device=device, output=str(tmp_path / name), quick=quick, progress=False),
                         fake(device, truth, jitter))


def test_a_scripted_cpu_is_recovered(tmp_path):
    result = calibrate(tmp_path)
    hw = result.hardware
    assert hw.level("dram").bandwidth == pytest.approx(18e9, rel=1e-3)       # read+write bytes, call cost taken off
    assert hw.level("l2").bandwidth == pytest.approx(40e9, rel=1e-3)         # the LLC (kind l2 in cpu.yaml)
    assert hw.level("buffer").bandwidth / hw.units == pytest.approx(120e9 / 2, rel=1e-3)   # per core, 2 threads
    assert hw.part.gather_bandwidth == pytest.approx(2.5e9, rel=1e-3)
    assert hw.part.scatter_bandwidth == pytest.approx(0.9e9, rel=1e-3)
    assert hw.part.mask_bandwidth == pytest.approx(6e9, rel=1e-3)
    kind = hardware.kinds.of(hw)                                          # per block, interpolated in log B
    for b in (2, 4, 8, 16, 32):
        assert kind.gather_bandwidth(hw, b) == pytest.approx(2.5e9 * (b / 8) ** 0.3, rel=1e-3)
        assert kind.scatter_bandwidth(hw, b) == pytest.approx(0.9e9 * (b / 8) ** 0.3, rel=1e-3)
    assert kind.gather_bandwidth(hw, np.array([64.0, 1.0, 5.65685])) == pytest.approx(
        [2.5e9 * 4 ** 0.3, 2.5e9 * 0.25 ** 0.3, 2.5e9 * (4 * 2 ** 0.5 / 8) ** 0.3], rel=1e-3)   # held at the ends
    assert hw.level("l2").size_bytes == 64 * MiB and hw.level("buffer").size_bytes == 2 * MiB * hw.units  # sysfs'
    assert hw.part.launch_s == pytest.approx(14e-6, rel=1e-3)            # per step of a tiny layer
    ref = Conv(3, 1, 80, 96 * 80, 64, 64)
    assert hw.part.sustained_flops == pytest.approx(350e9 * efficiency(ref), rel=1e-3)
    conv = result.conv
    truth = [350.0 * efficiency(Conv(r.kernel, r.stride, r.width, r.gemm_m, r.gemm_n, r.cin)) for r in conv.itertuples()]
    assert np.allclose(conv["gflops"], truth, rtol=1e-3)
    reuse = hw.tiling.reuse_n                     # the register block of the description calibrated
    lanes = np.ceil(conv["gemm_n"] / reuse) * reuse / conv["gemm_n"]
    assert np.allclose(conv["padded_gflops"], conv["gflops"] * lanes)
    # the model reads the table back: at a grid point it gives the measured rate
    table = hw.part.conv_table
    r = conv.iloc[7]
    assert table.rate(r.kernel, r.stride, r.width, r.gemm_m, r.gemm_n, r.gemm_k) == pytest.approx(r.padded_gflops * 1e9, rel=1e-9)


def test_noisy_scripted_timings_still_give_the_figures(tmp_path):
    hw = calibrate(tmp_path, jitter=0.05, quick=True).hardware
    assert hw.part.gather_bandwidth == pytest.approx(2.5e9, rel=0.06)
    assert hw.part.scatter_bandwidth == pytest.approx(0.9e9, rel=0.06)


def test_every_figure_is_marked_with_date_device_versions_and_threads(tmp_path):
    calibrate(tmp_path)
    text = (tmp_path / "cpu.yaml").read_text()
    measured = [line for line in text.splitlines() if "# measured by sparsesim calibrate" in line]
    assert len(measured) == 11   # 3 levels, gather, scatter (and per block), mask, overhead, sustained, table
    for line in measured:
        assert "on fake cpu, 2 threads, torch 9.9, oneDNN 9.9" in line and "20" in line.split("calibrate ")[1][:4]
    assert "[intel-sdm] 32 zmm registers" in text and "assumption: oneDNN-like cache blocking" in text  # the rest kept
    from test_hardware import NUMBER_LINE          # the committed files' rule: every figure has its comment
    assert all("#" in line for line in text.splitlines() if NUMBER_LINE.match(line))
    meta = hardware.reader._parse(tmp_path / "cpu.yaml")["calibration"]
    assert meta["threads"] == 2 and meta["device"] == "cpu" and meta["onednn"] == "9.9" and meta["quick"] is False


def test_the_cuda_path_with_a_scripted_clock_and_a_fake_gpu(tmp_path):
    result = calibrate(tmp_path, device="cuda", truth=GPU_TRUTH, name="gpu.yaml")
    hw = result.hardware
    assert hw.kind == "gpu" and hw.name == "h200"                       # started from accel_models/h200.yaml
    assert hw.level("dram").sustained == pytest.approx(4100e9, rel=1e-3)
    assert hw.level("dram").bandwidth == pytest.approx(4800e9)           # the spec sheet's peak stays
    assert hw.level("l2").sustained == pytest.approx(9000e9, rel=1e-3)
    assert hw.part.launch_s == pytest.approx(3.2e-6, rel=1e-3)           # 64 back-to-back launches / 64
    assert hw.part.gather_bandwidth == pytest.approx(900e9, rel=1e-3)
    assert hardware.kinds.of(hw).scatter_bandwidth(hw) == pytest.approx(450e9, rel=1e-3)
    assert hardware.kinds.of(hw).mask_bandwidth(hw) == pytest.approx(1e9, rel=1e-3)     # the truth's default
    assert (tmp_path / "gpu.conv-efficiency.csv").exists() and len(result.conv) == 405


def test_the_cuda_clock_reads_events_in_milliseconds():
    log = []

    class Event:
        def record(self):
            log.append(("record", id(self)))

        def synchronize(self):
            log.append(("sync", id(self)))

        def elapsed_time(self, end):
            return 2.5

    seconds = CudaClock(Event).time(None, lambda: log.append("call"))
    assert seconds == pytest.approx(2.5e-3)
    assert [e if isinstance(e, str) else e[0] for e in log] == ["record", "call", "record", "sync"]
    assert log[0][1] != log[2][1] and log[2][1] == log[3][1]               # waits on the end event


def test_an_interrupted_calibration_leaves_the_old_files(tmp_path):
    calibrate(tmp_path, quick=True)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    env = fake()

    class Interrupting(NoKernels):
        def make(self, probe):
            self.made += 1
            if self.made == 12:
                raise KeyboardInterrupt
            return lambda: None
    env = Environment(**{**env.__dict__, "kernels": Interrupting()})
    with pytest.raises(KeyboardInterrupt):
        run_calibrate(CalibrateOptions(output=str(tmp_path / "cpu.yaml"), progress=False), env)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before     # no temporary file either


def test_a_description_that_would_not_load_is_not_written(tmp_path, monkeypatch):
    calibrate(tmp_path, quick=True)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    from sparsesim.measure.calibrate import run as run_mod
    monkeypatch.setattr(run_mod, "conv_table", lambda plan, results, hw: pd.DataFrame({"kernel": [1], "padded_gflops": [1.0]}))
    with pytest.raises(HardwareError, match="not a conv-efficiency table"):
        calibrate(tmp_path, quick=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.mark.parametrize("argv, message", [
    (["--device", "tpu"], "--device must be one of cpu, cuda, got tpu"),
    (["--threads", "0"], "--threads must be >= 1, got 0"),
    (["-o", "out.txt"], "--output must be a .yaml file"),
    (["--device", "cuda"], "--device cuda: torch sees no CUDA GPU"),
    (["--base", "nope"], "unknown hardware 'nope'"),
    (["--base", "eyeriss"], "describes a spatial, not a cpu"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, argv, message):
    out = tmp_path / "new.yaml"
    args = ["calibrate", "--quick", "-q", *(argv if "-o" in argv else [*argv, "-o", str(out)])]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_real_quick_cpu_calibration_loads_as_a_hardware_description(tmp_path, capsys):
    out = tmp_path / "mine.yaml"
    assert main(["calibrate", "--device", "cpu", "--quick", "--threads", "1", "-q", "-o", str(out)]) == 0
    hw = hardware.load(str(out))
    assert hw.kind == "cpu" and hw.part.conv_table is not None and hw.part.scatter_bandwidth > 0
    conv = pd.read_csv(tmp_path / "mine.conv-efficiency.csv")
    assert (conv["median_s"] > 0).all() and len(conv) == 32
    assert main(["hw", "show", str(out)]) == 0
    assert "conv efficiency per GEMM shape from mine.conv-efficiency.csv" in " ".join(capsys.readouterr().out.split())


# --- the table the latency model reads -------------------------------------------------------------------

def grid_table(path: Path, rate=lambda w, m, n, k: 1.0 + 0 * m, reuse_n=32, drop=0) -> Path:
    rows = [dict(kernel=kk, stride=1, width=w, gemm_m=m, gemm_n=n, gemm_k=k, reuse_n=reuse_n,
                 padded_gflops=rate(w, m, n, k)) for kk in (1, 3) for w in (2, 8) for m in (100, 1000)
            for n in (16, 64) for k in (32, 288)]
    pd.DataFrame(rows[drop:]).to_csv(path, index=False)
    return path


def test_the_table_interpolates_in_log_space_and_holds_its_edges(tmp_path):
    t = conv_table.load(grid_table(tmp_path / "t.csv", rate=lambda w, m, n, k: 10.0 * np.sqrt(m / 100) * (n / 16)),
                        reuse_n=32)
    assert t.rate(3, 1, 8, 100, 16, 32) == pytest.approx(10e9)
    assert t.rate(3, 1, 8, 1000, 64, 32) == pytest.approx(10e9 * math.sqrt(10) * 4)
    assert t.rate(3, 1, 8, 100, 32, 32) == pytest.approx(20e9)           # geometric midpoint of N: 2x
    assert t.rate(3, 1, 8, 10 ** 6, 16, 32) == t.rate(3, 1, 8, 1000, 16, 32)   # held beyond the grid
    assert t.rate(3, 1, 100, 50, 16, 10 ** 5) == t.rate(3, 1, 8, 100, 16, 288)


def test_time_never_falls_as_m_grows_even_where_the_measured_rate_jumps(tmp_path):
    t = conv_table.load(grid_table(tmp_path / "t.csv", rate=lambda w, m, n, k: np.where(m > 500, 50.0, 1.0)), 32)
    m = np.arange(1, 3000)
    seconds = m / t.rate(3, 1, 8, m, 16, 32)
    assert (np.diff(seconds) >= -1e-12 * seconds[1:]).all()


def test_time_is_held_below_the_smallest_reduction_the_grid_measured(tmp_path):
    """Fewer input channels than calibrated do not run faster per pixel (oneDNN loops over them inside a
    kernel vectorised over output channels): below the grid's smallest K the time holds, not the rate."""
    t = conv_table.load(grid_table(tmp_path / "t.csv", rate=lambda w, m, n, k: 10.0 * k / 32), reuse_n=32)
    k = np.array([4.0, 8.0, 16.0, 32.0, 64.0])
    seconds = k / t.rate(3, 1, 8, 100, 16, k)
    assert seconds[:4] == pytest.approx([seconds[3]] * 4)             # K <= 32: the K = 32 conv's time
    assert t.rate(3, 1, 8, 100, 16, 64) == pytest.approx(20e9)         # inside: log-linear from 10 at K 32, 90 at 288


def test_a_table_calibrated_with_another_register_block_is_converted(tmp_path):
    """The padded rate is the measured useful rate times the model's lane waste: a table written with
    reuse_n 32 read by a description with reuse_n 16 gives the same useful rate for every N."""
    path = grid_table(tmp_path / "t.csv", rate=lambda w, m, n, k: 8.0 * np.ceil(n / 32) * 32 / n, reuse_n=32)
    as32, as16 = conv_table.load(path, 32), conv_table.load(path, 16)
    for n in (16, 64):
        useful32 = as32.rate(3, 1, 8, 100, n, 32) / (np.ceil(n / 32) * 32 / n)
        useful16 = as16.rate(3, 1, 8, 100, n, 32) / (np.ceil(n / 16) * 16 / n)
        assert useful32 == pytest.approx(8e9) and useful16 == pytest.approx(8e9)
    assert as16.rate(3, 1, 8, 100, 16, 32) == pytest.approx(as32.rate(3, 1, 8, 100, 16, 32) / 2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(drop=1), "is not a full grid"),
    (dict(reuse_n=0), "reuse_n and grid value must be a positive number"),
])
def test_a_malformed_table_is_a_one_line_error(tmp_path, kwargs, message):
    with pytest.raises(HardwareError, match=message.replace("[", r"\[").replace("]", r"\]")):
        conv_table.load(grid_table(tmp_path / "t.csv", **kwargs), 32)
    with pytest.raises(HardwareError, match="not found"):
        conv_table.load(tmp_path / "missing.csv", 32)


def test_set_figures_keeps_comments_and_adds_missing_keys():
    text = "name: x  # top\ncpu:\n  a: 1    # keep me\n  b: 2\nmemory:\n  - name: dram\n    kind: dram\n" \
           "    bandwidth_gbps: 3   # old\n  - name: l2\n    kind: l2\nsources:\n  k: v\n"
    out = set_figures(text, [Figure(("cpu", "b"), 5.5, "new"), Figure(("cpu", "c"), "t.csv", "added"),
                             Figure(("memory", "dram", "bandwidth_gbps"), 20.0, "measured"),
                             Figure(("memory", "l2", "sustained_gbps"), 7.0, "measured"), Figure(("meta", "date"), "2026-01-01")])
    assert "  a: 1    # keep me" in out and "name: x  # top" in out and "sources:\n  k: v" in out
    data = hardware.reader.yaml.safe_load(out)
    assert data["cpu"] == {"a": 1, "b": 5.5, "c": "t.csv"} and data["meta"] == {"date": "2026-01-01"}
    assert data["memory"] == [{"name": "dram", "kind": "dram", "bandwidth_gbps": 20},
                              {"name": "l2", "kind": "l2", "sustained_gbps": 7}]


# --- the CPU latency model with a table -----------------------------------------------------------------

def cpu_with(tmp_path, figures) -> "hardware.Hardware":
    path = tmp_path / "cpu.yaml"
    path.write_text(set_figures(STOCK.read_text(), figures))
    return hardware.load(str(path))


def one_conv(cin=16, cout=48, k=3, stride=1, h=64, w=64):
    from test_cost import conv_layer
    from sparsesim.workload import Geometry
    pad = k // 2
    return Geometry.from_layers(pd.DataFrame([conv_layer(cin=cin, cout=cout, k=k, stride=stride, pad=pad, h=h, w=w)]))


def arr(v):
    return np.array(float(v)).reshape(1, 1, 1)


def test_the_model_runs_a_conv_at_the_tables_rate_for_its_shape(tmp_path):
    from sparsesim.workload import dense_work
    grid_table(tmp_path / "t.csv", rate=lambda w, m, n, k: 2.0 * w * (m / 100) ** 0.5)
    hw = cpu_with(tmp_path, [Figure(("cpu", "conv_efficiency"), "t.csv", "test")])
    geo = one_conv(cin=32, cout=64, k=3, h=8, w=8)           # dense: width 8, M 64 (< grid: held at M=100)
    steps = hardware.kinds.of(hw).latency_steps(geo, hw, dense_work(geo), None)
    flops = 2 * 64 * 64 * 288
    assert steps[2].item() == pytest.approx(flops / (2.0 * 8 * 1e9))  # 64 channels: two whole register blocks
    plain = hardware.load(str(STOCK))                          # without a table: the sustained rate, as before
    old = hardware.kinds.of(plain).latency_steps(geo, plain, dense_work(geo), None)
    # the busiest core holds one whole 64-pixel tile, at the sustained rate per core (MAC/s)
    assert old[2].item() == pytest.approx(64 * 64 * 288 / (plain.part.sustained_flops / 2 / plain.units))


@pytest.mark.parametrize("cout, block", [(8, 2), (48, 4), (130, 8), (64, 16)])
def test_with_a_table_conv_steps_never_fall_as_active_pixels_rise(tmp_path, cout, block):
    from sparsesim.workload import sparse_work
    grid_table(tmp_path / "t.csv", rate=lambda w, m, n, k: np.where(m > 500, 80.0, 1.0) * w / (n ** 0.5))
    hw = cpu_with(tmp_path, [Figure(("cpu", "conv_efficiency"), "t.csv", "test")])
    geo = one_conv(cout=cout)
    total = (64 // block) ** 2
    steps = []
    for pixels in range(1, 1200, 3):
        active = min(total, -(-pixels // (block * block)))
        work = sparse_work(geo, arr(block), arr(active), arr(pixels), arr(total))
        steps.append(np.array(hardware.kinds.of(hw).latency_steps(geo, hw, work, arr(block))).ravel())
    steps = np.array(steps)
    assert (np.diff(steps, axis=0) >= -1e-12 * steps[1:]).all()


def test_the_scatter_is_priced_at_its_own_bandwidth(tmp_path):
    from sparsesim.cost.latency import latency
    from sparsesim.workload import sparse_work, traffic
    geo = one_conv()
    work = sparse_work(geo, arr(8), arr(20), arr(20 * 64), arr(64))
    plain = hardware.load(str(STOCK))
    slow = cpu_with(tmp_path, [Figure(("cpu", "scatter_gbps"), 0.5, "test")])
    a, b = latency(geo, plain, work, arr(8)), latency(geo, slow, work, arr(8))
    moved = traffic(geo, slow, work)
    assert b["t_scatter"].item() == pytest.approx(moved.step_bytes["scatter"].item() / 0.5e9)
    assert a["t_scatter"].item() == pytest.approx(moved.step_bytes["scatter"].item() / plain.part.gather_bandwidth)
    assert b["t_gather"].item() == a["t_gather"].item()
    masked = cpu_with(tmp_path, [Figure(("cpu", "mask_gbps"), 2.0, "test")])
    c = latency(geo, masked, work, arr(8))
    assert c["t_mask"].item() == pytest.approx(moved.step_bytes["mask"].item() / 2e9)
    assert a["t_mask"].item() == pytest.approx(moved.step_bytes["mask"].item() / moved.bandwidth.item())


def test_a_conv_faster_than_the_stated_peak_and_a_thread_mismatch_are_pointed_out(tmp_path):
    fast = Truth(**{**TRUTH.__dict__, "peak_gflops": 2000.0})        # the stock cpu.yaml states 358 GFLOP/s
    warnings = run_calibrate(CalibrateOptions(output=str(tmp_path / "cpu.yaml"), base=str(STOCK), quick=True,
                                              progress=False), fake(truth=fast, threads=1)).warnings
    assert len(warnings) == 2 and "above peak_tflops.fp32 (358 GFLOP/s)" in warnings[0]
    assert "1 threads on a description of 2 units" in warnings[1]
    assert calibrate(tmp_path, quick=True).warnings == ()


def test_the_wall_clock_leaves_a_probes_preparation_untimed_and_only_indexed_probes_evict():
    import time as time_
    from sparsesim.measure.calibrate.clock import WallClock
    from sparsesim.measure.calibrate.kernels import TorchKernels
    from sparsesim.measure.calibrate.probes import Indexed

    prepared = []

    def call():
        return None
    call.before = lambda: (time_.sleep(0.05), prepared.append(1))
    assert WallClock().time(None, call) < 0.01 and prepared == [1]   # run once, its 50 ms not counted
    kernels = TorchKernels("cpu")
    gather = kernels.make(Indexed("gather", channels=8, side=64, tiles=4, block=8))
    conv = kernels.make(Conv(kernel=3, stride=1, width=8, m=64, cout=16, cin=8))
    assert getattr(gather, "before", None) is not None and getattr(conv, "before", None) is None


def test_a_library_conv_on_a_cpu_pays_its_weight_reorder_and_the_gathered_batchs_copy():
    """oneDNN through torch reorders plain weights on every call, and copies a channel-major gathered batch
    to batch-major before it: both at the layer's backing level, on top of the conv itself. An empty
    batch pays neither; the fused strategy (no library call) neither."""
    from sparsesim.cost.latency import latency
    from sparsesim.workload import dense_work, sparse_work, traffic
    from sparsesim.workload.strategies import Kernel
    hw = hardware.load(str(STOCK))
    geo = one_conv(cin=16, cout=48, k=3, h=20, w=20)
    weights = 48 * 16 * 9 + 48
    dense = latency(geo, hw, dense_work(geo))
    bandwidth = traffic(geo, hw, dense_work(geo)).bandwidth.item()
    assert dense["t_algorithm"].item() - dense["t_bandwidth"].item() == pytest.approx(2 * weights * 4 / bandwidth)
    block = arr(8)
    for active, extra in ((3, 2 * (weights + 3 * 10 * 10 * 16) * 4), (0, 0.0)):   # 10 x 10 tiles of 16 channels
        work = sparse_work(geo, block, arr(active), arr(active * 64), arr(9))
        t = latency(geo, hw, work, block)
        assert t["t_algorithm"].item() - t["t_bandwidth"].item() == pytest.approx(extra / bandwidth)
    fused = latency(geo, hw, sparse_work(geo, block, arr(3), arr(3 * 64), arr(9), kernel=Kernel("fused")), block)
    assert fused["t_algorithm"].item() == fused["t_bandwidth"].item()
