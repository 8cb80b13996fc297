"""The report's charts, one function each, all altair (Vega-Lite). Each takes tidy pandas tables."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from ..hardware import Hardware

LEVELS = ["e_mac", "e_rf", "e_noc", "e_buffer", "e_l2", "e_dram", "e_static"]
LEVEL_NAMES = {"e_mac": "MAC", "e_rf": "register file", "e_noc": "array network", "e_buffer": "buffer",
               "e_l2": "L2", "e_dram": "DRAM", "e_static": "static power"}
STEP_NAMES = [("t_peak", "peak"), ("t_parallel", "parallelism"), ("t_util", "utilisation"),
              ("t_occupancy", "block occupancy"), ("t_bandwidth", "bandwidth"),
              ("t_algorithm", "conv algorithm"), ("t_mask", "mask reduction"),
              ("t_gather", "gather"), ("t_scatter", "scatter"), ("latency_s", "launches")]


TRACE_LEGEND = alt.Legend(labelLimit=0)   # trace names are long and alike: never cut them short


def _heatmap(active: pd.DataFrame, trace: str) -> alt.Chart:
    """One trace's layers only: each trace has its own layer axis (a shared one would list every other
    model's layers as empty rows)."""
    return alt.Chart(active[active["trace"] == trace]).mark_rect().encode(
        x=alt.X("frame:O", title="frame", axis=alt.Axis(labelOverlap=True)),
        y=alt.Y("layer:N", sort=alt.SortField("layer_id"), title=None, axis=alt.Axis(labelLimit=160)),
        color=alt.Color("active:Q", title="active fraction", scale=alt.Scale(scheme="viridis", domain=[0, 1])),
        tooltip=["trace", "frame", "layer", alt.Tooltip("active:Q", format=".3f")],
    ).properties(width=620, height=alt.Step(9), title=trace)


def activity(active: pd.DataFrame, losing: pd.DataFrame) -> alt.VConcatChart:
    """Heatmap of the active fraction per layer over time (one per trace), and the frames where skipping
    loses.

    active: trace, frame, layer_id, layer, active. losing: trace, frame, hw (frames slower than dense)."""
    heats = [_heatmap(active, trace) for trace in active["trace"].drop_duplicates()]
    mean = active.groupby(["trace", "frame"], as_index=False)["active"].mean()
    line = alt.Chart(mean).mark_line().encode(
        x=alt.X("frame:Q"), y=alt.Y("active:Q", title="mean active fraction"),
        color=alt.Color("trace:N", legend=TRACE_LEGEND))
    marks = alt.Chart(losing).mark_tick(thickness=2, size=7).encode(
        x="frame:Q", y=alt.Y("hw:N", title="skipping loses on"), yOffset="trace:N",
        color=alt.Color("trace:N", legend=TRACE_LEGEND), tooltip=["trace", "frame", "hw"])
    return alt.vconcat(*heats, line.properties(width=620, height=120),
                       marks.properties(width=620, title="frames where block-sparse is slower than dense "
                                                           "(best block per hardware)"))


def block_tradeoff(summary: pd.DataFrame) -> alt.HConcatChart:
    """Speed-up and energy saving against block size per hardware, with the break-even line."""
    base = alt.Chart(summary).encode(
        x=alt.X("block:O", title="block size B"), color=alt.Color("hw:N", title="hardware"),
        strokeDash=alt.StrokeDash("kernel:N", title="kernel"),
        shape=alt.Shape("trace:N", title="trace", legend=TRACE_LEGEND),
        detail="trace:N",
        tooltip=["trace", "hw", "kernel", "block", alt.Tooltip("speedup:Q", format=".2f"),
                 alt.Tooltip("energy_saving:Q", format=".0%")])
    speed = base.mark_line(point=True).encode(
        y=alt.Y("speedup:Q", title="speed-up over dense", scale=alt.Scale(type="log")))
    even = alt.Chart(pd.DataFrame({"y": [1.0]})).mark_rule(color="black", strokeDash=[4, 3]).encode(y="y:Q")
    energy = base.mark_line(point=True).encode(y=alt.Y("energy_saving:Q", title="energy saving", axis=alt.Axis(format="%")))
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="black", strokeDash=[4, 3]).encode(y="y:Q")
    return alt.hconcat((speed + even).properties(width=300, height=240, title="speed-up (dashed: break-even)"),
                       (energy + zero).properties(width=300, height=240, title="energy saving"))


