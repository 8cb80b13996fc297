"""Bring your own model: ONNX files, TorchScript files and Python factories trace like the zoo's models;
the PP-OCRv4 text detector (a real ONNX model with real weights) matches onnxruntime; bad models fail in
one line and write nothing."""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

import own_nets
from conftest import moving_square
from sparsesim import trace
from sparsesim.cli import main
from sparsesim.trace import models, video
from sparsesim.trace.models.onnx_file import unsupported
from sparsesim.trace.preprocess import Preprocess
from sparsesim.trace.tracer import to_tensor
from test_cli import assert_one_line_error, run_cli

TESTS = Path(__file__).parent
PPOCR_MEAN, PPOCR_STD = "0.485,0.456,0.406", "0.229,0.224,0.225"   # rapidocr's DetPreProcess, on BGR frames


def export(module: torch.nn.Module, path: Path, inputs: list[str], outputs: list[str]) -> Path:
    """torch -> ONNX with dynamic height and width (torch's TorchScript-based exporter: no onnxscript needed)."""
    example = tuple(torch.rand(1, 3, 48, 64) for _ in inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, str(path), dynamo=False, input_names=inputs, output_names=outputs,
                          dynamic_axes={n: {2: "h", 3: "w"} for n in inputs})
    return path


@pytest.fixture(scope="module")
def two_heads_onnx(tmp_path_factory) -> Path:
    return export(own_nets.two_heads(), tmp_path_factory.mktemp("onnx") / "two_heads.onnx", ["frame"], ["prob", "aux"])


@pytest.fixture(scope="module")
def two_heads_ts(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ts") / "two_heads.pt"
    with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13, and still what many users have
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(own_nets.two_heads()), str(path))
    return path


def traced(capsys, video_path, model, out, *extra) -> trace.Trace:
    code, _, err = run_cli(capsys, "trace", video_path, "--model", model, "--threshold", "0.05", "-o", out, "-q",
                           *extra)
    assert code == 0, err
    return trace.open(out)


def masks(t: trace.Trace) -> list[np.ndarray]:
    return [m.mask for m in t.masks()]


def test_onnx_export_and_torchscript_trace_to_the_torch_originals_masks(capsys, small_video, tmp_path,
                                                                        two_heads_onnx, two_heads_ts):
    original = traced(capsys, small_video, "python:own_nets:two_heads", tmp_path / "py")
    converted = traced(capsys, small_video, f"onnx:{two_heads_onnx}", tmp_path / "onnx")
    scripted = traced(capsys, small_video, f"torchscript:{two_heads_ts}", tmp_path / "ts")
    assert [layer.name for layer in original.layers] == ["c1", "c2", "up", "head", "aux"]
    for other in (converted, scripted):  # layer names are the ONNX node names; the exporter may order them otherwise
        assert sorted(layer.name for layer in other.layers) == ["/aux/Conv", "/c1/Conv", "/c2/Conv", "/head/Conv",
                                                                "/up/ConvTranspose"]
        torch_name = {layer.name: layer.name.split("/")[1] for layer in other.layers}  # '/c1/Conv' -> 'c1'
        shapes = other.layers_df.assign(name=other.layers_df["name"].map(torch_name)).drop(columns="id")
        assert shapes.set_index("name").sort_index().equals(
            original.layers_df.drop(columns="id").set_index("name").sort_index())
        mine = {(m.frame, torch_name[other.layers[m.layer].name]): m.mask for m in other.masks()}
        theirs = {(m.frame, original.layers[m.layer].name): m.mask for m in original.masks()}
        assert sorted(mine) == sorted(theirs) and len(mine) == 10 * 5
        for key, mask in theirs.items():
            np.testing.assert_array_equal(mine[key], mask)
        np.testing.assert_array_equal(other.frames["psnr_db"], original.frames["psnr_db"])
        assert sorted(other.graph.edges) != [] and \
            sorted((torch_name.get(a, a), torch_name.get(b, b)) for a, b in other.graph.edges) == \
            sorted(original.graph.edges)
    active = original.active.iloc[1:].to_numpy()
    assert 0 < active.mean() < 1  # the gates really skipped something, and not everything
    meta = converted.meta
    assert meta["model"]["name"] == "onnx:two_heads.onnx" and meta["quality"]["output"] == "prob"
    assert scripted.meta["quality"]["output"] == "0"   # the exporter's made-up output names are not offered
    assert meta["model"]["preprocess"]["layout"] == "nchw" and meta["model"]["preprocess"]["mean"] == [0.0]
    assert set(original.graph.predecessors("output")) == {"head"}   # the compared output, not the aux head


