"""Hardware comparison reports (`sparsesim report`): one self-contained HTML page with altair charts,
summary.md, and the tables as CSV. Several traces compare side by side."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import altair as alt
import pandas as pd
import vl_convert

from .. import hardware
from ..atomic import umask
from ..cost.run import EstimateOptions, EstimateResult, run_estimate
from ..errors import OptionError, SparsesimError, require
from . import charts, page
from .quality import column_means
from .verdict import block_verdicts

EXPORT_FORMATS = ("svg", "png")
OVERHEAD_STEPS = ("t_mask", "t_gather", "t_scatter")   # increments on top of the roofline bound


@dataclass(frozen=True)
class ReportOptions:
    traces: Sequence[str]
    hardware: Sequence[str]
    blocks: Sequence[int]
    output: str
    layer: str | None = None           # Eyexam waterfall layer (default: the most MACs)
    export: Sequence[str] = ()         # static chart files: svg, png
    frames: int | None = None
    measurements: Sequence[str] = ()   # `sparsesim measure` tables, validated against...
    measured_hw: str | None = None     # ...the cost model of this hardware
    kernels: Sequence[str] = ()        # kernel strategies compared (empty: each hardware's natural one)
    mask_source: str = "residual"


@dataclass(frozen=True)
class Report:
    path: Path
    charts: dict[str, alt.TopLevelMixin]
    files: tuple[Path, ...]


def _label(result: EstimateResult) -> str:
    return result.trace.path.name


def _tables(results: list[EstimateResult]) -> dict[str, pd.DataFrame]:
    tag = lambda df, r: df.assign(trace=_label(r))  # noqa: E731
    return {
        "summary": pd.concat([tag(r.estimate.summary, r) for r in results], ignore_index=True),
        "layers": pd.concat([tag(r.estimate.layers, r) for r in results], ignore_index=True),
        "verdicts": pd.concat([tag(block_verdicts(r.estimate), r) for r in results], ignore_index=True),
        "quality": pd.DataFrame([_quality_row(r) for r in results]),
    }


def _quality_row(result: EstimateResult) -> dict:
    """Means over a trace's frames: the gated-vs-dense drift and, where the trace has them, the ground
    truth's columns (`trace --ground-truth/--vfi-eval`)."""
    frames = result.trace.frames
    truth = result.trace.meta.get("ground_truth", {})
    return {"trace": _label(result), "frames": len(frames), "ground_truth": truth.get("task", ""),
            **column_means(frames, "psnr_db"), **column_means(frames, "gt_")}


def _best(summary: pd.DataFrame) -> pd.DataFrame:
    """Per trace and hardware: the kernel and block with the lowest latency over the video."""
    return summary.loc[summary.groupby(["trace", "hw", "energy_table"], sort=False)["latency_s"].idxmin()]


def _at(rows: pd.DataFrame, b) -> pd.DataFrame:
    return rows[(rows["hw"] == b.hw) & (rows["kernel"] == b.kernel) & (rows["block"] == b.block)]


def _activity_data(results: list[EstimateResult], best: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    active, losing = [], []
    for r in results:
        a = r.trace.active.reset_index().melt(id_vars="frame", var_name="layer", value_name="active")
        ids = r.trace.layers_df.set_index("name")["id"]
        active.append(a.assign(trace=_label(r), layer_id=a["layer"].map(ids)))
        rows = r.estimate.rows
        for b in best[best["trace"] == _label(r)].itertuples():
            sel = _at(rows, b).groupby("frame")[["latency_s", "latency_dense_s"]].sum()
            slow = sel.index[sel["latency_s"] > sel["latency_dense_s"]]
            losing.append(pd.DataFrame({"trace": _label(r), "frame": slow, "hw": b.hw}))
    return pd.concat(active, ignore_index=True), pd.concat(losing, ignore_index=True)


def _eyexam_data(results: list[EstimateResult], best: pd.DataFrame, layer: str | None) -> tuple[pd.DataFrame, str]:
    first = results[0]
    layers = first.trace.layers_df
    name = layer or layers.loc[layers["dense_macs"].idxmax(), "name"]
    if name not in set(layers["name"]):
        raise OptionError("layer", f"{{layer}} {name!r} is not a layer of {_label(first)}; e.g. {layers['name'].iloc[0]}")
    rows = first.estimate.rows
    out = []
    for b in best[best["trace"] == _label(first)].itertuples():
        sel = _at(rows, b)
        sel = sel[sel["layer"] == name]
        bound = 0.0
        for col, _ in charts.STEP_NAMES:   # the bounds, then each overhead added to the last bound
            bound = float(sel[col].mean()) + (bound if col in OVERHEAD_STEPS else 0.0)
            out.append({"hw": b.hw, "step": col, "seconds": bound})
    return pd.DataFrame(out), name


def _roofline_data(results: list[EstimateResult], best: pd.DataFrame) -> pd.DataFrame:
    points = []
    for r in results:
        rows = r.estimate.rows
        for b in best[best["trace"] == _label(r)].itertuples():
            sel = _at(rows, b).groupby("layer")[
                ["macs", "macs_dense", "latency_s", "latency_dense_s", "bytes_backing", "bytes_backing_dense"]].sum()
            for run, macs, lat, byt in (("dense", "macs_dense", "latency_dense_s", "bytes_backing_dense"),
                                        ("sparse", "macs", "latency_s", "bytes_backing")):
                ok = (sel[macs] > 0) & (sel[byt] > 0)
                points.append(pd.DataFrame({"trace": _label(r), "hw": b.hw, "layer": sel.index[ok], "run": run,
                                            "intensity": 2 * sel[macs][ok] / sel[byt][ok],
                                            "flops": 2 * sel[macs][ok] / sel[lat][ok]}))
    return pd.concat(points, ignore_index=True)


def _markdown(df: pd.DataFrame, columns: list[str]) -> str:
    def cell(v) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df[columns].itertuples(index=False)]
    return "\n".join(lines)


