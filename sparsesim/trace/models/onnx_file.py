"""`--model onnx:PATH.onnx`: an ONNX model converted to torch and traced like the zoo's.

The converter is onnx2torch (pinned in requirements-weights.txt, installed with --no-deps): it declares
torchvision as a dependency, but only its NonMaxSuppression and RoiAlign converters use it, and PyPI's
torchvision wheel is a CUDA build that breaks beside the local CPU torch. Without torchvision, onnx2torch
is imported with a stand-in that fails loudly, and those two operators are listed as unsupported.

Each ONNX node becomes one torch module named after the node (onnx2torch writes a `.` as `/`: torch module
names cannot hold dots), so every Conv/ConvTranspose is gated under its ONNX name. Weights stored as
Constant nodes (Paddle2ONNX writes them so) are moved to initializers first: onnx2torch reads conv
weights from initializers only.
"""
from __future__ import annotations

import functools
import importlib.util
import sys
import types
from dataclasses import dataclass
from pathlib import Path

from ...errors import ModelError, OptionError
from ..preprocess import Preprocess
from ..skipconv import LAYER_NAMES
from .imported import FrameRun, first_line, loaded_model
from .registry import LoadedModel, Source, file_sha256, register_source

NEEDS_TORCHVISION = ("NonMaxSuppression", "RoiAlign")
CONVS = ("Conv", "ConvTranspose")
METADATA_KEYS = ("mean", "std", "layout", "color")   # preprocessing a model may state in metadata_props


def onnx2torch():
    """The converter, imported once (with a torchvision stand-in where torchvision is not installed)."""
    if "onnx2torch" in sys.modules or importlib.util.find_spec("torchvision") is not None:
        import onnx2torch as module
        return module
    if importlib.util.find_spec("onnx2torch") is None:
        raise ModelError("ONNX models need onnx2torch: pip install --no-deps onnx2torch==1.5.15")

    def missing(*args, **kwargs):
        raise ModelError("this ONNX operator needs torchvision, which is not installed")

    stand_in = types.ModuleType("torchvision")
    stand_in.ops = types.ModuleType("torchvision.ops")
    stand_in.ops.nms = stand_in.ops.box_convert = stand_in.ops.roi_align = missing
    sys.modules.update({"torchvision": stand_in, "torchvision.ops": stand_in.ops})
    try:
        import onnx2torch as module
    finally:  # only onnx2torch's two modules keep the stand-in; nothing else may mistake it for torchvision
        del sys.modules["torchvision"], sys.modules["torchvision.ops"]
    return module


def existing(arg: str, kind: str) -> Path:
    path = Path(arg).expanduser()
    if not path.exists():
        raise ModelError(f"{kind} model file not found: {arg}")
    if not path.is_file():
        raise ModelError(f"{kind} model is not a file: {arg}")
    return path


def read(path: Path):
    """The ModelProto of an ONNX file, checked; a file that is not ONNX gives a one-line error."""
    import onnx
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # protobuf's DecodeError, onnx's ValidationError, external data missing ...
        raise ModelError(f"not an ONNX model: {path} ({first_line(e)})") from None
    if not model.graph.node:
        raise ModelError(f"not an ONNX model: {path} (no graph nodes)")
    return model


def fold_constants(model) -> None:
    """Constant nodes holding a tensor become initializers (in place)."""
    kept = []
    for node in model.graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            tensor = model.graph.initializer.add()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
        else:
            kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)


def unsupported(model) -> list[str]:
    """Operators of the graph that the converter cannot turn into torch (domain:op for other domains)."""
    from onnx2torch.node_converters import get_converter
    opsets = {o.domain or "": o.version for o in model.opset_import}
    torchvision = importlib.util.find_spec("torchvision") is not None
    missing = set()
    for node in model.graph.node:
        label = node.op_type if not node.domain else f"{node.domain}:{node.op_type}"
        try:
            get_converter(domain=node.domain, operation_type=node.op_type, version=opsets.get(node.domain or "", 1))
        except NotImplementedError:
            missing.add(label)
        if node.op_type in NEEDS_TORCHVISION and not torchvision:
            missing.add(f"{label} (needs torchvision)")
    return sorted(missing)