def test_the_quality_check_compares_the_output_it_is_told(capsys, small_video, tmp_path, two_heads_onnx,
                                                          two_heads_ts):
    by_name = traced(capsys, small_video, f"onnx:{two_heads_onnx}", tmp_path / "a", "--quality-output", "aux",
                     "--quality-peak", "4")
    by_index = traced(capsys, small_video, "python:own_nets:two_heads", tmp_path / "b", "--quality-output", "1",
                      "--quality-peak", "4")
    scripted = traced(capsys, small_video, f"torchscript:{two_heads_ts}", tmp_path / "d", "--quality-output", "1",
                      "--quality-peak", "4")
    np.testing.assert_array_equal(scripted.frames["psnr_db"], by_index.frames["psnr_db"])
    first = traced(capsys, small_video, "python:own_nets:two_heads", tmp_path / "c", "--frames", "3")
    assert by_name.meta["quality"]["output"] == "aux"
    assert by_name.meta["quality"]["peak"] == 4.0
    assert set(by_name.graph.predecessors("output")) == {"/aux/Conv"}
    np.testing.assert_array_equal(by_name.frames["psnr_db"], by_index.frames["psnr_db"])
    assert not np.allclose(by_index.frames["psnr_db"].iloc[1:3], first.frames["psnr_db"].iloc[1:3])


def test_python_factory_from_a_file_with_a_checkpoint(capsys, small_video, tmp_path):
    state = {k: v * 0.5 for k, v in own_nets.two_heads().state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "half.pt")
    loaded = models.load(f"python:{TESTS / 'own_nets.py'}:two_heads", tmp_path / "half.pt")
    torch.testing.assert_close(loaded.module.c1.weight, state["c1.weight"])
    t = traced(capsys, small_video, f"python:{TESTS / 'own_nets.py'}:two_heads", tmp_path / "t", "--checkpoint",
               tmp_path / "half.pt", "--frames", "3")
    assert t.meta["model"]["weights"] == str(tmp_path / "half.pt")
    assert t.meta["model"]["name"] == "python:own_nets.py:two_heads"


def test_two_frame_inputs_make_a_frame_pair_per_step(capsys, small_video, tmp_path):
    pair = export(own_nets.pair_net(), tmp_path / "pair.onnx", ["before", "after"], ["out"])
    t = traced(capsys, small_video, f"onnx:{pair}", tmp_path / "t")
    assert t.num_frames == 9 and t.meta["model"]["frames_per_step"] == 2
    swapped = traced(capsys, small_video, f"onnx:{pair}", tmp_path / "s", "--frame-inputs", "after,before")
    assert swapped.meta["model"]["preprocess"]["frame_inputs"] == ["after", "before"]
    assert not all(np.array_equal(a, b) for a, b in zip(masks(t), masks(swapped)))


def static_model(path: Path, shape: list[int], metadata: dict[str, str]) -> Path:
    """A 1-conv ONNX model with a fixed input shape and preprocessing stated in its metadata."""
    nhwc = shape[-1] == 3
    nodes = ([helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2])] if nhwc else []) + [
        helper.make_node("Conv", ["t" if nhwc else "x", "w"], ["y"], name="conv.0", pads=[1, 1, 1, 1])]
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 3, 3, 3], np.ones(54, np.float32) / 27)
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    helper.set_model_props(model, metadata)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("shape,layout", [([1, 3, 32, 40], "nchw"), ([1, 32, 40, 3], "nhwc")])
def test_preprocessing_defaults_come_from_the_model(capsys, small_video, tmp_path, shape, layout):
    path = static_model(tmp_path / "m.onnx", shape, {"mean": "[0.5, 0.5, 0.5]", "std": "0.25"})
    t = traced(capsys, small_video, f"onnx:{path}", tmp_path / "t", "--frames", "2")
    pre = t.meta["model"]["preprocess"]
    assert (pre["input_size"], pre["mean"], pre["std"], pre["layout"]) == ([40, 32], [0.5, 0.5, 0.5], [0.25], layout)
    assert t.meta["video"]["size"] == [40, 32] and t.layers[0].name == "conv.0"   # the ONNX node's own name
    given = traced(capsys, small_video, f"onnx:{path}", tmp_path / "g", "--frames", "2", "--mean", "0.1")
    assert given.meta["model"]["preprocess"]["mean"] == [0.1]   # what the user gives wins


