"""Command line: parses arguments and calls the stages. No logic lives here."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__
from .errors import SparsesimError

EXIT_ERROR, EXIT_INTERRUPTED = 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise SparsesimError(f"{self.prog}: {message} (see --help)")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


ALL_HW = "h100,a100,orin,cpu,eyeriss,tpu-v1,gemmini"


def _add_cost_args(parser: argparse.ArgumentParser, hw: str, energy_table: bool = True) -> None:
    """The arguments every command that runs the cost model takes."""
    parser.add_argument("--hw", default=hw, help="comma-separated hardware names (see `sparsesim hw list`) or YAML paths")
    parser.add_argument("--block", default="1,2,4,8,16,32", help="comma-separated block sizes B (B x B output blocks)")
    if energy_table:
        parser.add_argument("--energy-table", metavar="NAME[,NAME]",
                            help="energy tables instead of each hardware's own (e.g. accelergy-45nm,sze-normalized, "
                            "to see how sensitive a conclusion is)")
    parser.add_argument("--frames", type=int, metavar="N", help="only the first N frames (default: all)")


def _add_measured_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--measurements", help="comma-separated `sparsesim measure` tables to put beside the predictions")
    parser.add_argument("--measured-hw", help="the hardware the measurements were taken on (e.g. cpu)")


def _names(text: str | None) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']"""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _frames(args: argparse.Namespace) -> int | None:
    if args.frames is not None and args.frames < 1:
        raise SparsesimError(f"--frames must be >= 1, got {args.frames}")
    return args.frames


def _estimate_options(args: argparse.Namespace, **extra):
    from .estimating import EstimateOptions
    return EstimateOptions(trace=args.trace, hardware=_names(args.hw), blocks=_csv_ints(args.block, "--block"),
                           frames=_frames(args), energy_tables=_names(getattr(args, "energy_table", None)) or None,
                           **extra)


def _threshold(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sparsesim",
                     description="Hardware-aware analysis of dynamic spatial sparsity in video networks.")
    parser.add_argument("--version", action="version", version=f"sparsesim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_trace_parser, _hw_parser, _estimate_parser, _blocks_parser, _report_parser, _measure_parser,
                _validate_parser, _export_parser, _sweep_parser, _simulate_parser, _info_parser):
        add(sub)
    return parser