def hardware_comparison(best: pd.DataFrame) -> alt.HConcatChart:
    """Dense vs block-sparse at the best block: latency, energy stacked by memory level, memory."""
    long = []
    for r in best.to_dict("records"):
        for run, suffix in (("dense", "_dense"), ("sparse", "")):
            key = f"{r['hw']} · {r['kernel']} · {run}"
            long.append({"trace": r["trace"], "hw": r["hw"], "run": run, "bar": key, "latency_s": r[f"latency{suffix}_s"] / r["frames"],
                         "memory_mib": r[f"mem{'_dense' if run == 'dense' else '_sparse'}_bytes"] / 2**20,
                         **{LEVEL_NAMES[k]: r[f"{k}{suffix}_pj"] / r["frames"] * 1e-6 for k in LEVELS}})
    df = pd.DataFrame(long)
    energy = df.melt(id_vars=["trace", "hw", "run", "bar"], value_vars=list(LEVEL_NAMES.values()),
                     var_name="level", value_name="energy_uj")
    y = alt.Y("bar:N", title=None, sort=None)
    runs = alt.Scale(domain=["dense", "sparse"], range=["#7f7f7f", "#1f77b4"])
    latency = alt.Chart(df).mark_point(filled=True, size=90).encode(  # a log axis: dots, not bars from 0
        y=y, x=alt.X("latency_s:Q", title="latency per frame (s, log)", scale=alt.Scale(type="log"),
                     axis=alt.Axis(format="~s")),
        color=alt.Color("run:N", scale=runs),
        row=alt.Row("trace:N", title=None), tooltip=["hw", "run", alt.Tooltip("latency_s:Q", format=".3e")])
    bars = alt.Chart().mark_bar().encode(
        y=y, x=alt.X("sum(energy_uj):Q", title="energy per frame (µJ; each trace its own scale)"),
        color=alt.Color("level:N", title="memory level", sort=list(LEVEL_NAMES.values())),
        order=alt.Order("level:N"), tooltip=["hw", "run", "level", alt.Tooltip("energy_uj:Q", format=".3g")])
    # the total at the end of each bar: a bar 100x shorter than its neighbour still reads as a number
    totals = alt.Chart().transform_aggregate(total="sum(energy_uj)", groupby=["bar"]).mark_text(
        align="left", dx=3, fontSize=9).encode(y=y, x="total:Q", text=alt.Text("total:Q", format=".3~s"))
    # traces (and hardware) differ by 100x: each trace gets its own energy and memory axis
    stacked = alt.layer(bars, totals, data=energy).properties(width=260) \
        .facet(row=alt.Row("trace:N", title=None)).resolve_scale(x="independent")
    memory = alt.Chart(df).mark_bar().encode(
        y=y, x=alt.X("memory_mib:Q", title="memory (MiB; each trace its own scale)"),
        color=alt.Color("run:N", scale=runs, legend=None),
        row=alt.Row("trace:N", title=None), tooltip=["hw", "run", alt.Tooltip("memory_mib:Q", format=".2f")]) \
        .properties(width=160).resolve_scale(x="independent")
    return alt.hconcat(latency.properties(width=220), stacked, memory).resolve_scale(color="independent")