SUMMARY_COLUMNS = ["trace", "hw", "energy_table", "kernel", "block", "frames", "dense_frames", "speedup",
                   "speedup_worst_frame", "speedup_best_frame", "energy_saving", "mem_overhead"]
VERDICT_COLUMNS = ["trace", "hw", "layer", "density", "best_kernel", "best_block_time", "best_block_energy", "speedup",
                   "break_even_density", "verdict"]


def build(options: ReportOptions) -> Report:
    if not options.traces:
        raise SparsesimError("report needs at least one trace")
    bad = [f for f in options.export if f not in EXPORT_FORMATS]
    require(not bad, "export", f"takes {', '.join(EXPORT_FORMATS)}; got {', '.join(bad)}")
    results = [run_estimate(EstimateOptions(trace=t, hardware=options.hardware, blocks=options.blocks,
                                            frames=options.frames, kernels=tuple(options.kernels),
                                            mask_source=options.mask_source)) for t in options.traces]
    labels = [_label(r) for r in results]
    if len(set(labels)) != len(labels):
        raise SparsesimError(f"traces must have distinct directory names, got {', '.join(labels)}")
    tables = _tables(results)
    best = _best(tables["summary"])
    specs_hw = [hardware.load(h) for h in options.hardware]
    active, losing = _activity_data(results, best)
    steps, layer = _eyexam_data(results, best, options.layer)
    chart_set = {
        "activity": charts.activity(active, losing),
        "tradeoff": charts.block_tradeoff(tables["summary"]),
        "hardware": charts.hardware_comparison(best),
        "eyexam": charts.eyexam_waterfall(steps, layer),
        "roofline": charts.roofline(_roofline_data(results, best), specs_hw),
    }
    validation = _validation(options)
    if validation is not None:
        chart_set["measured"] = charts.predicted_vs_measured(validation.rows)
        tables["validation"] = validation.rows
    with alt.data_transformers.disable_max_rows():
        specs = {name: chart.to_dict(validate=True) for name, chart in chart_set.items()}
    body = _body(tables, best, layer, validation, options.measured_hw)
    return _write(Path(options.output), f"sparsesim report: {', '.join(labels)}", body, specs, tables, best,
                  chart_set, options.export)


def _validation(options: ReportOptions):
    if not options.measurements:
        return None
    from ..measure.validate import load_all, validate
    return validate(load_all(list(options.measurements), options.measured_hw), hardware.load(options.measured_hw))


def _measured_section(validation, hw: str | None) -> str:
    if validation is None:
        return page.section("Predicted vs measured", "<p class='note'>No kernel measurements were given "
                            "(`sparsesim measure`, then `sparsesim report --measurements FILE --measured-hw NAME`).</p>")
    metrics = pd.DataFrame([{"metric": k.replace("_", " "), "value": v} for k, v in validation.metrics.items()])
    return page.section(f"Predicted vs measured on {hw}", page.chart_div("measured") + _html_table(metrics, ["metric", "value"]),
                        "Each dot is one measured kernel (dense conv, or the block-sparse reduce+gather+conv+scatter "
                        "total) against the cost model's prediction; errors are on held-out layer shapes.")


