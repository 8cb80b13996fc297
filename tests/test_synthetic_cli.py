"""Trace-free workloads: `--shape` chains and `--topology` files with synthetic masks give the rows an
equivalent handmade trace gives; bad input is refused in one line, exit 2, nothing written."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sparsesim.cli import main
from sparsesim.trace.format import LayerInfo, TraceWriter
from sparsesim.workload import synthetic
from sparsesim.workload.regions import linear_graph

SHAPES = ["4,8,3,1,1,20,24", "8,8,3,1,1,20,24", "8,6,1,1,0,20,24"]
COMPARED = ["layer_id", "frame", "kernel", "block", "active_blocks", "macs", "latency_s", "latency_dense_s",
            "energy_pj", "energy_dense_pj", "t_gather", "t_launch", "e_static"]


def handmade(path, layers: pd.DataFrame, masks: list[np.ndarray]) -> None:
    infos = [LayerInfo(**{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
             for row in layers.to_dict("records")]
    writer = TraceWriter(path, {"model": {"name": "handmade"}, "gate": {"kind": "input-norm", "threshold": 0.1}})
    writer.set_layers(infos, linear_graph(layers))     # the graph a tracer records: input -> layers -> output
    for t in range(masks[0].shape[0]):
        writer.add_frame(t, [m[t] for m in masks], {"psnr_db": float("nan")})
    writer.close(True, "complete")


def run(args, out) -> pd.DataFrame:
    assert main([*args, "-o", str(out)]) == 0
    return pd.read_parquet(out)


@pytest.mark.parametrize("mask", ["square", "clustered"])
def test_a_shape_chain_gives_the_rows_of_the_same_handmade_trace(tmp_path, mask):
    common = ["--hw", "h100,eyeriss", "--block", "2,4", "--kernel", "gather-scatter,fused,region", "--frames", "3"]
    synth = run(["estimate", *[a for s in SHAPES for a in ("--shape", s)], "--density", "0.2", "--mask", mask,
                 "--seed", "2", *common], tmp_path / "s.parquet")
    layers = synthetic.shape_layers(SHAPES)
    handmade(tmp_path / "t", layers, synthetic.masks(layers, 0.2, mask, 3, seed=2))
    traced = run(["estimate", str(tmp_path / "t"), *common], tmp_path / "t.parquet")
    assert set(synth["workload"]) == {f"shape-{mask}-d0.2"} and len(synth) == len(traced)
    pd.testing.assert_frame_equal(synth[COMPARED], traced[COMPARED], check_exact=True)
    assert (synth[synth["frame"] == 0]["macs"] == synth[synth["frame"] == 0]["macs_dense"]).all()   # frame 0 dense


def test_a_topology_gives_the_rows_of_the_same_shapes(tmp_path):
    topo = tmp_path / "net.csv"
    topo.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                    "a,22,26,3,3,4,8,1,\nb,20,24,3,3,8,8,1,\n")   # SCALE-Sim gives the IFMAP padded: P = 0 here
    common = ["--hw", "gtx1080ti", "--block", "4", "--density", "0.1,0.4", "--kernel", "region", "--mask-source", "given"]
    from_topology = run(["estimate", "--topology", str(topo), *common], tmp_path / "a.parquet")
    from_shapes = run(["estimate", "--shape", "4,8,3,1,0,22,26", "--shape", "8,8,3,1,0,20,24", *common],
                      tmp_path / "b.parquet")
    assert sorted(set(from_topology["workload"])) == ["net-square-d0.1", "net-square-d0.4"]
    pd.testing.assert_frame_equal(from_topology[COMPARED], from_shapes[COMPARED], check_exact=True)


def test_blocks_and_simulate_take_shapes_too(tmp_path, capsys):
    shape = ["--shape", "24,24,3,1,1,40,70"]
    assert main(["blocks", *shape, "--hw", "gtx1080ti", "--kernel", "gather-scatter,fused", "--density", "0.1,0.5",
                 "--mask-source", "given", "-o", str(tmp_path / "v.csv")]) == 0
    verdicts = pd.read_csv(tmp_path / "v.csv")
    assert set(verdicts["workload"]) == {"shape-square-d0.1", "shape-square-d0.5"}
    assert main(["simulate", *shape, "--hw", "gtx1080ti,eyeriss", "--block", "8", "--kernel", "fused,region",
                 "--density", "0.2", "-q", "-o", str(tmp_path / "s.csv")]) == 0
    rows = pd.read_csv(tmp_path / "s.csv")
    assert set(rows["kernel"]) == {"fused", "region"} and rows["sim_s"].gt(0).all()
    assert "2 of them dense" not in capsys.readouterr().out


@pytest.mark.parametrize("args,needle", [
    (["--shape", "24,24,3,1"], "--shape must be CIN,COUT,K,S,P,H,W integers"),
    (["--shape", "24,24,3,1,1,40,x"], "--shape must be CIN,COUT,K,S,P,H,W integers"),
    (["--shape", "24,24,9,1,0,4,4"], "does not fit"),
    (["--shape", "24,24,3,1,1,40,40", "--shape", "12,24,3,1,1,40,40"], "does not take the previous shape's output"),
    (["--shape", "24,24,3,1,1,40,40", "--density", "0"], "--density must be in (0, 1], got 0"),
    (["--shape", "24,24,3,1,1,40,40", "--density", "1.5"], "--density must be in (0, 1], got 1.5"),
    (["--shape", "24,24,3,1,1,40,40", "--density", "a"], "--density must be comma-separated numbers"),
    (["--shape", "24,24,3,1,1,40,40", "--mask", "stripes"], "--mask must be one of square, random, clustered"),
    (["--shape", "24,24,3,1,1,40,40", "--kernel", "tiled"], "--kernel 'tiled' is not a kernel strategy"),
    (["--shape", "24,24,3,1,1,40,40", "--frames", "0"], "--frames must be >= 1"),
    (["{trace}", "--shape", "24,24,3,1,1,40,40"], "not a trace and --shape together"),
    ([], "give a trace directory, --shape"),
])
@pytest.mark.parametrize("command", ["estimate", "blocks", "simulate"])
def test_bad_trace_free_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, small_trace, command, args, needle):
    out = tmp_path / "out.csv"
    argv = [command, *[str(small_trace) if a == "{trace}" else a for a in args], "--hw", "gtx1080ti", "-o", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())
