"""What a quality target measures: the metrics `--target METRIC=VALUE` knows (`--target-psnr DB` is
`--target psnr=DB`), each read from frames.parquet's columns and pooled over a run's gated frames.

A metric names the columns it reads, how frames pool into one figure, whether higher or lower is better,
the ground-truth protocol (ground_truth.py, by the model's task) that writes its columns, and the band
above the target (below it, for a lower-is-better metric) in which a whole-video run counts as a hit.
The search in target.py sees only `score` (higher is better for every metric) and the band, so adding a
metric is one entry here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import OptionError
from .models import ModelSpec


def pooled_psnr(psnr_db: np.ndarray) -> float:
    """PSNR of the mean squared error behind several frames' PSNRs (inf frames: no error), so one bad
    frame counts as it does in the error, not as one dB among many."""
    values = np.asarray(psnr_db, float)
    values = values[~np.isnan(values)]
    if not values.size:
        return math.nan
    mse = np.mean(10.0 ** (-values / 10.0))
    return math.inf if mse == 0 else float(-10.0 * np.log10(mse))


def frame_mean(values: np.ndarray) -> float:
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def psnr_loss(gated_db: np.ndarray, dense_db: np.ndarray) -> float:
    """How far the gated output's pooled PSNR against the real frames falls below the dense output's
    (0 where both are error-free; negative where gating happens to score better)."""
    gated, dense = pooled_psnr(gated_db), pooled_psnr(dense_db)
    return 0.0 if gated == dense else dense - gated   # inf - inf is NaN: identical pooled figures lose nothing


@dataclass(frozen=True)
class Metric:
    name: str                                  # as typed after --target
    label: str                                 # in messages: "no threshold reaches {label} ..."
    columns: tuple[str, ...]                   # frames.parquet columns the pooling reads
    pool: Callable[..., float]                 # one array per column (the gated frames) -> the run's figure
    higher_is_better: bool
    tolerance: float                           # a whole-video run within this of the target is a hit
    tasks: tuple[str, ...] = ()                # model tasks whose ground-truth protocol writes the columns
    unit: str = ""
    valid: Callable[[float], bool] = math.isfinite
    domain: str = "a finite number"            # what `valid` accepts, for the error message
    pooled: str = ""                           # how frames pool, for meta.json

    def value(self, gated_frames: pd.DataFrame) -> float:
        return self.pool(*(gated_frames[c].to_numpy(float) for c in self.columns))

    def score(self, value: float) -> float:
        """The value oriented so that higher is better: what the search compares."""
        return value if self.higher_is_better else -value

    def passes(self, value: float, target: float) -> bool:
        return self.score(value) >= self.score(target)

    def show(self, value: float) -> str:
        digits = 2 if self.unit else 4
        return f"{value:.{digits}f}{self.unit}"

    def check_model(self, spec: ModelSpec, field: str) -> None:
        """A metric whose protocol the model lacks: a one-line error before anything is traced."""
        if self.tasks and spec.task not in self.tasks:
            kind = f"a {spec.task} model" if spec.task else "a model without a ground-truth task"
            raise OptionError(field, f"{self.name} reads {', '.join(self.columns)}, which the "
                              f"{' or '.join(self.tasks)} ground truth writes; {spec.name} is {kind}")


def _positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


def _fraction(x: float) -> bool:
    return 0 < x <= 1


def _non_negative(x: float) -> bool:
    return math.isfinite(x) and x >= 0


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("psnr", "PSNR", ("psnr_db",), pooled_psnr, True, 0.5, unit=" dB", valid=_positive,
           domain="a finite number of dB > 0",
           pooled="psnr_db of the mean squared error over {frames}, gated vs dense"),
    Metric("det-recall", "detection recall", ("gt_det_recall",), frame_mean, True, 0.02, ("detection",),
           valid=_fraction, domain="a fraction in (0, 1]",
           pooled="mean over {frames} of gt_det_recall: the dense run's proposals matched by gated ones"),
    Metric("det-precision", "detection precision", ("gt_det_precision",), frame_mean, True, 0.02, ("detection",),
           valid=_fraction, domain="a fraction in (0, 1]",
           pooled="mean over {frames} of gt_det_precision: the gated run's proposals matched by dense ones"),
    Metric("gt-psnr-loss", "ground-truth PSNR loss", ("gt_psnr_db", "gt_psnr_dense_db"), psnr_loss, False, 0.5,
           ("interpolation", "super-resolution"), unit=" dB", valid=_non_negative, domain="a finite number of dB >= 0",
           pooled="pooled gt_psnr_dense_db minus pooled gt_psnr_db (each the PSNR of the mean squared error "
                  "against the real frames) over {frames}"),
)}


@dataclass(frozen=True)
class QualityTarget:
    metric: Metric
    value: float

    @classmethod
    def parse(cls, text: str, field: str = "target") -> "QualityTarget":
        """METRIC=VALUE, e.g. det-recall=0.95; a malformed or unknown one is a one-line OptionError."""
        name, sep, number = text.partition("=")
        known = ", ".join(METRICS)
        if not sep or not name.strip():
            raise OptionError(field, f"takes METRIC=VALUE (metrics: {known}), got {text!r}")
        if name.strip() not in METRICS:
            raise OptionError(field, f"has no metric {name.strip()!r}; known: {known}")
        try:
            value = float(number)
        except ValueError:
            raise OptionError(field, f"takes METRIC=VALUE with a number after '=', got {text!r}") from None
        return cls.of(name.strip(), value, field)

    @classmethod
    def of(cls, name: str, value: float, field: str) -> "QualityTarget":
        metric = METRICS[name]
        if not metric.valid(value):
            raise OptionError(field, f"must be {metric.domain} for {name}, got {value:g}"
                              if field == "target" else f"must be {metric.domain}, got {value:g}")
        return cls(metric, value)

    def __str__(self) -> str:
        return f"{self.metric.name}={self.value:g}"