def _trace_parser(sub) -> None:
    from .gates import GATE_KINDS
    from .models import names
    t = sub.add_parser("trace", help="run a gated model over a video and record its masks",
                       formatter_class=_Help,
                       description="Decode VIDEO, run a real trained model with Skip-Convolution gates on "
                       "every conv layer, and record each layer's mask per frame, the layer shapes and "
                       "the layer graph to a trace directory.")
    t.add_argument("video", help="a video file PyAV can decode, sample:NAME for a bundled sample "
                   "(sample:carphone_pristine, sample:bikes, sample:bigbuckbunny), or a directory or glob of "
                   "videos (traced as independent tasks, with an index.parquet)")
    t.add_argument("--model", default="rife", help=f"model from the zoo: {', '.join(names())}")
    t.add_argument("--checkpoint", metavar="PATH", help="load these weights instead of the packaged ones")
    t.add_argument("--gate", default="input-norm", help=f"gate kind: {', '.join(GATE_KINDS)}")
    t.add_argument("--threshold", type=_threshold, default=0.1, metavar="EPS",
                   help="gate threshold epsilon: a location is recomputed where its norm reaches EPS")
    t.add_argument("--gate-block", type=int, default=1, metavar="B",
                   help="gate granularity: decisions are unions over BxB output blocks")
    t.add_argument("--gate-checkpoint", metavar="PATH",
                   help="with --gate learned: trained Skip-Conv Gumbel gates, one 1-channel conv per layer "
                   "(<layer>.weight, <layer>.bias), applied to |r_t|, on where the logit is > 0")
    t.add_argument("--keep", type=float, default=0.35,
                   help="with --gate uncertainty (rife): fraction of 2x2 cells the refinement computes; "
                   "8x8/4x4/2x2 cells nest across the three refinement blocks")
    t.add_argument("--masks", metavar="PATH", help="with --gate uncertainty: your own per-frame masks (.npz with "
                   "bool arrays cells8, cells4, cells2 of shape (frames, ceil(H/c), ceil(W/c)) for the padded frame)")
    t.add_argument("--prune", type=float, default=0.0, metavar="P",
                   help="structured channel sparsity (SSL-style): prune this fraction of each layer's output "
                   "channels by filter L1 norm (pixel-shuffle groups and residual adds respected); with "
                   "--gate channel alone, or combined with a spatial gate")
    t.add_argument("--channel-scales", metavar="PATH",
                   help="your saved per-channel scale vectors (layer -> vector, .pt or .npz) instead of L1 norms")
    t.add_argument("--reset-every", type=int, default=0, metavar="K",
                   help="compute every K-th frame densely and restart the state (0 = never)")
    t.add_argument("--frames", type=int, metavar="N", help="decoded frames to use (default: all)")
    t.add_argument("--start", type=int, default=0, help="first decoded frame to use")
    t.add_argument("--size", metavar="WxH", help="resize frames to WxH (default: native size)")
    t.add_argument("-o", "--output", metavar="DIR",
                   help="trace directory (default: traces/<video>-<model>-<gate label>)")
    t.add_argument("--quality-every", type=int, metavar="N",
                   help="dense pass for PSNR every N frames, 0 = off (default: every frame for videos "
                   "of up to 300 frames, else every 10th)")
    t.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    t.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--chunk-frames", type=int, default=32, help="frames per mask chunk file")
    t.add_argument("--workers", type=int, default=1, help="parallel workers for many videos (Ray when > 1)")
    t.add_argument("--address", help="Ray cluster to run on: HOST:PORT, ray://HOST:PORT or auto (default: this machine)")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_trace)


def _hw_parser(sub) -> None:
    h = sub.add_parser("hw", help="list or show the hardware descriptions in accel_models/")
    hsub = h.add_subparsers(dest="hw_command", required=True, parser_class=_Parser)
    hsub.add_parser("list", help="one line per hardware").set_defaults(func=_hw_list)
    show = hsub.add_parser("show", help="every figure of one hardware and its energy tables")
    show.add_argument("name", help="hardware name (accel_models/<name>.yaml) or a YAML path")
    show.set_defaults(func=_hw_show)


def _estimate_parser(sub) -> None:
    e = sub.add_parser("estimate", formatter_class=_Help,
                       help="analytical energy, latency and memory of block-sparse skipping",
                       description="Turn a trace plus block sizes into energy (by memory level and data type), "
                       "Eyexam-style latency bounds and memory for block-sparse Skip-Convolutions on each "
                       "hardware, against the dense run on the same hardware.")
    e.add_argument("trace", help="trace directory written by `sparsesim trace`")
    _add_cost_args(e, ALL_HW)
    e.add_argument("--channel-group", type=int, metavar="G",
                   help="work unit of B x B pixels x G output channels: the GEMM's N tile becomes G "
                   "(default: each hardware's own tile)")
    e.add_argument("--engine", default="sparsesim", help="sparsesim, or timeloop (runs timeloop-mapper where "
                   "installed on the exported layers and reports it beside sparsesim's estimate)")
    e.add_argument("-o", "--output", metavar="FILE",
                   help="write the rows (layer x frame x hw x block) to FILE (.parquet or .csv), and the "
                   "per-layer and per-hardware tables beside it as FILE.layers.* and FILE.summary.*")
    e.set_defaults(func=_estimate)


def _blocks_parser(sub) -> None:
    b = sub.add_parser("blocks", formatter_class=_Help,
                       help="the block-size verdict per layer and hardware, for kernel authors",
                       description="Per layer and for the whole model, on each hardware: the block size that "
                       "minimises latency and the one that minimises energy, the predicted speed-up over dense "
                       "(expected, best and worst frame), the break-even density and a plain verdict.")
    b.add_argument("trace", help="trace directory written by `sparsesim trace`")
    _add_cost_args(b, "h100")
    _add_measured_args(b)
    b.add_argument("-o", "--output", metavar="FILE", help="also write the verdicts to FILE (.csv or .parquet)")
    b.set_defaults(func=_blocks)


