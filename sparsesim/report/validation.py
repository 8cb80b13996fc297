"""`sparsesim validate`: measurements in, the cost model's errors out (tables and a scatter page)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .. import hardware
from ..atomic import write_atomic
from ..errors import require
from ..measure.validate import Validation, load_all, validate, validate_seeds, write_tables


@dataclass(frozen=True)
class ValidateOptions:
    measurements: Sequence[str]
    hardware: str
    holdout: float = 0.5
    seed: int = 0
    calibrate: bool = False
    output: str | None = None
    seeds: Sequence[int] = ()        # several split seeds: each reported, and their median (overrides seed)

    def validate(self) -> None:
        require(0 < self.holdout <= 1, "holdout", f"must be in (0, 1], got {self.holdout}")
        require(len(set(self.seeds)) == len(self.seeds), "seeds", f"must be distinct, got {list(self.seeds)}")


@dataclass(frozen=True)
class ValidateResult:
    validation: Validation
    outputs: tuple[Path, ...]


def run_validate(options: ValidateOptions) -> ValidateResult:
    options.validate()
    measured, hw = load_all(list(options.measurements), options.hardware), hardware.load(options.hardware)
    result = validate_seeds(measured, hw, list(options.seeds), options.holdout, options.calibrate) if options.seeds \
        else validate(measured, hw, options.holdout, options.seed, options.calibrate)
    return ValidateResult(result, tuple(write_validation(result, Path(options.output))) if options.output else ())


def write_validation(result: Validation, out: Path) -> list[Path]:
    """The tables and `scatter.html`, predicted against measured."""
    from . import charts, page
    paths = write_tables(result, out)
    spec = charts.predicted_vs_measured(result.rows).to_dict(validate=True)
    html = page.render("sparsesim validate", page.chart_div("scatter"), {"scatter": spec})
    write_atomic(out / "scatter.html", lambda tmp: Path(tmp).write_text(html))
    return [*paths, out / "scatter.html"]
