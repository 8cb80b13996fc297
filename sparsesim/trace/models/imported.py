"""What every model from a source shares (ONNX, TorchScript, Python factory): frames turned into the
model's inputs by the preprocessing settings, the output the quality check compares, one-line errors
when the model fails on a frame, and the ModelSpec/LoadedModel the tracer runs."""
from __future__ import annotations

import copy
import functools
import hashlib
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ...errors import ModelError, OptionError, SparsesimError
from ..preprocess import Preprocess
from .registry import LoadedModel, ModelSpec


def first_line(e: BaseException, limit: int = 200) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:limit]}" if text else type(e).__name__


class FrameRun:
    """`ModelSpec.run` of a model from a source: frames -> preprocessed inputs -> the compared output."""

    def __init__(self, name: str, pre: Preprocess, inputs: Sequence[str], outputs: Sequence[str] = (),
                 flatten: Callable[[object], list] | None = None) -> None:
        # outputs: their names where the model states them; flatten: its result -> one value per output
        self.name, self.pre, self.inputs, self.outputs = name, pre, tuple(inputs), tuple(outputs)
        self.flatten = flatten
        unknown = [n for n in pre.frame_inputs if n not in self.inputs]
        if unknown:
            raise OptionError("preprocess.frame_inputs", f"names {', '.join(unknown)}, not an input of {name} "
                              f"(its inputs: {', '.join(self.inputs)})")
        self.frames = pre.frame_inputs or self.inputs
        others = [n for n in self.inputs if n not in self.frames]
        if others:
            raise ModelError(f"model {name} takes inputs that are not frames ({', '.join(others)}): sparsesim "
                             "feeds frames only")
        if not self.frames:
            raise ModelError(f"model {name} takes no input: sparsesim feeds it frames")
        if self.outputs:
            self._position(self.outputs)  # a wrong --quality-output fails now, not after the first frame
        # (x - mean) / std per channel, as (1, C, 1, 1) before the layout is applied
        self.mean = torch.tensor(pre.mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(pre.std, dtype=torch.float32).view(1, -1, 1, 1)

    def tensors(self, frames: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The model's inputs, in call order, from consecutive frames ((1, 3, H, W) RGB in [0, 1])."""
        fed = {}
        for name, frame in zip(self.frames, frames):
            x = frame.flip(1) if self.pre.color == "bgr" else frame
            x = (x - self.mean.to(x)) / self.std.to(x)
            fed[name] = x.permute(0, 2, 3, 1) if self.pre.layout == "nhwc" else x
        return [fed[name] for name in self.inputs]

    def __call__(self, module: nn.Module, frames: Sequence[torch.Tensor]) -> torch.Tensor:
        try:
            out = module(*self.tensors(frames))
        except SparsesimError:
            raise
        except Exception as e:  # a shape the model does not take, an operator that fails at run time
            h, w = frames[0].shape[-2:]
            raise ModelError(f"model {self.name} failed on a {w}x{h} frame ({first_line(e)}); check --input-size, "
                             "--layout, --pad-multiple") from None
        return self.select(out)

    def select(self, out: object) -> torch.Tensor:
        """The compared output: by name or index among a tuple's, by key or index among a dict's."""
        if self.flatten is not None:
            out = self.flatten(out)
        values = list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, (list, tuple)) else [out]
        labels = [str(k) for k in out] if isinstance(out, dict) else \
            list(self.outputs) if len(self.outputs) == len(values) else [str(i) for i in range(len(values))]
        value = values[self._position(labels)]
        if not isinstance(value, torch.Tensor):
            raise ModelError(f"output {self.output} of model {self.name} is a {type(value).__name__}, not a tensor: "
                             "choose another with --quality-output")
        return value

    def _position(self, labels: Sequence[str]) -> int:
        wanted = self.pre.quality_output
        if wanted is None:
            return 0
        if wanted in labels:
            return list(labels).index(wanted)
        if wanted.isdigit() and int(wanted) < len(labels):
            return int(wanted)
        raise OptionError("preprocess.quality_output", f"{wanted!r} is not an output of {self.name} "
                          f"(its outputs: {', '.join(labels)})")

    @property
    def output(self) -> str:
        """What the quality check compares, for the trace's meta.json."""
        wanted = self.pre.quality_output or "0"
        if self.outputs and wanted.isdigit() and int(wanted) < len(self.outputs):
            return self.outputs[int(wanted)]
        return wanted


def state_sha256(module: nn.Module) -> str:
    """A digest of the weights themselves (models whose weights are no single file)."""
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def loaded_model(name: str, description: str, module: nn.Module, run: FrameRun, weights: Path | str,
                 digest: str, device: str) -> LoadedModel:
    """The spec and loaded module of a model from a source, in eval mode on `device`."""
    module.eval().to(device)
    spec = ModelSpec(
        name=name, description=description, frames_per_step=len(run.frames),
        build=functools.partial(copy.deepcopy, module), weights=functools.partial(Path, weights), run=run,
        pad_multiple=run.pre.pad_multiple, preprocess=run.pre, output_peak=run.pre.quality_peak,
        output_name=run.output)
    return LoadedModel(spec=spec, module=module, weights_path=str(weights), weights_sha256=digest)