def _report_parser(sub) -> None:
    r = sub.add_parser("report", formatter_class=_Help, help="hardware comparison report (HTML, markdown, CSV)",
                       description="Estimate one or more traces on the given hardware and write a self-contained "
                       "HTML page with altair charts (opens from disk, no internet), summary.md and the tables "
                       "as CSV to DIR.")
    r.add_argument("traces", nargs="+", metavar="TRACE", help="trace directories (compared side by side)")
    _add_cost_args(r, ALL_HW, energy_table=False)
    r.add_argument("--layer", help="layer for the Eyexam waterfall (default: the one with the most MACs)")
    r.add_argument("--export", default="", help="also write each chart as svg and/or png (e.g. svg,png)")
    _add_measured_args(r)
    r.add_argument("-o", "--output", required=True, metavar="DIR", help="report directory, e.g. reports/NAME/")
    r.set_defaults(func=_report)


def _measure_parser(sub) -> None:
    m = sub.add_parser("measure", formatter_class=_Help, help="time dense vs block-sparse conv kernels",
                       description="Time the dense conv and the block-sparse gather -> conv -> scatter kernels "
                       "(each step on its own) per layer shape x block x density, after checking the sparse "
                       "result against the dense one.")
    m.add_argument("--trace", help="take layer shapes (and each shape's median-activity mask) from this trace")
    m.add_argument("--layers", help="comma-separated layer names of the trace (default: all Conv2d layers)")
    m.add_argument("--shape", action="append", default=[], metavar="CIN,COUT,K,S,P,H,W",
                   help="a synthetic layer shape (repeatable); default: four representative 3x3/1x1 layers")
    m.add_argument("--blocks", default="2,4,8,16,32", help="comma-separated block sizes")
    m.add_argument("--densities", default="0.05,0.1,0.25,0.5,0.75,1.0", help="active-block densities of the synthetic masks")
    m.add_argument("--device", default="cpu", help="cpu or cuda")
    m.add_argument("--dtype", default="fp32", help="fp32 (TF32 off on CUDA), fp16 or bf16")
    m.add_argument("--repeat", type=int, default=15, help="timed repetitions per kernel (the median is kept)")
    m.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    m.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    m.add_argument("-o", "--output", required=True, metavar="FILE", help="e.g. traces/measurements/cpu.parquet")
    m.set_defaults(func=_measure)


def _validate_parser(sub) -> None:
    v = sub.add_parser("validate", formatter_class=_Help, help="the cost model's predictions beside measured times")
    v.add_argument("measurements", nargs="+", help="tables written by `sparsesim measure` (concatenated)")
    v.add_argument("--hw", required=True, help="the hardware the measurements were taken on (e.g. cpu)")
    v.add_argument("--holdout", type=float, default=0.5, help="fraction of layer shapes held out for the errors")
    v.add_argument("--seed", type=int, default=0, help="seed of the shape split")
    v.add_argument("--calibrate", action="store_true",
                   help="fit one scale factor per kernel on the training shapes (errors stay on held-out shapes)")
    v.add_argument("-o", "--output", metavar="DIR", help="write validation.csv, break_even.csv, metrics.json, scatter.html")
    v.set_defaults(func=_validate)


