"""What every command prints: trace summaries, hardware, estimates, verdicts, simulations (rich tables)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..text import si as _si
from .quality import ground_truth_line

if TYPE_CHECKING:
    from ..trace.format import Trace


def describe(trace: "Trace") -> str:
    import numpy as np

    from ..workload import kept_channels
    m = trace.meta
    frames = trace.frames
    active = trace.active
    layers = kept_channels(trace.layers_df, trace.channels)  # what a channel-pruned model still computes
    psnr = frames["psnr_db"].replace(np.inf, np.nan).dropna() if "psnr_db" in frames else frames.iloc[:0]
    lines = [
        f"trace      {trace.path}  ({'complete' if trace.complete else 'INCOMPLETE: ' + m.get('status', '')})",
        *([f"video      {m['video']['name']}  {m['video']['size'][0]}x{m['video']['size'][1]}  "
           f"from frame {m['video']['start']}"] if "video" in m else []),   # traces written by the library may lack it
        f"model      {m['model']['name']}  ({len(layers)} gated layers, "
        f"{layers['dense_macs'].sum() / 1e9:.3f} GMAC per frame dense)",
        f"gate       {m['gate'].get('label', m['gate']['kind'])}{_gate_details(trace)}",
        f"frames     {trace.num_frames}{_resets(frames)}",
    ]
    if len(active):
        macs = layers.set_index("name")["dense_macs"]
        weighted = float((active * macs[active.columns]).sum(axis=1).mean() / macs.sum())
        lines.append(f"active     {float(active.to_numpy().mean()):.3f} mean over layers and frames; "
                     f"{weighted:.3f} of dense MACs")
    if trace.channels is not None:
        kept = layers["dense_macs"].sum() / trace.layers_df["dense_macs"].sum()
        lines.append(f"channels   pruned layers keep {kept:.3f} of the unpruned MACs (channels.parquet)")
    if len(psnr):
        lines.append(f"quality    PSNR gated vs dense: mean {psnr.mean():.2f} dB, min {psnr.min():.2f} dB "
                     f"over {len(psnr)} checked frames")
    truth = ground_truth_line(trace)
    if truth:
        lines.append(f"truth      {truth}")
    return "\n".join(lines)


def _gate_details(trace: "Trace") -> str:
    """Semantics and threshold mode; traces that predate them were Skip-Conv with absolute thresholds."""
    gate = trace.meta["gate"]
    if gate["kind"] not in ("input-norm", "output-norm", "delta"):
        return ""
    text = f"  ({gate.get('semantics', 'skip-conv')} semantics, {gate.get('threshold_mode', 'absolute')} thresholds"
    thresholds = trace.thresholds
    if thresholds is not None and len(thresholds):
        text += f": per layer {thresholds['threshold'].min():.3g} to {thresholds['threshold'].max():.3g}"
    raised = gate.get("layer_multipliers") or {}   # --per-layer's search (absent from older traces)
    if raised:
        shown = ", ".join(f"{name} x{m:.3g}" for name, m in list(raised.items())[:4])
        text += f"; eps raised on {shown}{f' and {len(raised) - 4} more' if len(raised) > 4 else ''}"
    return text + ")"


def _resets(frames) -> str:
    """Dense frames by reason ('first', 'cut', 'periodic', ...), where the trace records them."""
    if "reset_reason" not in frames or not len(frames):
        return ""
    counts = frames.loc[frames["reset"], "reset_reason"].value_counts()
    return f"  ({len(frames) - int(frames['reset'].sum())} gated; dense: " + \
        ", ".join(f"{reason or 'other'} {n}" for reason, n in counts.items()) + ")"


def _console():
    from rich.console import Console
    import shutil
    columns = shutil.get_terminal_size((160, 40)).columns
    return Console(width=max(columns, 160))


def hardware_list() -> None:
    from rich.table import Table

    from .. import hardware
    table = Table(title="hardware (accel_models/)")
    for col in ("name", "kind", "dtype", "peak", "units", "outer memory", "energy table", "description"):
        table.add_column(col)
    for name in hardware.names():
        hw = hardware.load(name)
        dram = hw.levels[0]
        table.add_row(hw.name, hw.kind, hw.dtype, _si(hw.peak_flops[hw.dtype], "FLOP/s"), str(hw.units),
                      f"{dram.name} {_si(dram.bandwidth, 'B/s')}", hw.energy_table, hw.description)
    _console().print(table)


def hardware_show(name: str) -> None:
    from rich.table import Table

    from .. import hardware
    hw = hardware.load(name)
    console = _console()
    console.print(f"[bold]{hw.name}[/bold] ({hw.kind}) {hw.description}\n  file {hw.path}\n"
                  f"  clock {_si(hw.clock_hz, 'Hz')}, {hw.units} units, estimates in {hw.dtype}; peak: "
                  + ", ".join(f"{k} {_si(v, 'FLOP/s')}" for k, v in hw.peak_flops.items()))
    t = hw.tiling
    extra = hardware.kinds.of(hw).describe(hw)
    console.print(f"  dataflow {t.dataflow}: tile {t.tile_m or 'all'} x {t.tile_n}, reuse {t.reuse_m or 'all'} x "
                  f"{t.reuse_n}; {extra}")
    levels = Table(title="memory hierarchy (outermost first)")
    for col in ("level", "kind", "size", "bandwidth", "shared"):
        levels.add_column(col)
    for lv in hw.levels:
        levels.add_row(lv.name, lv.kind, _si(lv.size_bytes, "B"), _si(lv.bandwidth, "B/s"), "yes" if lv.shared else "per unit")
    console.print(levels)
    bits = 8 * hw.word_bytes
    energy = Table(title=f"energy per {bits}-bit access, pJ (x MAC)")
    energy.add_column("table")
    energy.add_column("MAC")
    for kind in hardware.LEVEL_KINDS:
        energy.add_column(kind)
    for name in (hw.energy_table, *hw.energy_tables):
        tab = hardware.energy_table(name)
        mac = tab.mac(hw.dtype)
        energy.add_row(name + (" (default)" if name == hw.energy_table else ""), f"{mac:.3g}",
                       *(f"{tab.mean_per_bit(k) * bits:.3g} ({tab.mean_per_bit(k) * bits / mac:.2g}x)"
                         for k in hardware.LEVEL_KINDS))
    console.print(energy)


def frames_note(summary) -> str:
    """How many frames a summary covers and whether it includes dense ones (frame 0 of a trace or of
    synthetic masks, resets)."""
    frames, dense = int(summary["frames"].iloc[0]), int(summary["dense_frames"].iloc[0])
    return f"{frames} frames, {dense} of them dense (included)" if dense else f"{frames} frames"


def estimate_summary(result) -> None:
    """Per workload, hardware and kernel: the best block for latency and for energy, speed-up bounds,
    memory, the layers that pay off."""
    from rich.table import Table
    s, layers = result.estimate.summary, result.estimate.layers
    table = Table(title=f"block-sparse vs dense, {result.name}: {frames_note(s)}")
    for col in ("workload", "hw", "energy table", "kernel", "best B (time)", "speed-up (worst..best frame)",
                "energy saving", "best B (energy)", "energy saving", "memory +", "layers that pay off", "dense / frame"):
        table.add_column(col, justify="right")
    for (workload, hw, tab, kernel), group in s.groupby(["workload", "hw", "energy_table", "kernel"], sort=False):
        fast = group.loc[group["latency_s"].idxmin()]
        frugal = group.loc[group["energy_pj"].idxmin()]
        at_best = layers[(layers["workload"] == workload) & (layers["hw"] == hw) & (layers["energy_table"] == tab)
                         & (layers["kernel"] == kernel) & (layers["block"] == fast["block"])]
        pays = int((at_best["speedup"] > 1).sum())
        table.add_row(workload, hw, tab, kernel, str(int(fast["block"])),
                      f"{fast['speedup']:.2f}x ({fast['speedup_worst_frame']:.2f}..{fast['speedup_best_frame']:.2f})",
                      f"{fast['energy_saving']:.0%}", str(int(frugal["block"])), f"{frugal['energy_saving']:.0%}",
                      f"{fast['mem_overhead']:+.0%}", f"{pays}/{len(at_best)}",
                      _si(fast["latency_dense_s"] / fast["frames"], "s"))
    console = _console()
    console.print(table)
    for path in result.outputs:
        console.print(f"wrote {path}")


def verdict_table(verdicts, trace_name: str) -> None:
    from rich.table import Table
    console = _console()
    for (workload, hw, tab), group in verdicts.groupby(["workload", "hw", "energy_table"], sort=False):
        table = Table(title=f"{workload} on {hw} ({tab})")
        measured = "measured_speedup" in group and group["measured_speedup"].notna().any()
        for col in ("layer", "density", "kernel", "B time", "B energy", "speed-up (worst..best)",
                    *(("measured (median frame)",) if measured else ()),
                    "break-even", "verdict"):
            table.add_column(col, justify="left" if col in ("layer", "verdict") else "right")
        for r in group.itertuples():
            be = "" if r.break_even_density != r.break_even_density else f"{r.break_even_density:.2f}"
            seen = (("" if r.measured_speedup != r.measured_speedup else f"{r.measured_speedup:.2f}x"),) if measured else ()
            table.add_row(r.layer, f"{r.density:.3f}", r.best_kernel, str(r.best_block_time),
                          f"{r.best_block_energy} ({r.best_kernel_energy})" if r.best_kernel_energy != r.best_kernel
                          else str(r.best_block_energy),
                          f"{r.speedup:.2f}x ({r.speedup_worst_frame:.2f}..{r.speedup_best_frame:.2f})", *seen, be,
                          r.verdict, style="bold" if r.layer_id < 0 else None)
        console.print(table)


def validation_summary(result, hw: str) -> None:
    from rich.table import Table
    m = result.metrics
    console = _console()
    percent = lambda key: "error" in key or "best_block" in key  # noqa: E731
    table = Table(title=f"cost model ({hw}) vs measurements: {m['held_out_rows']} held-out of {m['rows']} rows"
                  + (f", split seed {m['seeds'].split(',')[0]}" if "seeds" in m else ""))
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in m.items():
        text = f"{value:.0%}" if percent(key) and isinstance(value, float) else (
            f"{value:.3f}" if isinstance(value, float) else str(value))
        table.add_row(key.replace("_", " "), text)
    console.print(table)
    if not result.seeds.empty:
        seeds = Table(title="held-out metrics per split seed")
        for col in result.seeds.columns:
            seeds.add_column(col.replace("_", " "), justify="right")
        for _, r in result.seeds.iterrows():
            seeds.add_row(*(f"{v:.0%}" if percent(k) else f"{v:.3f}" if isinstance(v, float) and k != "held_out_rows"
                            else str(int(v)) if k == "held_out_rows" else str(v) for k, v in r.items()))
        console.print(seeds)
    if not result.residuals.empty:
        res = Table(title="held-out residuals by shape class (predicted / measured - 1, medians)")
        for col in ("class", "value", "rows", "median error", "median abs error"):
            res.add_column(col, justify="right")
        for _, r in result.residuals.iterrows():
            res.add_row(r["class"], str(r["value"]), str(r["rows"]), f"{r['median_error']:+.0%}", f"{r['median_abs_error']:.0%}")
        console.print(res)


def simulation_summary(result, trace_name: str) -> None:
    """Per hardware: simulated vs analytical latency and energy, then the layers with the widest gaps."""
    from rich.table import Table
    console = _console()
    s = result.summary
    table = Table(title=f"simulated vs analytical, {trace_name}, B={int(s['block'].iloc[0])}")
    for col in ("workload", "hw", "kernel", "simulated", "analytical", "gap", "speed-up sim (analytical)", "energy sim",
                "energy analytical", "main stall"):
        table.add_column(col, justify="right")
    for _, r in s.iterrows():
        table.add_row(r["workload"], r["hw"], r["kernel"], _si(r["sim_s"], "s"), _si(r["analytical_s"], "s"), f"{r['gap']:+.0%}",
                      f"{r['sim_speedup']:.2f}x ({r['analytical_speedup']:.2f}x)", _si(r["sim_energy_pj"] * 1e-12, "J"),
                      _si(r["analytical_energy_pj"] * 1e-12, "J"), r["main_cause"] or "-")
    console.print(table)
    layers = result.layers.assign(abs_gap=result.layers["gap"].abs()).sort_values("abs_gap", ascending=False)
    worst = Table(title="widest gaps (layer totals over frames)")
    for col in ("hw", "kernel", "layer", "simulated", "analytical", "gap", "why"):
        worst.add_column(col, justify="right")
    for _, r in layers.head(10).iterrows():
        worst.add_row(r["hw"], r["kernel"], r["layer"], _si(r["sim_s"], "s"), _si(r["analytical_s"], "s"),
                      f"{r['gap']:+.0%}", r["main_cause"] or "-")
    console.print(worst)
    for path in result.outputs:
        console.print(f"wrote {path}")


def scalesim_summary(rows: list[dict], topology: str, config: str, output) -> None:
    """A SCALE-Sim run in SCALE-Sim's own terms (rows of `interop.scalesim.rows`)."""
    from rich.table import Table
    table = Table(title=f"{topology} on {config} (SCALE-Sim terms)")
    cols = ("layer", "total_cycles", "stall_cycles", "overall_util", "mapping_efficiency", "sram_ifmap_reads",
            "sram_filter_reads", "sram_ofmap_writes", "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes")
    for col in cols:
        table.add_column(col.replace("_", " "), justify="right")
    for r in rows:
        table.add_row(*(r[c] if c == "layer" else (f"{r[c]:.1f}" if isinstance(r[c], float) else str(r[c]))
                        for c in cols))
    console = _console()
    console.print(table)
    if output is not None:
        console.print(f"wrote {output}")
