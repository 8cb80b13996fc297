"""`sparsesim simulate` as a user runs it: on a real trace, and on SCALE-Sim's own files."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sparsesim.cli import main

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "scalesim"


def test_simulate_a_trace_beside_the_analytical_model(small_trace, tmp_path, capsys):
    out = tmp_path / "sim.parquet"
    assert main(["simulate", str(small_trace), "--hw", "tpu-v1,eyeriss,h100", "--block", "4", "-q", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "simulated vs analytical" in printed and "widest gaps" in printed
    rows = pd.read_parquet(out)
    assert len(rows) == 3 * 5 * 10                        # hw x layers x frames
    assert (rows["sim_s"] > 0).all() and (rows["analytical_s"] > 0).all()
    stalls = rows.filter(like="stall_")
    assert (stalls >= 0).all().all()
    assert rows["sim_utilisation"].between(0, 1).all() and (rows["sim_backing_words"] > 0).all()
    assert set(rows["sim_backing_level"]) <= {"dram", "l2", "buffer"}
    summary = pd.read_parquet(tmp_path / "sim.summary.parquet")
    assert set(summary["hw"]) == {"tpu-v1", "eyeriss", "h100"}
    layers = pd.read_parquet(tmp_path / "sim.layers.parquet")
    assert len(layers) == 3 * 5
    again = tmp_path / "again.parquet"
    assert main(["simulate", str(small_trace), "--hw", "tpu-v1,eyeriss,h100", "--block", "4", "-q", "-o", str(again)]) == 0
    pd.testing.assert_frame_equal(rows, pd.read_parquet(again))     # bit for bit


def test_simulate_some_layers_and_frames(small_trace, tmp_path):
    out = tmp_path / "sim.csv"
    layer = pd.read_parquet(small_trace / "layers.parquet")["name"].iloc[1]
    assert main(["simulate", str(small_trace), "--hw", "gemmini", "--layers", layer, "--frames", "3", "-q",
                 "-o", str(out)]) == 0
    rows = pd.read_csv(out)
    assert set(rows["layer"]) == {layer} and rows["frame"].max() == 2


def test_simulate_scalesim_files(tmp_path, capsys):
    out = tmp_path / "ss.csv"
    assert main(["simulate", "--topology", str(BENCH / "l3_proj1x1.csv"), "--config", str(BENCH / "a32_os_user10.cfg"),
                 "-o", str(out)]) == 0
    assert "SCALE-Sim terms" in capsys.readouterr().out
    row = pd.read_csv(out).iloc[0]
    assert row["layer"] == "l3_proj1x1" and row["total_cycles"] > 0 and row["dram_filter_reads"] > 0


@pytest.mark.parametrize("args,needle", [
    (["--hw", "cpu"], "the simulator covers"),
    (["--hw", "nope"], "unknown hardware 'nope'"),
    (["--block", "0"], "--block must be >= 1"),
    (["--layers", "nope"], "no layer 'nope'"),
    (["--frames", "0"], "--frames must be >= 1"),
    (["-o", "x.txt"], "-o must end in .parquet or .csv"),
])
def test_bad_trace_arguments(small_trace, args, needle, capsys, tmp_path):
    assert main(["simulate", str(small_trace), "-q", *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("topology,config,needle", [
    ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\nl,8,8,3,3,x,4,1,\n",
     None, "Channels must be an integer"),
    ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\nl,2,2,3,3,4,4,1,\n",
     None, "larger than the ifmap"),
    ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides, Sparsity,\n"
     "l,8,8,3,3,4,4,1,5:4,\n", None, "keeps more than it has"),
    ("Layer name, IFMAP Height,\nl,8,\n", None, "expected at least 8 columns"),
    (None, "[architecture_presets]\nArrayHeight: 8\n", "Dataflow is missing"),
    (None, "[architecture_presets]\nArrayHeight: 8\nArrayWidth: 8\nIfmapSramSzkB: 1\nFilterSramSzkB: 1\n"
     "OfmapSramSzkB: 1\nDataflow: rs\n", "dataflow must be one of"),
    (None, "not an ini file", "not a SCALE-Sim config"),
])
def test_bad_scalesim_files(tmp_path, capsys, topology, config, needle):
    topo = _write(tmp_path / "t.csv", topology) if topology else str(BENCH / "l4_proj1x1.csv")
    cfg = _write(tmp_path / "c.cfg", config) if config else str(BENCH / "a32_ws_user10.cfg")
    assert main(["simulate", "--topology", topo, "--config", cfg]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_topology_and_config_go_together(capsys, small_trace):
    assert main(["simulate", "--topology", str(BENCH / "l4_proj1x1.csv")]) == 2
    assert "together" in capsys.readouterr().err
    assert main(["simulate"]) == 2
    assert "give a trace directory" in capsys.readouterr().err
    assert main(["simulate", "--topology", "/nope.csv", "--config", str(BENCH / "a32_ws_user10.cfg")]) == 2
    assert "topology file not found" in capsys.readouterr().err