def _export_parser(sub) -> None:
    x = sub.add_parser("export", help="write a trace's layers in other tools' formats")
    xsub = x.add_subparsers(dest="format", required=True, parser_class=_Parser)
    xt = xsub.add_parser("timeloop", formatter_class=_Help,
                         help="Timeloop/Sparseloop problem, architecture and sparse_optimizations files",
                         description="Per Conv2d layer, a Timeloop v0.3 problem file (and the v0.4 form timeloopfe "
                         "reads) whose densities are the trace's measured block-sparse densities, plus the "
                         "hardware's architecture and a Sparseloop sparse_optimizations file.")
    xt.add_argument("trace", help="trace directory written by `sparsesim trace`")
    xt.add_argument("--hw", required=True, help="hardware name (e.g. eyeriss-timeloop) or YAML path")
    xt.add_argument("--block", type=int, default=8, help="block size B whose densities are exported")
    xt.add_argument("--layers", help="comma-separated layer names (default: every Conv2d layer)")
    xt.add_argument("--frames", type=int, metavar="N", help="only the first N frames (default: all)")
    xt.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    xt.set_defaults(func=_export_timeloop)


def _sweep_parser(sub) -> None:
    w = sub.add_parser("sweep", formatter_class=_Help, help="the cost model over traces x hardware x energy tables",
                       description="Estimate every trace on every hardware (and energy table), each combination "
                       "a task (on Ray with --workers > 1 or --address), gathered into one table with the same "
                       "rows as a serial run.")
    w.add_argument("traces", nargs="+", metavar="TRACE", help="trace directories")
    w.add_argument("--hw", default=ALL_HW, help="comma-separated hardware")
    w.add_argument("--block", default="1,2,4,8,16,32", help="comma-separated block sizes")
    w.add_argument("--energy-table", metavar="NAME[,NAME]", help="energy tables (default: each hardware's own)")
    w.add_argument("--threshold", help="only the traces recorded at these gate thresholds (comma-separated)")
    w.add_argument("--workers", type=int, default=1, help="parallel workers (Ray when > 1)")
    w.add_argument("--address", help="Ray cluster: HOST:PORT, ray://HOST:PORT or auto (default: this machine)")
    w.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    w.add_argument("-o", "--output", required=True, metavar="FILE", help="the table (.parquet or .csv)")
    w.set_defaults(func=_sweep)


def _simulate_parser(sub) -> None:
    s = sub.add_parser("simulate", formatter_class=_Help,
                       help="cycle-level simulation beside the analytical model (or SCALE-Sim's own files)",
                       description="Run block-sparse work through the event-level simulators (systolic array, "
                       "row-stationary spatial array, GPU tile scheduler) and show, per layer and frame, simulated "
                       "vs analytical latency and energy and the stall causes behind the gap. With --topology and "
                       "--config it reads SCALE-Sim's topology CSV and .cfg files unchanged and reports in "
                       "SCALE-Sim's terms (cycles, utilisation, SRAM and DRAM reads and writes).")
    s.add_argument("trace", nargs="?", help="trace directory written by `sparsesim trace`")
    s.add_argument("--hw", default="tpu-v1", help="comma-separated hardware (systolic, spatial or gpu kinds)")
    s.add_argument("--block", type=int, default=8, help="block size B (B x B output blocks)")
    s.add_argument("--layers", help="comma-separated layer names or ids (default: all)")
    s.add_argument("--frames", type=int, metavar="N", help="only the first N frames (default: all)")
    s.add_argument("--schedule", choices=("static", "dynamic"),
                   help="spatial arrays: blocks owned by PE sets by position (static, Eyeriss' compile-time "
                   "mapping) or dealt to free sets (dynamic) (default: static for spatial arrays)")
    s.add_argument("--topology", metavar="FILE.csv", help="a SCALE-Sim topology CSV (conv or GEMM format)")
    s.add_argument("--config", metavar="FILE.cfg", help="a SCALE-Sim config file (with --topology)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.add_argument("-o", "--output", metavar="FILE",
                   help="write the rows to FILE (.parquet or .csv); with a trace also FILE.layers.* and FILE.summary.*")
    s.set_defaults(func=_simulate)


def _info_parser(sub) -> None:
    i = sub.add_parser("info", help="summarise a trace")
    i.add_argument("trace", help="trace directory")
    i.set_defaults(func=_info)

