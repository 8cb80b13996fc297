"""Layer-to-layer weight prefetch (`array.weight_prefetch`) in the YAML, the analytical model and the
simulator, and every dataflow a YAML can name run end to end through `sparsesim simulate`."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from sparsesim import hardware
from sparsesim.cost.latency import latency
from sparsesim.sim import SimulateOptions, run_simulate
from sparsesim.workload import Geometry, dense_work
from test_cost import conv_layer

TPU = (hardware.models_dir() / "tpu-v1.yaml").read_text()
GEMMINI = (hardware.models_dir() / "gemmini.yaml").read_text()
EYERISS = (hardware.models_dir() / "eyeriss.yaml").read_text()


def _yaml(tmp_path, text: str, name: str, **swap) -> str:
    for old, new in swap.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}.yaml"
    path.write_text(re.sub(r"^name: .*$", f"name: {name}", text, count=1, flags=re.M))
    return str(path)


def test_the_key_is_read_and_refused_when_malformed(tmp_path):
    assert hardware.load("tpu-v1").weight_prefetch and hardware.load("gemmini").weight_prefetch
    assert not hardware.load("eyeriss").weight_prefetch
    bad = _yaml(tmp_path, GEMMINI, "bad", **{"weight_prefetch: true": "weight_prefetch: soon"})
    with pytest.raises(hardware.HardwareError, match="weight_prefetch"):
        hardware.load(bad)


@pytest.mark.parametrize("text", [TPU, EYERISS], ids=["systolic", "spatial"])
def test_the_analytical_model_waits_for_the_first_weights_only_without_prefetch(tmp_path, text):
    on = hardware.load(_yaml(tmp_path, text, "hw-on", **{"weight_prefetch: false": "weight_prefetch: true"})
                       if "weight_prefetch: false" in text else _yaml(tmp_path, text, "hw-on"))
    off = hardware.load(_yaml(tmp_path, text, "hw-off", **{"weight_prefetch: true": "weight_prefetch: false"})
                        if "weight_prefetch: true" in text else _yaml(tmp_path, text, "hw-off"))
    geo = Geometry.from_layers(pd.DataFrame([conv_layer(cin=64, cout=64, k=3, h=16, w=16)]))
    t_on, t_off = (latency(geo, hw, dense_work(geo))["t_util"].item() for hw in (on, off))
    from sparsesim.hardware import kinds
    words = float(kinds.of(off).first_weights(geo, off).item())
    assert words > 0
    assert t_off - t_on == pytest.approx(words * off.word_bytes / off.levels[0].bandwidth, rel=1e-9)


def test_simulate_hides_a_layers_first_weights_behind_the_layer_before(tmp_path, small_trace):
    on = _yaml(tmp_path, TPU, "tpu-on")
    off = _yaml(tmp_path, TPU, "tpu-off", **{"weight_prefetch: true": "weight_prefetch: false"})
    rows = run_simulate(SimulateOptions(trace=str(small_trace), hardware=[on, off], block=4)).rows
    a, b = (rows[rows["hw"] == h].sort_values(["frame", "layer_id"]).reset_index(drop=True) for h in ("tpu-on", "tpu-off"))
    hidden = a["sim_prefetched_s"].to_numpy()
    assert np.allclose(b["sim_prefetched_s"], 0) and (hidden >= 0).all() and hidden.sum() > 0
    assert np.allclose(a["sim_s"] + hidden, b["sim_s"])                      # the same work, less waiting
    assert np.all(a["stall_first_weights_s"] >= -1e-15)
    assert hidden[0] == 0                                                   # nothing precedes the first layer
    assert a["sim_s"].sum() < b["sim_s"].sum()
    assert (a["sim_dense_s"] <= b["sim_dense_s"] + 1e-15).all()


@pytest.mark.parametrize("dataflow", ["weight-stationary", "output-stationary", "input-stationary"])
def test_every_systolic_dataflow_runs_end_to_end(tmp_path, small_trace, dataflow):
    path = _yaml(tmp_path, GEMMINI, f"g-{dataflow}", **{"dataflow: weight-stationary": f"dataflow: {dataflow}"})
    res = run_simulate(SimulateOptions(trace=str(small_trace), hardware=[path], block=4, frames=3))
    rows = res.rows
    assert len(rows) == 5 * 3 and (rows["sim_s"] > 0).all() and rows["analytical_s"].notna().all()
    assert (rows["sim_dense_s"] > 0).all() and np.isfinite(res.summary["gap"]).all()


def test_the_dataflows_give_different_simulated_times(tmp_path, small_trace):
    paths = [_yaml(tmp_path, GEMMINI, f"g{i}", **{"dataflow: weight-stationary": f"dataflow: {d}"})
             for i, d in enumerate(["weight-stationary", "output-stationary", "input-stationary"])]
    rows = run_simulate(SimulateOptions(trace=str(small_trace), hardware=paths, block=4, frames=2)).rows
    dense = rows.groupby("hw")["sim_dense_s"].sum()
    assert dense.nunique() == 3


def test_row_stationary_runs_end_to_end(small_trace):
    res = run_simulate(SimulateOptions(trace=str(small_trace), hardware=["eyeriss"], block=4, frames=3))
    rows = res.rows
    assert len(rows) == 15 and (rows["sim_s"] > 0).all()
    assert (rows["stall_first_weights_s"] > 0).all()          # Eyeriss does not prefetch: every layer waits
    assert np.allclose(rows["sim_prefetched_s"], 0)