def inputs_of(model) -> list:
    """The graph inputs that are fed at run time (older exporters list initializers as inputs too)."""
    initializers = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def stated(model) -> Preprocess:
    """Preprocessing the model states: a fixed input shape (size, layout) and `mean`/`std`/`layout`/`color`
    in its metadata."""
    meta = {p.key.lower(): p.value for p in model.metadata_props if p.key.lower() in METADATA_KEYS}
    size, layout = None, None
    shapes = [[d.dim_value if d.HasField("dim_value") else 0 for d in i.type.tensor_type.shape.dim]
              for i in inputs_of(model)]
    if shapes and len(shapes[0]) == 4:
        _, a, b, c = shapes[0]
        layout = "nchw" if a in (1, 3) and c not in (1, 3) else "nhwc" if c in (1, 3) and a not in (1, 3) else None
        h, w = (b, c) if layout == "nchw" else (a, b) if layout == "nhwc" else (0, 0)
        size = (w, h) if h > 0 and w > 0 else None
    try:
        found = Preprocess.parse(**meta)
    except OptionError as e:
        raise ModelError(f"the model's metadata states unreadable preprocessing: {e}") from None
    return found.over(Preprocess(input_size=size, layout=layout))


@dataclass(frozen=True)
class OutputOrder:
    """The converted module's result as one value per graph output, in the graph's order: onnx2torch returns
    the output nodes' results (once per node, a tuple for a node with several outputs; bare for one node)."""
    nodes: int                                    # distinct nodes producing graph outputs
    positions: tuple[tuple[int, int | None], ...]  # per graph output: (node, index among its outputs or None)

    @classmethod
    def of(cls, model) -> "OutputOrder":
        made_by = {name: i for i, node in enumerate(model.graph.node) for name in node.output}
        producers = [made_by[o.name] for o in model.graph.output]
        nodes = list(dict.fromkeys(producers))

        def position(name: str, node: int) -> tuple[int, int | None]:
            outs = list(model.graph.node[node].output)
            return nodes.index(node), (outs.index(name) if len(outs) > 1 else None)

        return cls(len(nodes), tuple(position(o.name, i) for o, i in zip(model.graph.output, producers)))

    def __call__(self, out: object) -> list:
        per_node = [out] if self.nodes == 1 else list(out)
        return [per_node[n] if j is None else per_node[n][j] for n, j in self.positions]


def layer_names(model) -> dict[str, str]:
    """{module path: ONNX node name} of the converted module's convs (onnx2torch's module names turn dots into
    slashes; a conv with asymmetric padding becomes Sequential(pad, conv): its conv is `<name>.1`)."""
    from onnx2torch.onnx_graph import OnnxGraph
    paths = OnnxGraph(model.graph).nodes.keys()   # onnx2torch's unique module name per node, in node order
    convs = [(path, node.name or path) for path, node in zip(paths, model.graph.node) if node.op_type in CONVS]
    return {p: name for path, name in convs for p in (path, f"{path}.1")}


def convert(model, name: str, path: Path, pre: Preprocess, device: str, description: str,
            named_outputs: bool = True) -> LoadedModel:
    """An ONNX ModelProto (already read) converted and wrapped as a model from a source; without
    `named_outputs` (names an exporter made up), outputs are chosen by index only."""
    converter = onnx2torch()
    fold_constants(model)
    missing = unsupported(model)
    if missing:
        raise ModelError(f"{path}: operators the ONNX converter does not support: {', '.join(missing)}")
    outputs = [o.name for o in model.graph.output]
    passed = [o for o in outputs if o not in {name for node in model.graph.node for name in node.output}]
    if passed:
        raise ModelError(f"{path}: outputs that no node computes (inputs or constants passed through): "
                         f"{', '.join(passed)}")
    run = FrameRun(name, pre.over(stated(model)).resolved(), [i.name for i in inputs_of(model)],
                   outputs if named_outputs else (), OutputOrder.of(model))
    try:
        module = converter.convert(model)
    except Exception as e:  # onnx2torch raises NotImplementedError, KeyError, ValueError ... per converter
        raise ModelError(f"cannot convert {path} to torch: {first_line(e)}") from None
    setattr(module, LAYER_NAMES, layer_names(model))
    return loaded_model(name, description, module, run, path, file_sha256(path), device)


def load(arg: str, checkpoint: str | None, device: str, pre: Preprocess) -> LoadedModel:
    path = existing(arg, "ONNX")
    if checkpoint:
        raise OptionError("checkpoint", "does not apply to ONNX models: the file carries its own weights")
    model = read(path)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    producer = " ".join(filter(None, (model.producer_name, model.producer_version))) or "unknown producer"
    description = (f"ONNX model {path.name} ({len(model.graph.node)} nodes, opset {opset}, {producer}), "
                   "converted to torch by onnx2torch")
    return convert(model, f"onnx:{path.name}", path, pre, device, description)


register_source(Source(
    prefix="onnx", usage="onnx:PATH.onnx", load=load, check=functools.partial(existing, kind="ONNX"),
    slug=lambda arg: Path(arg).stem, canonical=lambda arg: str(Path(arg).expanduser().resolve())))