def _trace(args: argparse.Namespace) -> int:
    import torch

    from .gates import GateConfig
    from .tracer import TraceOptions, trace_video
    from .video import parse_size
    if args.threads:
        torch.set_num_threads(args.threads)
    options = TraceOptions(
        video=args.video, model=args.model, checkpoint=args.checkpoint,
        gate=GateConfig(args.gate, args.threshold, args.gate_block, args.reset_every, args.gate_checkpoint,
                        args.keep, args.masks, args.prune, args.channel_scales),
        frames=args.frames, start=args.start, size=parse_size(args.size) if args.size else None,
        output=args.output, quality_every=args.quality_every, device=args.device,
        chunk_frames=args.chunk_frames, progress=not args.quiet)
    if _is_batch(args):
        return _trace_batch(args, options)
    result = trace_video(options)
    if not result.complete:
        print(f"interrupted: incomplete trace of {result.frames} frames written to {result.path} "
              "(meta.json: complete=false)", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"trace of {result.frames} frames written to {result.path}")
    return 0


def _csv_ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SparsesimError(f"{what} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise SparsesimError(f"{what} must be integers >= 1, got {text!r}")
    return values


def _is_batch(args: argparse.Namespace) -> bool:
    from pathlib import Path
    return Path(args.video).is_dir() or any(c in args.video for c in "*?[") or args.workers != 1 or bool(args.address)


def _trace_batch(args: argparse.Namespace, options) -> int:
    from pathlib import Path

    from .scale import discover_videos, trace_many
    from . import models
    models.get(args.model)  # an unknown model fails here, not in every worker
    result = trace_many(discover_videos(args.video), options, Path(args.output or "traces"), args.workers,
                        args.address, progress=not args.quiet)
    t = result.table
    print(f"{int(t['complete'].sum())} of {len(t)} videos traced completely ({int(t['frames'].sum())} frames); "
          f"index: {result.index}")
    return 0 if t["complete"].all() else EXIT_ERROR


def _sweep(args: argparse.Namespace) -> int:
    from .atomic import table_path, write_frame
    from .scale import sweep
    out = table_path(args.output)
    try:
        thresholds = [float(v) for v in _names(args.threshold)] or None
    except ValueError:
        raise SparsesimError(f"--threshold must be comma-separated numbers, got {args.threshold!r}") from None
    rows = sweep(args.traces, _names(args.hw), _csv_ints(args.block, "--block"), _names(args.energy_table) or None,
                 thresholds, args.workers, args.address, progress=not args.quiet)
    write_frame(out, rows)
    print(f"{len(rows)} rows written to {out}")
    return 0


def _hw_list(args: argparse.Namespace) -> int:
    from .summary import hardware_list
    hardware_list()
    return 0


def _hw_show(args: argparse.Namespace) -> int:
    from .summary import hardware_show
    hardware_show(args.name)
    return 0


def _estimate(args: argparse.Namespace) -> int:
    from .estimating import run_estimate
    from .summary import estimate_summary
    if args.engine not in ("sparsesim", "timeloop"):
        raise SparsesimError(f"--engine must be sparsesim or timeloop, got {args.engine}")
    result = run_estimate(_estimate_options(args, output=args.output, channel_group=args.channel_group))
    if args.engine == "timeloop":
        from .timeloop.compare import compare_with_timeloop
        compare_with_timeloop(result, args.output)
    estimate_summary(result)
    return 0


def _blocks(args: argparse.Namespace) -> int:
    from .atomic import table_path, write_frame
    from .estimating import run_estimate
    from .summary import verdict_table
    from .validate import load_all
    from .verdict import attach_measured, block_verdicts
    out = table_path(args.output)
    result = run_estimate(_estimate_options(args))
    verdicts = block_verdicts(result.estimate)
    if args.measurements:
        verdicts = attach_measured(verdicts, load_all(_names(args.measurements), args.measured_hw), args.measured_hw)
    verdict_table(verdicts, result.trace.path.name)
    if out is not None:
        write_frame(out, verdicts)
        print(f"wrote {out}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import ReportOptions, build
    report = build(ReportOptions(
        traces=args.traces, hardware=_names(args.hw), blocks=_csv_ints(args.block, "--block"), output=args.output,
        layer=args.layer, export=_names(args.export), frames=_frames(args),
        measurements=_names(args.measurements), measured_hw=args.measured_hw))
    print(f"report written to {report.path / 'index.html'} ({len(report.files)} files)")
    return 0


def _shape(text: str):
    from .measure import ConvShape
    try:
        cin, cout, k, stride, pad, h, w = (int(v) for v in text.split(","))
    except ValueError:
        raise SparsesimError(f"--shape must be CIN,COUT,K,S,P,H,W integers, got {text!r}") from None
    return ConvShape(cin, cout, k, stride, pad, 1, h, w)


def _measure(args: argparse.Namespace) -> int:
    import torch

    from .measure import MeasureOptions, run_measure
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.repeat < 1:
        raise SparsesimError(f"--repeat must be >= 1, got {args.repeat}")
    try:
        densities = [float(d) for d in args.densities.split(",") if d.strip()]
    except ValueError:
        raise SparsesimError(f"--densities must be comma-separated numbers, got {args.densities!r}") from None
    if not densities or not all(0 <= d <= 1 for d in densities):
        raise SparsesimError(f"--densities must lie in [0, 1], got {args.densities!r}")
    table = run_measure(MeasureOptions(
        device=args.device, blocks=_csv_ints(args.blocks, "--blocks"), densities=densities, trace=args.trace,
        layers=_names(args.layers) or None, shapes=[_shape(s) for s in args.shape],
        dtype=args.dtype, repeat=args.repeat, output=args.output, progress=not args.quiet))
    print(f"{len(table)} timings written to {args.output}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import hardware
    from .summary import validation_summary
    from .validate import load_all, validate, write_validation
    if not 0 < args.holdout <= 1:
        raise SparsesimError(f"--holdout must be in (0, 1], got {args.holdout}")
    result = validate(load_all(args.measurements, args.hw), hardware.load(args.hw), args.holdout, args.seed,
                      args.calibrate)
    validation_summary(result, args.hw)
    if args.output:
        for path in write_validation(result, Path(args.output)):
            print(f"wrote {path}")
    return 0


def _export_timeloop(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import hardware, trace, workload
    from .timeloop.export import export
    if args.block < 1:
        raise SparsesimError(f"--block must be >= 1, got {args.block}")
    wl = workload.from_trace(trace.open(args.trace), [args.block], _frames(args))
    files = export(wl, hardware.load(args.hw), args.block, Path(args.output), _names(args.layers) or None)
    print(f"{len(files)} Timeloop files written to {args.output}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from .summary import scalesim_summary, simulation_summary
    if args.topology or args.config:
        if not (args.topology and args.config) or args.trace:
            raise SparsesimError("give --topology FILE.csv and --config FILE.cfg together, without a trace")
        from .atomic import table_path, write_frame
        from .sim import scalesim
        out = table_path(args.output)
        if out is not None and not out.parent.is_dir():
            raise SparsesimError(f"cannot write {out}: directory {out.parent} does not exist")
        df = scalesim.run(args.topology, args.config)
        if out is not None:
            write_frame(out, df)
        scalesim_summary(df, args.topology, args.config, out)
        return 0
    if not args.trace:
        raise SparsesimError("give a trace directory, or --topology and --config (see --help)")
    from .simulating import SimulateOptions, run_simulate
    result = run_simulate(SimulateOptions(
        trace=args.trace, hardware=_names(args.hw), block=args.block, layers=_names(args.layers) or None,
        frames=_frames(args), output=args.output, schedule=args.schedule, progress=not args.quiet))
    simulation_summary(result, args.trace)
    return 0


def _info(args: argparse.Namespace) -> int:
    from .summary import describe
    from .trace import open as open_trace
    print(describe(open_trace(args.trace)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except SparsesimError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted: nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as e:  # disk full, permissions: name the file, skip the traceback
        print(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
