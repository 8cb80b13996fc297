"""How frames become a model's inputs, for models brought from outside the zoo (no torch: the command line
reads these).

A decoded frame is RGB in [0, 1] at the input size (resized while decoding). Then, in this order: the
channels reordered for `color`, `(x - mean) / std` per channel (in the model's channel order), and the
layout (`nhwc` puts channels last). `frame_inputs` names the model inputs that take frames, in the order
of consecutive frames (two names: a frame pair per step); `quality_output` names the output the quality
check compares (a name, or an index into a tuple of outputs) and `quality_peak` its PSNR peak. Every field left unset comes from what the
model states (an ONNX model's fixed input shape and its `mean`/`std` metadata), else the fallback.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from ..errors import OptionError, require
from ..text import parse_size

LAYOUTS = ("nchw", "nhwc")
COLORS = ("rgb", "bgr")


@dataclass(frozen=True)
class Preprocess:
    input_size: tuple[int, int] | None = None   # (W, H) the model sees; frames are resized to it
    mean: tuple[float, ...] | None = None       # one value, or one per channel (model's channel order)
    std: tuple[float, ...] | None = None
    layout: str | None = None                   # nchw | nhwc
    color: str | None = None                    # rgb | bgr: the channel order the model expects
    frame_inputs: tuple[str, ...] = ()          # model inputs fed with consecutive frames (default: all)
    quality_output: str | None = None           # output the quality check compares (default: the first)
    quality_peak: float | None = None           # PSNR peak of that output (default 1: images, probabilities)
    pad_multiple: int | None = None             # frames zero-padded right/bottom to a multiple of this

    def __post_init__(self) -> None:
        for name, values in (("mean", self.mean), ("std", self.std)):
            require(values is None or (len(values) in (1, 3) and all(math.isfinite(v) for v in values)),
                    f"preprocess.{name}", f"must be 1 or 3 finite numbers, got {values}")
        require(self.std is None or all(v != 0 for v in self.std), "preprocess.std", f"must not be 0, got {self.std}")
        require(self.layout in (None, *LAYOUTS), "preprocess.layout",
                f"must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        require(self.color in (None, *COLORS), "preprocess.color",
                f"must be one of {', '.join(COLORS)}, got {self.color!r}")
        require(self.quality_peak is None or (math.isfinite(self.quality_peak) and self.quality_peak > 0),
                "preprocess.quality_peak", f"must be a finite number > 0, got {self.quality_peak}")
        require(self.pad_multiple is None or self.pad_multiple >= 1, "preprocess.pad_multiple",
                f"must be >= 1, got {self.pad_multiple}")
        require(len(set(self.frame_inputs)) == len(self.frame_inputs), "preprocess.frame_inputs",
                f"names an input twice: {','.join(self.frame_inputs)}")

    @classmethod
    def parse(cls, input_size: str | None = None, mean: str | None = None, std: str | None = None,
              layout: str | None = None, color: str | None = None, frame_inputs: str | None = None,
              quality_output: str | None = None, quality_peak: float | None = None,
              pad_multiple: int | None = None) -> "Preprocess":
        """From text, as the command line or a model's metadata gives it ('0.485,0.456,0.406', '[0.5]')."""
        return cls(input_size=parse_size(input_size, "preprocess.input_size") if input_size else None,
                   mean=_numbers(mean, "preprocess.mean"), std=_numbers(std, "preprocess.std"),
                   layout=layout.lower() if layout else None, color=color.lower() if color else None,
                   frame_inputs=tuple(n.strip() for n in (frame_inputs or "").split(",") if n.strip()),
                   quality_output=quality_output or None, quality_peak=quality_peak, pad_multiple=pad_multiple)

    def record(self) -> dict:
        """As meta.json holds it (lists, not tuples: a trace read back compares equal)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def is_default(self) -> bool:
        return self == Preprocess()

    def over(self, stated: "Preprocess") -> "Preprocess":
        """These settings where given, else what the model states."""
        return replace(stated, **{f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)})

    def resolved(self) -> "Preprocess":
        """Every unset field at its fallback: frames in [0, 1], RGB, channels first, no padding, peak 1."""
        return replace(self, mean=self.mean or (0.0,), std=self.std or (1.0,), layout=self.layout or "nchw",
                       color=self.color or "rgb", pad_multiple=self.pad_multiple or 1,
                       quality_peak=self.quality_peak or 1.0)


def _numbers(text: str | None, field: str) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        return tuple(float(v) for v in text.strip().strip("[]()").replace(" ", ",").split(",") if v)
    except ValueError:
        raise OptionError(field, f"must be comma-separated numbers, got {text!r}") from None
