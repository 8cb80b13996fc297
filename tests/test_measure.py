"""Kernels, timing harness, `sparsesim measure` and `sparsesim validate` (CPU)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from kernel_cases import CONV_CASES, random_state, relative_error

from sparsesim import hardware
from sparsesim.measure import validate as validate_mod
from sparsesim.cli import main
from sparsesim.errors import SparsesimError
from sparsesim.measure import kernels, runner, strategies, timing
from sparsesim.measure.kernels import ConvShape


@settings(max_examples=40, deadline=None)
@given(**CONV_CASES)
def test_block_sparse_kernel_matches_dense_on_active_blocks(block, **case):
    made = random_state(**case)
    if made is None:
        return
    shape, state = made
    out = kernels.block_sparse(shape, state, block)
    assert relative_error(out, kernels.reference(shape, state, block)) < 1e-5


def test_timing_statistics(monkeypatch):
    stamps = []
    for i, duration in enumerate([5, 1, 3, 2, 4, 9, 7, 6, 8, 10]):  # start and end of each timed call
        stamps += [100.0 * i, 100.0 * i + duration]
    clock = iter(stamps)
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(clock))
    calls = []
    result = timing.time_calls([lambda: calls.append("a"), lambda: calls.append("b")], "cpu", warmup=2, repeat=10)
    assert result.median_s == pytest.approx(5.5) and result.repeats == 10
    assert result.p10_s == pytest.approx(np.percentile(range(1, 11), 10))
    assert result.p90_s == pytest.approx(np.percentile(range(1, 11), 90))
    assert calls[:4] == ["a", "b", "a", "b"]  # inputs rotate


def test_synthetic_masks_hit_the_asked_block_density():
    shape = ConvShape(4, 4, 3, 1, 1, 1, 40, 40)
    rng = np.random.default_rng(0)
    for block, density in [(4, 0.25), (8, 0.5), (2, 0.05), (16, 1.0)]:
        mask = runner.block_mask(shape, block, density, rng)
        hb = -(-40 // block)
        active = torch.nn.functional.max_pool2d(mask[None, None].float(), block, block, ceil_mode=True).sum()
        assert int(active) == max(1, round(density * hb * hb))


def test_a_wrong_sparse_result_is_caught_before_timing(monkeypatch):
    monkeypatch.setattr(strategies, "block_sparse", lambda shape, s, block: s.z_prev * 2)
    case = runner.Case("x", ConvShape(4, 4, 3, 1, 1, 1, 16, 16), 4, "synthetic", torch.ones(16, 16, dtype=torch.bool))
    with pytest.raises(SparsesimError, match="differs from dense"):
        runner.measure_case(case, runner.MeasureOptions(repeat=1, warmup=0, rotate=1), {})


def test_measure_cli_writes_one_row_per_shape_block_density_kernel_step(tmp_path, capsys):
    out = tmp_path / "cpu.parquet"
    assert main(["measure", "--shape", "8,8,3,1,1,24,24", "--shape", "4,8,1,1,0,16,16", "--blocks", "2,8",
                 "--densities", "0.25,1.0", "--repeat", "3", "-q", "-o", str(out)]) == 0
    df = pd.read_parquet(out)
    assert len(df) == 2 * 2 * 2 * 7  # shapes x blocks x densities x (dense + 4 steps + e2e + total)
    assert set(df["step"]) == {"total", "reduce", "gather", "conv", "scatter", "e2e"}
    assert (df["median_s"] > 0).all() and (df["p10_s"] <= df["median_s"]).all() and (df["median_s"] <= df["p90_s"]).all()
    assert {"device_name", "torch", "dtype", "threads"} <= set(df.columns)
    total = df[(df["kernel"] == "gather-scatter") & (df["step"] == "total")].set_index(["layer", "block", "density"])["median_s"]
    steps = df[(df["kernel"] == "gather-scatter") & df["step"].isin(["reduce", "gather", "conv", "scatter"])]
    np.testing.assert_allclose(steps.groupby(["layer", "block", "density"])["median_s"].sum().loc[total.index], total)


def test_measure_from_a_trace(tmp_path, small_video):
    trace = tmp_path / "t"
    assert main(["trace", str(small_video), "--model", "mtcnn-pnet", "--threshold", "0.05", "-o", str(trace), "-q"]) == 0
    out = tmp_path / "m.csv"
    assert main(["measure", "--trace", str(trace), "--layers", "conv1,conv2", "--blocks", "4", "--densities", "0.5",
                 "--repeat", "2", "-q", "-o", str(out)]) == 0
    df = pd.read_csv(out)
    assert set(df["layer"]) == {"conv1", "conv2"} and set(df["source"]) == {"trace", "synthetic"}
    verdicts = tmp_path / "v.csv"
    assert main(["blocks", str(trace), "--hw", "cpu,eyeriss", "--block", "4", "--measurements", str(out),
                 "--measured-hw", "cpu", "-o", str(verdicts)]) == 0
    v = pd.read_csv(verdicts).set_index(["hw", "layer"])
    dense = df[(df["source"] == "trace") & (df["kernel"] == "dense") & (df["layer"] == "conv1")]["median_s"].item()
    sparse = df[(df["source"] == "trace") & (df["kernel"] == "gather-scatter") & (df["step"] == "total") & (df["layer"] == "conv1")]["median_s"].item()
    assert v.loc[("cpu", "conv1"), "measured_speedup"] == pytest.approx(dense / sparse)
    assert np.isnan(v.loc[("cpu", "conv3"), "measured_speedup"]) and np.isnan(v.loc[("eyeriss", "conv1"), "measured_speedup"])


@pytest.mark.parametrize("args,needle", [
    (["--device", "cuda"], "no CUDA GPU"),
    (["--device", "tpu"], "--device must be cpu or cuda"),
    (["--densities", "2"], "--densities must lie in [0, 1]"),
    (["--shape", "1,2,3"], "--shape must be CIN,COUT,K,S,P,H,W"),
    (["--dtype", "fp8"], "--dtype must be one of"),
    (["--kernel", "dense,fused"], "--kernel fused runs on --device cuda only"),
    (["--kernel", "dense,sbnet"], "--kernel must be among dense, gather-scatter, fused, got sbnet"),
    (["--energy"], "--energy reads NVML's GPU energy counter: it needs --device cuda"),
])
def test_bad_measure_input(tmp_path, capsys, args, needle):
    if "cuda" in args and torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is valid here")
    assert main(["measure", "-q", "--repeat", "1", "-o", str(tmp_path / "m.parquet"), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def handmade_measurements() -> pd.DataFrame:
    """Two shapes x three blocks x two densities; sparse time grows with density, dense is flat."""
    rows = []
    for cin, in_h in ((8, 32), (16, 24)):
        for block, slow in ((2, 3.0), (4, 2.0), (8, 1.0)):
            for density in (0.25, 1.0):
                base = dict(layer=f"s{cin}", source="synthetic", cin=cin, cout=cin, k=3, stride=1, padding=1, dilation=1,
                            in_h=in_h, in_w=in_h, out_h=in_h, out_w=in_h, block=block, density=density,
                            active_blocks=1, active_pixels=block * block, total_blocks=4)
                rows.append({**base, "kernel": "dense", "step": "total", "median_s": 1.0})
                rows.append({**base, "kernel": "sparse", "step": "total", "median_s": slow * density * 2})
    return pd.DataFrame(rows)


def test_validate_arithmetic_on_a_handmade_table(monkeypatch):
    m = handmade_measurements()
    # a model that is exactly 2x the measured time on dense, and right on sparse but with blocks reversed
    fake = np.where(m["kernel"] == "dense", 2.0, m["median_s"][::-1].to_numpy())
    monkeypatch.setattr(validate_mod, "predict", lambda rows, hw: fake[rows.index])
    result = validate_mod.validate(m, hardware.load("cpu"), holdout=1.0)
    dense = result.rows[result.rows["kernel"] == "dense"]
    assert (dense["rel_error"] == 1.0).all()
    assert result.metrics["median_abs_error_dense"] == 1.0
    assert result.metrics["held_out_rows"] == len(m)
    assert result.metrics["groups"] == 4
    be = result.break_even.set_index(["cin", "block"])["measured"]
    # sparse = 2*slow*density crosses dense = 1 at density 1/(2*slow), between the 0.25 and 1.0 points
    assert be.loc[(8, 8)] == pytest.approx(0.25 + 0.75 * (1 - 0.5) / (2 - 0.5))
    assert be.loc[(8, 2)] == 0.0  # already slower at the lowest density


def test_validate_cli_on_real_measurements(tmp_path, capsys):
    out = tmp_path / "m.parquet"
    assert main(["measure", "--shape", "8,8,3,1,1,24,24", "--shape", "16,16,3,1,1,16,16", "--shape", "8,16,3,2,1,32,32",
                 "--blocks", "2,4,8", "--densities", "0.25,1.0", "--repeat", "3", "-q", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["validate", str(out), "--hw", "cpu", "--calibrate", "-o", str(tmp_path / "val")]) == 0
    printed = capsys.readouterr().out
    assert "median abs error" in printed and "spearman" in printed
    rows = pd.read_csv(tmp_path / "val" / "validation.csv")
    np.testing.assert_allclose(rows["rel_error"], rows["predicted_s"] / rows["median_s"] - 1)
    assert (tmp_path / "val" / "scatter.html").read_text().count("vegaEmbed") >= 1
    assert main(["validate", str(tmp_path / "nope.parquet"), "--hw", "cpu"]) == 2


def test_old_tables_name_gather_scatter_sparse_and_still_validate():
    """Tables written before the strategies had names (kernel 'sparse') read as gather-scatter: the
    committed CPU set loads so, and validating an old table gives the same metrics as the renamed one."""
    old = validate_mod.load_all(["traces/measurements/cpu-mtcnn.parquet"], "cpu")
    assert set(old["kernel"]) == {"dense", "gather-scatter"}
    m = handmade_measurements()
    assert "sparse" in set(m["kernel"])
    renamed = m.assign(kernel=m["kernel"].replace({"sparse": "gather-scatter"}))
    hw = hardware.load("cpu")
    a, b = validate_mod.validate(m, hw, holdout=1.0), validate_mod.validate(renamed, hw, holdout=1.0)
    assert a.metrics == b.metrics and a.metrics["groups"] == 4
    # fused rows have no prediction yet (the cost model's fused GPU strategy is issue 14): left out
    fused = renamed[renamed["kernel"] == "gather-scatter"].assign(kernel="fused")
    c = validate_mod.validate(pd.concat([renamed, fused], ignore_index=True), hw, holdout=1.0)
    assert c.metrics["rows"] == a.metrics["rows"]


def test_block_list_step_lists_exactly_the_mask_blocks():
    """The fused strategy's reduction reads x_t and x_{t-1} and returns the mask's blocks, whatever
    the residual looks like (a per-block threshold map realises the mask)."""
    shape = ConvShape(3, 4, 3, 2, 1, 1, 29, 23)
    rng = np.random.default_rng(1)
    for block, density in [(2, 0.3), (4, 0.05), (8, 1.0), (3, 0.5), (32, 0.0)]:
        mask = runner.block_mask(shape, block, density, rng)
        state = kernels.make_state(shape, mask, "cpu", torch.float32, 0)
        state.thresholds = kernels.block_thresholds(state.mask, block, state.x.dtype)
        corners = kernels.block_list_step(shape, state, block)
        blocks = torch.nn.functional.max_pool2d(mask[None, None].float(), block, block, ceil_mode=True)[0, 0]
        assert corners.dtype == torch.int32 and corners.is_contiguous()
        assert torch.equal(corners.long(), torch.nonzero(blocks > 0) * block)


def test_measured_speedup_is_taken_for_the_predicted_best_kernel():
    from sparsesim.report.verdict import attach_measured
    rows = [dict(layer=layer, block=4, source="trace", step="total", kernel=kernel, median_s=t)
            for layer in ("a", "b", "c") for kernel, t in (("dense", 1.0), ("sparse", 0.5), ("fused", 0.25))]
    verdicts = pd.DataFrame({"hw": ["h200", "h200", "h200", "h100"], "layer": ["a", "b", "c", "a"],
                             "best_block_time": [4, 4, 4, 4], "best_kernel": ["fused", "gather-scatter", "region", "fused"]})
    got = attach_measured(verdicts, pd.DataFrame(rows), "h200")["measured_speedup"].to_numpy()
    # fused 1/0.25; the old table's 'sparse' is gather-scatter 1/0.5; region was not measured; h100 was not measured
    np.testing.assert_allclose(got, [4.0, 2.0, np.nan, np.nan])


def test_groups_are_timed_interleaved_each_repetition_starting_one_later(monkeypatch):
    ticks = iter(range(10 ** 6))
    monkeypatch.setattr(timing.time, "perf_counter", lambda: float(next(ticks)))
    order = []
    groups = {g: [lambda g=g, i=i: order.append(f"{g}{i}") for i in range(2)] for g in "abc"}
    result = timing.time_interleaved(groups, "cpu", warmup=1, repeat=4)
    assert order[:3] == ["a0", "b0", "c0"]                                    # warm-up, one of each
    assert order[3:] == ["a0", "b0", "c0", "b1", "c1", "a1", "c0", "a0", "b0", "a1", "b1", "c1"]
    assert {k: t.repeats for k, t in result.items()} == {"a": 4, "b": 4, "c": 4}


def test_measure_interleaves_dense_and_sparse_and_records_pinned_threads(tmp_path, monkeypatch):
    seen = []
    real = runner.time_interleaved

    def spy(groups, *args):
        seen.append(list(groups))
        return real(groups, *args)
    monkeypatch.setattr(runner, "time_interleaved", spy)
    out = tmp_path / "m.parquet"
    assert main(["measure", "--shape", "8,8,3,1,1,16,16", "--blocks", "4", "--densities", "0.5", "--repeat", "3",
                 "--warmup", "1", "--threads", "1", "-q", "-o", str(out)]) == 0
    assert seen == [[("dense", "total"), ("gather-scatter", "reduce"), ("gather-scatter", "gather"),
                     ("gather-scatter", "conv"), ("gather-scatter", "scatter"), ("gather-scatter", "e2e")]]
    df = pd.read_parquet(out)
    assert set(df["threads"]) == {1} and set(df["order"]) == {"interleaved"} and set(df["repeats"]) == {3}
    assert (df["p10_s"] <= df["median_s"]).all() and (df["median_s"] <= df["p90_s"]).all()


def noisy_table(spread: float) -> pd.DataFrame:
    """One shape, one density, blocks 2..16: measured best is B=4; the model picks B=8, 10% slower."""
    rows = []
    for block, t in {2: 3.0, 4: 1.0, 8: 1.1, 16: 2.0}.items():
        base = dict(layer="x", source="synthetic", cin=8, cout=8, k=3, stride=1, padding=1, dilation=1, in_h=16,
                    in_w=16, out_h=16, out_w=16, block=block, density=0.5, active_blocks=1, active_pixels=16, total_blocks=4)
        rows.append({**base, "kernel": "gather-scatter", "step": "total", "median_s": t, "p10_s": t * (1 - spread),
                     "p90_s": t * (1 + spread), "predicted": {2: 3, 4: 2, 8: 1, 16: 4}[block]})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("spread, within", [(0.02, 0.0), (0.06, 1.0)])
def test_best_block_within_the_noise_band(monkeypatch, spread, within):
    m = noisy_table(spread)
    monkeypatch.setattr(validate_mod, "predict", lambda rows, hw: rows["predicted"].to_numpy(float))
    metrics = validate_mod.validate(m, hardware.load("cpu"), holdout=1.0).metrics
    assert metrics["best_block_match"] == 0.0                          # strictly: B=8 is not B=4
    assert metrics["best_block_within_noise"] == within                # 1.1 x 0.94 <= 1.0 x 1.06 only at 6%


def test_validate_reports_every_seed_their_median_and_residuals_by_shape_class(tmp_path, capsys):
    assert main(["validate", "traces/measurements/cpu-mtcnn.parquet", "traces/measurements/cpu-synthetic.parquet",
                 "--hw", "cpu", "--seeds", "0,1,2,3,4", "-o", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "held-out metrics per split seed" in printed and "residuals by shape class" in printed
    seeds = pd.read_csv(tmp_path / "seeds.csv")
    assert list(seeds["seed"]) == ["0", "1", "2", "3", "4", "median"]
    assert seeds.iloc[-1]["spearman_blocks"] == pytest.approx(seeds.iloc[:5]["spearman_blocks"].median())
    one = validate_mod.validate(validate_mod.load_all(["traces/measurements/cpu-mtcnn.parquet",
                                                       "traces/measurements/cpu-synthetic.parquet"], "cpu"),
                                hardware.load("cpu"), seed=3)
    assert seeds.iloc[3]["median_abs_error"] == pytest.approx(one.metrics["median_abs_error"])
    res = pd.read_csv(tmp_path / "residuals.csv")                       # the first seed's held-out rows
    held = pd.read_csv(tmp_path / "validation.csv").query("held_out")
    assert set(res["class"]) == {"kernel", "cout", "k", "stride", "map", "block"}
    assert (res.groupby("class")["rows"].sum() == len(held)).all()     # each class partitions them
    kernel = res[res["class"] == "kernel"].set_index("value")
    dense = held[held["kernel"] == "dense"]
    assert kernel.loc["dense", "median_abs_error"] == pytest.approx(dense["rel_error"].abs().median())
    assert main(["validate", "traces/measurements/cpu-mtcnn.parquet", "--hw", "cpu", "--seeds", "1,x"]) == 2


def test_the_cpu_model_meets_issue_15s_targets_on_the_committed_measurements():
    """Held-out shapes of the committed CPU set, five split seeds, every one: median |error| <= 15%, p90 <= 35%,
    Spearman of the block ranking >= 0.8, predicted best block within the measured best's noise band >= 80%;
    and the same on bikes' layers alone (640x272: shapes the calibration's grid never saw), all held out."""
    paths = sorted(str(p) for p in Path("traces/measurements").glob("cpu-*.parquet"))
    hw = hardware.load("cpu")
    seeds = validate_mod.validate_seeds(validate_mod.load_all(paths, "cpu"), hw, [0, 1, 2, 3, 4]).seeds
    bikes = validate_mod.validate(validate_mod.load_all(["traces/measurements/cpu-bikes.parquet"], "cpu"), hw,
                                  holdout=1.0).metrics
    for m in [*seeds.iloc[:5].to_dict("records"), bikes]:
        assert m["median_abs_error"] <= 0.15 and m["p90_abs_error"] <= 0.35, m
        assert m["spearman_blocks"] >= 0.8 and m["best_block_within_noise"] >= 0.8, m


def test_every_split_seed_holds_out_its_own_shapes():
    """Seeds 0-7 give eight different held-out sets of the committed shapes, each about half of them (a
    CRC-32 of 'seed:shape' gave four: seed 4 held out exactly seed 0's shapes)."""
    shapes = validate_mod.load_all(["traces/measurements/cpu-rife.parquet", "traces/measurements/cpu-bikes.parquet"],
                                   "cpu").drop_duplicates(validate_mod.SHAPE).reset_index(drop=True)
    splits = {tuple(validate_mod.split_by_shape(shapes, 0.5, seed)) for seed in range(8)}
    assert len(splits) == 8 and all(0.2 < np.mean(s) < 0.8 for s in splits)
    assert (validate_mod.split_by_shape(shapes, 0.5, 3) == validate_mod.split_by_shape(shapes, 0.5, 3)).all()