def _html_table(df: pd.DataFrame, columns: list[str], na_rep: str = "NaN") -> str:
    return df[columns].to_html(index=False, float_format=lambda v: f"{v:.3g}", border=0, escape=True, na_rep=na_rep)


def _body(tables: dict[str, pd.DataFrame], best: pd.DataFrame, layer: str, validation, measured_hw) -> str:
    model = tables["verdicts"][tables["verdicts"]["layer_id"] < 0]
    per_layer = tables["verdicts"][tables["verdicts"]["layer_id"] >= 0]
    return "".join([
        page.section("Verdict per hardware", _html_table(model, VERDICT_COLUMNS),
                     "Best kernel strategy and block size by total latency over the video (frame 0, dense, "
                     "included); speed-up and energy (dynamic plus static power over the run's time) against the "
                     "dense run on the same hardware, from sparsesim's analytical cost model."),
        page.section("Best block per hardware", _html_table(best, SUMMARY_COLUMNS)),
        page.section("Quality", _html_table(tables["quality"], list(tables["quality"].columns), na_rep=""),
                     "Means over each trace's frames (an infinite PSNR, identical images, left out): psnr_db is the "
                     "gated output against the dense output of the same model; gt_* columns score against real "
                     "frames as the model's task is scored (traced with --vfi-eval or --ground-truth; blank "
                     "otherwise): gt_psnr_db/gt_ssim gated, gt_*_dense the dense model; for detection, agreement "
                     "with the dense run."),
        page.section("Where the frames are active", page.chart_div("activity"),
                     "Active fraction of every layer's output per frame; red ticks mark frames in which block-sparse "
                     "skipping at the best block is slower than the dense run."),
        page.section("Block-size trade-off", page.chart_div("tradeoff")),
        page.section("Hardware comparison at the best block", page.chart_div("hardware"),
                     "Latency, energy stacked by memory level (Sze's framing) with static power as its own level "
                     "(idle board power or leakage over the run's time), and memory footprint, dense vs block-sparse."),
        page.section(f"Eyexam waterfall: layer {layer}", page.chart_div("eyexam"),
                     "Each step is a tighter bound on the time per frame, from the peak down; the last bars add the "
                     "mask reduction, gather, scatter and launches that the best kernel strategy needs."),
        page.section("Roofline", page.chart_div("roofline")),
        _measured_section(validation, measured_hw),
        page.section("Verdict per layer", _html_table(per_layer, VERDICT_COLUMNS)),
    ])


def _write(out: Path, title: str, body: str, specs: dict, tables: dict[str, pd.DataFrame], best: pd.DataFrame,
           chart_set: dict, export: Sequence[str]) -> Report:
    """Write everything into a temporary sibling directory, then swap it into place."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    except OSError as e:
        raise SparsesimError(f"cannot write report directory {out}: {e.strerror}") from None
    try:
        (tmp / "index.html").write_text(page.render(title, body, specs))
        for name, df in tables.items():
            df.to_csv(tmp / f"{name}.csv", index=False)
        (tmp / "summary.md").write_text(_summary_md(title, tables, best))
        if export:
            (tmp / "charts").mkdir()
            for name, spec in specs.items():
                for fmt in export:
                    _export(spec, tmp / "charts" / f"{name}.{fmt}", fmt)
        files = tuple(sorted(p.relative_to(tmp) for p in tmp.rglob("*") if p.is_file()))
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp's 0700 would hide the report from other users
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
            out.rename(old / "report")
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Report(out, chart_set, tuple(out / f for f in files))


def _export(spec: dict, path: Path, fmt: str) -> None:
    if fmt == "svg":
        path.write_text(vl_convert.vegalite_to_svg(spec))
    else:
        path.write_bytes(vl_convert.vegalite_to_png(spec, scale=2))


def _summary_md(title: str, tables: dict[str, pd.DataFrame], best: pd.DataFrame) -> str:
    model = tables["verdicts"][tables["verdicts"]["layer_id"] < 0]
    return "\n\n".join([
        f"# {title}", "Open `index.html` for the charts. Tables: `summary.csv` (hardware x block), "
        "`layers.csv` (layer x hardware x block), `verdicts.csv` (per layer and hardware).",
        "## Verdict per hardware", _markdown(model, VERDICT_COLUMNS),
        "## Best block per hardware", _markdown(best, SUMMARY_COLUMNS),
        "## Quality (means over frames)", _markdown(tables["quality"], list(tables["quality"].columns))]) + "\n"