def test_preprocessing_is_what_the_model_receives(tmp_path):
    path = static_model(tmp_path / "m.onnx", [1, 3, 4, 4], {})
    pre = Preprocess.parse(mean="0.1,0.2,0.3", std="0.5", color="bgr")
    run = models.load(f"onnx:{path}", preprocess=pre).spec.run
    frame = torch.rand(1, 3, 4, 4)
    (x,) = run.tensors([frame])
    expected = (frame.flip(1) - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / 0.5
    torch.testing.assert_close(x, expected)


# -- the PP-OCRv4 text detector: a real ONNX model with real weights ----------------------------------------

def ppocr_path() -> Path:
    return models.package_file("rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx",
                               "pip install --no-deps rapidocr-onnxruntime==1.3.24")


@torch.inference_mode()
def test_ppocr_detector_matches_onnxruntime_densely_on_a_real_frame():
    import onnxruntime
    frame = next(video.frames(video.resolve_video("sample:bikes"), 70, 1, (384, 160)))  # the taxi sign's text
    loaded = models.load(f"onnx:{ppocr_path()}", preprocess=Preprocess.parse(mean=PPOCR_MEAN, std=PPOCR_STD,
                                                                            color="bgr"))
    x = to_tensor(frame, 32, "cpu")
    ours = loaded.spec.run(loaded.module, [x]).numpy()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(ppocr_path()), options, providers=["CPUExecutionProvider"])
    (reference,) = session.run(None, {"x": loaded.spec.run.tensors([x])[0].numpy()})
    assert ours.shape == reference.shape == (1, 1, 160, 384)
    assert (reference > 0.3).mean() > 0.005   # real text found: the comparison is not of two empty maps
    assert np.abs(ours - reference).max() < 1e-3 * np.abs(reference).max()
    n = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in loaded.module.modules())
    assert n == 64


@pytest.mark.slow
def test_ppocr_detector_traces_the_sample_video_as_committed(capsys, tmp_path):
    committed = trace.open(TESTS.parent / "traces" / "bikes-ch_PP-OCRv4_det_infer-input-norm-e0.1")
    t = traced(capsys, "sample:bikes", f"onnx:{ppocr_path()}", tmp_path / "t", "--input-size", "384x160",
               "--mean", PPOCR_MEAN, "--std", PPOCR_STD, "--color", "bgr", "--start", "56", "--frames", "4",
               "--gate", "input-norm", "--threshold", "0.1", "--threshold-mode", "absolute")   # as the committed trace was traced
    assert t.complete and t.num_frames == 4 and len(t.layers) == 64
    assert t.layers[0].name == "p2o.Conv.0" and t.meta["model"]["name"] == "onnx:ch_PP-OCRv4_det_infer.onnx"
    assert t.meta["quality"]["output"] == "sigmoid_0.tmp_0"
    assert 0 < t.active.iloc[1:].to_numpy().mean() < 1
    assert t.layers_df.equals(committed.layers_df)
    assert t.meta["model"]["preprocess"] == committed.meta["model"]["preprocess"]
    theirs = [m.mask for m in committed.masks() if m.frame < 4]
    for a, b in zip(masks(t), theirs, strict=True):   # the gates are causal: the first 4 frames are the same
        np.testing.assert_array_equal(a, b)


# -- bad models: one line, exit 2, nothing written ------------------------------------------------------------

def unsupported_model(path: Path) -> Path:
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"), helper.make_node("Hardmax", ["c"], ["h"]),
             helper.make_node("Magic", ["h"], ["y"], domain="com.example")]
    w = helper.make_tensor("w", TensorProto.FLOAT, [1, 3, 1, 1], [1.0, 1.0, 1.0])
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)])
    onnx.save(model, str(path))
    return path


def test_unsupported_operators_are_listed(tmp_path):
    model = onnx.load(str(unsupported_model(tmp_path / "u.onnx")))
    assert unsupported(model) == ["Hardmax", "com.example:Magic"]


