"""The zoo's registry: model specs, weights located in installed packages, checkpoints checked."""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ...errors import ModelError


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


@dataclass(frozen=True)
class LoadedModel:
    spec: ModelSpec
    module: nn.Module
    weights_path: str
    weights_sha256: str = field(repr=False)


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    _REGISTRY[spec.name] = spec
    return spec


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str) -> ModelSpec:
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; choose from: {', '.join(names())}")
    return _REGISTRY[name]


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
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
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
    problems = [f"{label}: {_summarise(keys)}" for label, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", shapes)) if keys]
    if problems:
        raise ModelError(f"checkpoint {path} does not fit model {spec.name}: {'; '.join(problems)}")


def load(name: str, checkpoint: str | Path | None = None, device: str = "cpu") -> LoadedModel:
    """Build a registered model and load its trained weights (or a user's checkpoint)."""
    spec = get(name)
    path = Path(checkpoint) if checkpoint else spec.weights()
    if not path.is_file():
        raise ModelError(f"checkpoint not found: {path}")
    if spec.reader is not None and not checkpoint:
        state = spec.reader(path)
    else:
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for a file that is not a checkpoint
            raise ModelError(f"cannot read checkpoint {path}: {str(e).splitlines()[0][:200]}") from None
        state = _state_dict_from(raw, path)
    module = spec.build()
    check_fits(module, state, spec, path)
    expected = module.state_dict().keys()
    module.load_state_dict({k: v for k, v in state.items() if k in expected})
    module.eval().to(device)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return LoadedModel(spec=spec, module=module, weights_path=str(path), weights_sha256=digest)