def eyexam_waterfall(steps: pd.DataFrame, layer: str) -> alt.FacetChart:
    """Where the time goes for one layer, from the peak down (Eyexam), per hardware.

    steps: hw, step (t_* column), seconds (mean over frames at the best block)."""
    rows = []
    for hw, group in steps.groupby("hw", sort=False):
        values = group.set_index("step")["seconds"]
        previous = 0.0
        for order, (col, name) in enumerate(STEP_NAMES):
            rows.append({"hw": hw, "order": order, "step": name, "start": previous, "end": values[col],
                         "added": values[col] - previous})
            previous = values[col]
    df = pd.DataFrame(rows)
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("step:N", sort=[n for _, n in STEP_NAMES], title=None),
        y=alt.Y("start:Q", title="seconds per frame", axis=alt.Axis(format="~s")), y2="end:Q",
        color=alt.Color("step:N", sort=[n for _, n in STEP_NAMES], legend=None),
        tooltip=["hw", "step", alt.Tooltip("added:Q", format=".3e", title="adds"), alt.Tooltip("end:Q", format=".3e", title="bound")],
    ).properties(width=200, height=180).facet(facet=alt.Facet("hw:N", title=f"Eyexam waterfall, layer {layer}"), columns=4) \
        .resolve_scale(y="independent")


NO_ROOF = ("noc",)   # the array interconnect holds no data: no roof of its own


def roofline(points: pd.DataFrame, hardware: list[Hardware]) -> alt.FacetChart:
    """Each layer on its hardware's roofline, dense and block-sparse (best block)."""
    roofs = []
    for hw in hardware:
        peak = hw.peak_flops[hw.dtype]
        for level in hw.levels:
            if not level.shared or level.kind in NO_ROOF:
                continue
            for oi in np.logspace(-2, 4, 25):
                roofs.append({"hw": hw.name, "roof": level.name, "intensity": oi, "flops": min(peak, oi * level.bandwidth)})
    roof = alt.Chart().transform_filter("isValid(datum.roof)").mark_line(strokeDash=[3, 2], color="gray").encode(
        x=alt.X("intensity:Q", scale=alt.Scale(type="log"), title="operational intensity (FLOP/byte at its backing level)",
                axis=alt.Axis(format="~s")),
        y=alt.Y("flops:Q", scale=alt.Scale(type="log"), title="attained FLOP/s", axis=alt.Axis(format="~s")),
        detail="roof:N")
    dots = alt.Chart().transform_filter("isValid(datum.run)").mark_point(filled=True, size=40).encode(
        x="intensity:Q", y="flops:Q", color=alt.Color("run:N", scale=alt.Scale(domain=["dense", "sparse"], range=["#7f7f7f", "#1f77b4"])),
        shape=alt.Shape("trace:N", legend=TRACE_LEGEND), tooltip=["trace", "layer", "run", alt.Tooltip("intensity:Q", format=".3g"),
                                             alt.Tooltip("flops:Q", format=".3e")])
    return alt.layer(roof, dots, data=pd.concat([pd.DataFrame(roofs), points])).properties(width=260, height=200) \
        .facet(facet=alt.Facet("hw:N", title=None), columns=3).resolve_scale(x="independent", y="independent")


def predicted_vs_measured(rows: pd.DataFrame) -> alt.LayerChart:
    """Predicted against measured kernel time (log-log), the diagonal for reference."""
    lo, hi = float(min(rows["median_s"].min(), rows["predicted_s"].min())), float(max(rows["median_s"].max(), rows["predicted_s"].max()))
    diagonal = alt.Chart(pd.DataFrame({"t": [lo, hi]})).mark_line(color="black", strokeDash=[4, 3]).encode(x="t:Q", y="t:Q")
    axis = lambda title: dict(scale=alt.Scale(type="log"), title=title, axis=alt.Axis(format="~s"))  # noqa: E731
    dots = alt.Chart(rows).mark_point(filled=True, size=30, opacity=0.7).encode(
        x=alt.X("median_s:Q", **axis("measured (s)")), y=alt.Y("predicted_s:Q", **axis("predicted (s)")),
        color=alt.Color("kernel:N"), shape=alt.Shape("held_out:N", title="held out"),
        tooltip=["layer", "kernel", "block", alt.Tooltip("density:Q", format=".2f"),
                 alt.Tooltip("median_s:Q", format=".3e"), alt.Tooltip("predicted_s:Q", format=".3e"),
                 alt.Tooltip("rel_error:Q", format="+.0%")])
    return (diagonal + dots).properties(width=420, height=420, title="predicted vs measured kernel time")