@pytest.fixture
def bad_models(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.onnx").write_text("this is not an ONNX model\n")
    torch.save({"w": torch.zeros(2)}, bad / "state.pt")
    return {"unsupported": unsupported_model(bad / "u.onnx"), "text": bad / "notes.onnx",
            "state": bad / "state.pt", "static": static_model(bad / "s.onnx", [1, 3, 32, 40], {})}


@pytest.mark.parametrize("args,needles", [
    (lambda b, o: ["--model", f"onnx:{b['unsupported']}"], ["operators the ONNX converter does not support",
                                                           "Hardmax, com.example:Magic"]),
    (lambda b, o: ["--model", f"onnx:{b['text'].parent / 'missing.onnx'}"], ["ONNX model file not found"]),
    (lambda b, o: ["--model", f"onnx:{b['text']}"], ["not an ONNX model", "notes.onnx"]),
    (lambda b, o: ["--model", f"torchscript:{b['state']}"], ["not a TorchScript file", "state.pt"]),
    (lambda b, o: ["--model", f"torchscript:{b['text'].parent / 'missing.pt'}"], ["TorchScript model file not found"]),
    (lambda b, o: ["--model", "python:own_nets:raises"], ["factory python:own_nets:raises raised ValueError",
                                                          "weights server unreachable"]),
    (lambda b, o: ["--model", "python:own_nets:not_a_module"], ["returned int, not a torch.nn.Module"]),
    (lambda b, o: ["--model", "python:own_nets:nowhere"], ["own_nets has no function nowhere"]),
    (lambda b, o: ["--model", "python:no_such_package.nets:build"], ["cannot import no_such_package.nets",
                                                                     "ModuleNotFoundError"]),
    (lambda b, o: ["--model", "python:own_nets"], ["give python:MODULE:FACTORY"]),
    (lambda b, o: ["--model", f"onnx:{b['static']}", "--checkpoint", b["state"]], ["--checkpoint does not apply"]),
    (lambda b, o: ["--model", "mtcnn-pnet", "--mean", "0.5"], ["--mean is for onnx:PATH.onnx"]),
    (lambda b, o: ["--model", f"onnx:{b['static']}", "--frame-inputs", "img"], ["--frame-inputs names img",
                                                                               "its inputs: x"]),
    (lambda b, o: ["--model", f"onnx:{b['static']}", "--quality-output", "boxes"], ["--quality-output 'boxes'",
                                                                                   "its outputs: y"]),
    (lambda b, o: ["--model", "python:own_nets:two_heads", "--quality-output", "7"], ["--quality-output '7'"]),
    (lambda b, o: ["--model", f"onnx:{b['static']}", "--input-size", "40x32", "--size", "40x32"],
     ["give --size or --input-size, not both"]),
    (lambda b, o: ["--model", "python:own_nets:picky"], ["model python:own_nets:picky failed on a 64x48 frame",
                                                        "RuntimeError"]),
    (lambda b, o: ["--model", f"onnx:{b['static']}", "--mean", "0.5,0.5"], ["--mean must be 1 or 3"]),
    (lambda b, o: ["--model", f"onnx:{b['static']}", "--std", "0"], ["--std must not be 0"]),
])
def test_bad_models_get_one_line_and_leave_no_file(capsys, bad_models, small_video, tmp_path, args, needles):
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run_cli(capsys, "trace", small_video, *args(bad_models, tmp_path), "-o", tmp_path / "out", "-q")
    assert_one_line_error(code, err, *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert "torchvision" not in sys.modules   # the converter's stand-in never leaks


def test_a_different_preprocessing_is_a_different_trace(capsys, small_video, tmp_path, two_heads_onnx):
    traced(capsys, small_video, f"onnx:{two_heads_onnx}", tmp_path / "t", "--frames", "2")
    meta = (tmp_path / "t" / "meta.json").read_text()
    traced(capsys, small_video, f"onnx:{two_heads_onnx}", tmp_path / "t", "--frames", "2")  # same: replaced
    code, _, err = run_cli(capsys, "trace", small_video, "--model", f"onnx:{two_heads_onnx}", "--frames", "2",
                           "--threshold", "0.05", "-o", tmp_path / "t", "-q", "--mean", "0.5")
    assert_one_line_error(code, err, "already holds a different trace")
    assert json.loads(meta)["identity"] == json.loads((tmp_path / "t" / "meta.json").read_text())["identity"]


def test_default_output_is_named_after_the_model_file(capsys, small_video, tmp_path, two_heads_onnx, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "trace", small_video, "--model", f"onnx:{two_heads_onnx}", "--frames", "2", "-q")
    assert code == 0, err
    assert (tmp_path / "traces" / "square-two_heads-delta-rel-e0.1" / "meta.json").is_file()


def test_many_videos_with_an_own_model_in_one_process(capsys, tmp_path, two_heads_onnx, monkeypatch):
    for i in range(2):
        video.encode(tmp_path / f"clip{i}.mp4", moving_square(4, seed=i))
    monkeypatch.chdir(two_heads_onnx.parent)   # a relative model path: canonical for every worker
    code, out, err = run_cli(capsys, "trace", tmp_path, "--model", "onnx:two_heads.onnx", "-o", tmp_path / "all", "-q")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "all").iterdir() if p.is_dir()) == \
        ["clip0-two_heads-delta-rel-e0.1", "clip1-two_heads-delta-rel-e0.1"]
