"""`--model torchscript:PATH.pt` and `--model python:MODULE:FACTORY`: any torch model, without editing
sparsesim.

- A Python factory is a function taking no argument and returning an `nn.Module` (`--checkpoint` loads a
  state dict into it); MODULE is an importable module (the current directory is searched first, as
  `python -m` does) or a `.py` file. Its conv layers are gated under their module names.
- A TorchScript module is compiled: its conv layers cannot be swapped for gated ones. It is exported to
  ONNX in memory (torch's TorchScript-based exporter, the one that takes compiled modules) and converted
  back like an ONNX file, so its layers carry the exporter's names (`/backbone/conv1/Conv`).
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import io
import os
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from ...errors import ModelError, OptionError, SparsesimError
from ..preprocess import Preprocess
from . import onnx_file
from .imported import FrameRun, first_line, loaded_model, state_sha256
from .registry import LoadedModel, ModelSpec, Source, file_sha256, load_checkpoint, read_checkpoint, register_source

EXPORT_SIZE = (224, 224)  # (W, H) of the example frames the export runs on without --input-size (H, W stay dynamic)


# -- TorchScript -----------------------------------------------------------------------------------------

def load_torchscript(arg: str, checkpoint: str | None, device: str, pre: Preprocess) -> LoadedModel:
    path = onnx_file.existing(arg, "TorchScript")
    if checkpoint:
        raise OptionError("checkpoint", "does not apply to TorchScript models: the file carries its own weights")
    try:
        with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; files of it are still what users have
            warnings.simplefilter("ignore", DeprecationWarning)
            scripted = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # a zip that is no TorchScript archive, a plain state dict, junk ...
        raise ModelError(f"not a TorchScript file: {path} ({first_line(e)})") from None
    inputs = [a.name for a in scripted.forward.schema.arguments[1:]]  # without self
    name = f"torchscript:{path.name}"
    pre = pre.resolved()
    run = FrameRun(name, pre, inputs)  # checks the frame inputs before the export needs them
    model = _to_onnx(scripted, run, path)
    return onnx_file.convert(model, name, path, pre, device,
                             f"TorchScript model {path.name}, exported to ONNX and converted to torch by onnx2torch",
                             named_outputs=False)


def _to_onnx(scripted: torch.jit.ScriptModule, run: FrameRun, path: Path):
    import onnx
    w, h = run.pre.input_size or EXPORT_SIZE
    frame = torch.zeros(1, 3, h, w)
    spatial = {1: "height", 2: "width"} if run.pre.layout == "nhwc" else {2: "height", 3: "width"}
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():  # the exporter warns that it is the older one: it is the one that takes compiled modules
            warnings.simplefilter("ignore")
            torch.onnx.export(scripted, tuple(run.tensors([frame] * len(run.frames))), buffer, dynamo=False,
                              input_names=list(run.inputs), dynamic_axes={n: spatial for n in run.inputs})
    except Exception as e:
        raise ModelError(f"cannot export TorchScript model {path} to ONNX for conversion: {first_line(e)}") from None
    return onnx.load_from_string(buffer.getvalue())


# -- Python factory --------------------------------------------------------------------------------------

def _factory(arg: str):
    target, sep, attr = arg.rpartition(":")
    if not sep or not target or not attr.isidentifier():
        raise ModelError(f"python:{arg}: give python:MODULE:FACTORY (e.g. python:mynets.detector:build) "
                         "or python:FILE.py:FACTORY")
    try:
        module = _import(target)
    except SparsesimError:
        raise
    except BaseException as e:  # ImportError, SyntaxError, whatever the module raises at import, SystemExit
        raise ModelError(f"cannot import {target} for python:{arg} ({first_line(e)})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ModelError(f"python:{arg}: {target} has no function {attr}")
    return factory


def _import(target: str):
    if target.endswith(".py"):
        path = onnx_file.existing(target, "Python")
        spec = importlib.util.spec_from_file_location(f"sparsesim_user_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    if os.getcwd() not in sys.path:  # as `python -m` would: the user's own package where they stand
        sys.path.insert(0, os.getcwd())
    return importlib.import_module(target)


def load_python(arg: str, checkpoint: str | None, device: str, pre: Preprocess) -> LoadedModel:
    factory = _factory(arg)
    try:
        module = factory()
    except SparsesimError:
        raise
    except Exception as e:
        raise ModelError(f"factory python:{arg} raised {first_line(e)}") from None
    if not isinstance(module, nn.Module):
        raise ModelError(f"factory python:{arg} returned {type(module).__name__}, not a torch.nn.Module")
    name = f"python:{arg.rpartition(':')[0].rsplit('/', 1)[-1]}:{arg.rpartition(':')[2]}"
    params = inspect.signature(module.forward).parameters.values()
    inputs = [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    run = FrameRun(name, pre.resolved(), inputs)
    description = f"torch module {type(module).__name__} from the factory python:{arg}"
    if not checkpoint:
        return loaded_model(name, description, module, run, f"python:{arg}", state_sha256(module), device)
    path = Path(checkpoint)
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    spec = ModelSpec(name=name, description=description, frames_per_step=1, build=lambda: module,
                     weights=lambda: path, run=run)
    load_checkpoint(module, read_checkpoint(path), spec, path)
    return loaded_model(name, description, module, run, path, file_sha256(path), device)


def _check_python(arg: str) -> None:
    _factory(arg)


def _canonical_python(arg: str) -> str:
    target, _, attr = arg.rpartition(":")
    return f"{Path(target).resolve()}:{attr}" if target.endswith(".py") else arg


register_source(Source(
    prefix="torchscript", usage="torchscript:PATH.pt", load=load_torchscript,
    check=functools.partial(onnx_file.existing, kind="TorchScript"), slug=lambda arg: Path(arg).stem,
    canonical=lambda arg: str(Path(arg).expanduser().resolve())))
register_source(Source(
    prefix="python", usage="python:MODULE:FACTORY", load=load_python, check=_check_python,
    slug=lambda arg: arg.rpartition(":")[2], canonical=_canonical_python))
