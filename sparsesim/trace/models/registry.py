"""The zoo's registry: model specs, weights located in installed packages, checkpoints checked; and the
registry of model *sources* (`onnx:PATH`, `torchscript:PATH`, `python:MODULE:FACTORY`): a model name with a
registered prefix is loaded by its source instead of looked up in the zoo."""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ...errors import ModelError, OptionError
from ..preprocess import Preprocess


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    frames_per_step: int                      # consecutive frames one forward pass consumes
    build: Callable[[], nn.Module]            # the architecture, randomly initialised
    weights: Callable[[], Path]               # where the default trained weights live
    # frames (each (1,3,H,W) float in [0,1]) -> the primary output, a tensor in [0,1] (quality is
    # the PSNR of the gated against the dense primary output, peak 1)
    run: Callable[[nn.Module, Sequence[torch.Tensor]], torch.Tensor]
    ignored_keys: tuple[str, ...] = ()        # checkpoint key prefixes the traced model does not use
    pad_multiple: int = 1                     # inputs are padded to a multiple of this (H and W)
    # packaged weights in another format (e.g. ncnn): path -> state dict; user checkpoints stay torch files
    reader: Callable[[Path], dict[str, torch.Tensor]] | None = None
    # models from a source: the preprocessing they run with (every field resolved), recorded in the trace
    preprocess: Preprocess | None = None
    output_peak: float = 1.0                  # PSNR peak of the primary output (the zoo's are in [0, 1])
    output_name: str = "primary"              # which output the quality check compares (meta.json)
    # what the model does, for ground truth (trace.ground_truth): interpolation, super-resolution,
    # detection; '' for models that state none (those from a source)
    task: str = ""
    scale: int = 1                            # output size over input size (super-resolution)


@dataclass(frozen=True)
class LoadedModel:
    spec: ModelSpec
    module: nn.Module
    weights_path: str
    weights_sha256: str = field(repr=False)


@dataclass(frozen=True)
class Source:
    """Where models outside the zoo come from: `<prefix>:<argument>`."""
    prefix: str
    usage: str                                # e.g. "onnx:PATH.onnx", for help and errors
    # (argument, checkpoint, device, preprocess) -> the loaded model
    load: Callable[[str, str | None, str, Preprocess], "LoadedModel"]
    check: Callable[[str], None]              # cheap early check (the file exists ...), raises ModelError
    slug: Callable[[str], str]                # short name for default trace directories
    canonical: Callable[[str], str] = lambda arg: arg   # the same model from any working directory


_REGISTRY: dict[str, ModelSpec] = {}
_SOURCES: dict[str, Source] = {}


def register(spec: ModelSpec) -> ModelSpec:
    _REGISTRY[spec.name] = spec
    return spec


def register_source(source: Source) -> Source:
    _SOURCES[source.prefix] = source
    return source


def names() -> list[str]:
    return sorted(_REGISTRY)


def source_usages() -> list[str]:
    return [s.usage for s in _SOURCES.values()]


def source_of(name: str) -> tuple[Source, str] | None:
    """(source, argument) for `prefix:argument` names of a registered source, else None (a zoo name)."""
    prefix, sep, arg = name.partition(":")
    return (_SOURCES[prefix], arg) if sep and prefix in _SOURCES else None


def get(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; choose from: {', '.join(names() + source_usages())}")
    return _REGISTRY[name]


def check(name: str) -> None:
    """Fail early (before any worker starts) on an unknown model or a missing model file."""
    found = source_of(name)
    if found:
        found[0].check(found[1])
    else:
        get(name)


def slug(name: str) -> str:
    found = source_of(name)
    return found[0].slug(found[1]) if found else name


def canonical(name: str) -> str:
    """The model name with its file paths absolute, so that workers elsewhere load the same file."""
    found = source_of(name)
    return f"{found[0].prefix}:{found[0].canonical(found[1])}" if found else name


def package_file(package: str, relative: str, install_hint: str) -> Path:
    """A file shipped inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"weights not installed: {install_hint}")
    path = Path(spec.submodule_search_locations[0]) / relative
    if not path.is_file():
        raise ModelError(f"weights file missing: {path} ({install_hint})")
    return path


def _state_dict_from(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    for key in ("state_dict", "model", "params"):  # common wrappers of training checkpoints
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise ModelError(f"checkpoint {path} holds no state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _summarise(keys: list[str], limit: int = 4) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def check_fits(module: nn.Module, state: dict[str, torch.Tensor], spec: ModelSpec, path: Path) -> None:
    """Raise a ModelError listing missing, unexpected and mis-shaped keys."""
    expected = module.state_dict()
    used = {k: v for k, v in state.items() if not k.startswith(spec.ignored_keys or ("\0",))}
    missing = sorted(set(expected) - set(used))
    unexpected = sorted(set(used) - set(expected))
    shapes = sorted(f"{k} {tuple(used[k].shape)} != {tuple(expected[k].shape)}"
                    for k in set(used) & set(expected) if used[k].shape != expected[k].shape)
    # A NaN or infinite weight would run, and gate every location on or off without a word.
    nonfinite = sorted(k for k in set(used) & set(expected)
                       if used[k].is_floating_point() and not torch.isfinite(used[k]).all())
    problems = [f"{label}: {_summarise(keys)}" for label, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", shapes),
                 ("non-finite values", nonfinite)) if keys]
    if problems:
        raise ModelError(f"checkpoint {path} does not fit model {spec.name}: {'; '.join(problems)}")


def load(name: str, checkpoint: str | Path | None = None, device: str = "cpu",
         preprocess: Preprocess | None = None) -> LoadedModel:
    """Build a registered model and load its trained weights (or a user's checkpoint); a `prefix:argument`
    name is loaded by its source, with `preprocess` (settings the model does not state)."""
    found = source_of(name)
    if found:
        return found[0].load(found[1], str(checkpoint) if checkpoint else None, device, preprocess or Preprocess())
    if preprocess is not None and not preprocess.is_default:
        given = tuple(f"preprocess.{k}" for k, v in vars(preprocess).items() if v)
        raise OptionError(given, f"{{{given[0]}}} is for {', '.join(source_usages())} models: the zoo's models "
                          "preprocess frames themselves")
    spec = get(name)
    path = Path(checkpoint) if checkpoint else spec.weights()
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    state = spec.reader(path) if spec.reader is not None and not checkpoint else read_checkpoint(path)
    module = spec.build()
    load_checkpoint(module, state, spec, path)
    module.eval().to(device)
    return LoadedModel(spec=spec, module=module, weights_path=str(path), weights_sha256=file_sha256(path))


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """A torch checkpoint's state dict (common wrappers unpacked, `module.` prefixes stripped)."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a file that is not a checkpoint
        raise ModelError(f"cannot read checkpoint {path}: {(str(e).splitlines() or [type(e).__name__])[0][:200]}") from None
    return _state_dict_from(raw, path)


def load_checkpoint(module: nn.Module, state: dict[str, torch.Tensor], spec: ModelSpec, path: Path) -> None:
    """Load a state dict that fits the module (else a ModelError naming what does not fit)."""
    check_fits(module, state, spec, path)
    expected = module.state_dict().keys()
    module.load_state_dict({k: v for k, v in state.items() if k in expected})


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
