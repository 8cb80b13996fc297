"""One function per command: turn the parsed arguments into the stage's options, call the stage once,
print what it returns. No logic lives here."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import SparsesimError

EXIT_ERROR, EXIT_INTERRUPTED = 2, 130


def names(text: str | None) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']"""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def csv_ints(text: str, flag: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SparsesimError(f"{flag} must be comma-separated integers, got {text!r}") from None


def csv_floats(text: str | None, flag: str) -> list[float]:
    try:
        return [float(v) for v in names(text)]
    except ValueError:
        raise SparsesimError(f"{flag} must be comma-separated numbers, got {text!r}") from None


def wrote(paths) -> int:
    for path in paths:
        print(f"wrote {path}")
    return 0


def workload_options(args: argparse.Namespace) -> dict:
    """The workload, kernel and synthetic-mask options a cost or simulate command shares."""
    return dict(kernels=names(args.kernel), mask_source=args.mask_source, shapes=tuple(getattr(args, "shape", ())),
                topology=getattr(args, "topology", None), seed=getattr(args, "seed", 0),
                densities=tuple(csv_floats(getattr(args, "density", None) or "0.1", "--density")),
                mask=getattr(args, "mask", "square"))


def estimate_options(args: argparse.Namespace, **extra):
    from ..cost.run import EstimateOptions
    return EstimateOptions(trace=args.trace, hardware=names(args.hw), blocks=csv_ints(args.block, "--block"),
                           frames=args.frames, energy_tables=names(getattr(args, "energy_table", None)) or None,
                           **workload_options(args), **extra)


def shape(text: str):
    from ..measure.kernels import ConvShape
    return ConvShape.parse(text)


def trace(args: argparse.Namespace) -> int:
    import torch

    from ..trace.gate_config import GateConfig
    from ..trace.preprocess import Preprocess
    from ..trace.tracer import TraceOptions, trace_video
    from ..text import parse_size
    if args.threads:
        torch.set_num_threads(args.threads)
    options = TraceOptions(
        video=args.video, model=args.model, checkpoint=args.checkpoint,
        gate=GateConfig(args.gate, args.threshold, args.gate_block, args.reset_every, args.gate_checkpoint,
                        args.keep, args.masks, args.prune, args.channel_scales, args.threshold_mode,
                        args.cut_threshold),
        frames=args.frames, start=args.start, size=parse_size(args.size) if args.size else None,
        preprocess=Preprocess.parse(args.input_size, args.mean, args.std, args.layout, args.color, args.frame_inputs,
                                    args.quality_output, args.quality_peak, args.pad_multiple),
        output=args.output, quality_every=args.quality_every, device=args.device,
        chunk_frames=args.chunk_frames, progress=not args.quiet, resume=args.resume,
        ground_truth=args.ground_truth, vfi_eval=args.vfi_eval, target_psnr=args.target_psnr,
        target=args.target, calibration_frames=args.calibration_frames, per_layer=args.per_layer,
        per_layer_runs=args.per_layer_runs)
    if Path(args.video).is_dir() or any(c in args.video for c in "*?[") or args.workers != 1 or args.address:
        return trace_batch(args, options)
    result = trace_video(options, notify=lambda line: print(line, file=sys.stderr))
    if result.skipped:
        print(f"{result.path} is complete ({result.frames} frames): nothing to resume, left as it is")
        return 0
    if not result.complete:
        print(f"interrupted: incomplete trace of {result.frames} frames written to {result.path} "
              "(meta.json: complete=false)", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"trace of {result.frames} frames written to {result.path}")
    return 0


def trace_batch(args: argparse.Namespace, options) -> int:
    from ..distributed.tracing import discover_videos, trace_many
    from ..trace import models
    models.check(args.model)  # an unknown model or a missing model file fails here, not in every worker
    result = trace_many(discover_videos(args.video), options, Path(args.output or "traces"), args.workers,
                        args.address, progress=not args.quiet)
    t = result.table
    print(f"{int(t['complete'].sum())} of {len(t)} videos traced completely ({int(t['frames'].sum())} frames); "
          f"index: {result.index}")
    return 0 if t["complete"].all() else EXIT_ERROR


def sweep(args: argparse.Namespace) -> int:
    from ..distributed.sweep import SweepOptions, run_sweep
    rows, out = run_sweep(SweepOptions(
        traces=args.traces, hardware=names(args.hw), blocks=csv_ints(args.block, "--block"),
        kernels=names(args.kernel), mask_source=args.mask_source,
        output=args.output, energy_tables=names(args.energy_table) or None,
        thresholds=csv_floats(args.threshold, "--threshold") or None, workers=args.workers, address=args.address,
        progress=not args.quiet))
    print(f"{len(rows)} rows written to {out}")
    return 0


def hw(args: argparse.Namespace) -> int:
    from ..report.console import hardware_list, hardware_show
    if args.hw_command == "list":
        hardware_list()
    else:
        hardware_show(args.name)
    return 0


def estimate(args: argparse.Namespace) -> int:
    from ..cost.run import run_estimate
    from ..report.console import estimate_summary
    result = run_estimate(estimate_options(args, output=args.output, channel_group=args.channel_group))
    if args.engine == "timeloop":
        from ..interop.timeloop.compare import compare_with_timeloop
        compare_with_timeloop(result, args.output)
    estimate_summary(result)
    return 0


def blocks(args: argparse.Namespace) -> int:
    from ..report.console import verdict_table
    from ..report.verdict import BlocksOptions, run_blocks
    result = run_blocks(BlocksOptions(estimate_options(args), names(args.measurements), args.measured_hw,
                                      args.output))
    verdict_table(result.verdicts, result.trace)
    return wrote(result.outputs)


def report(args: argparse.Namespace) -> int:
    from ..report.comparison import ReportOptions, build
    result = build(ReportOptions(
        traces=args.traces, hardware=names(args.hw), blocks=csv_ints(args.block, "--block"), output=args.output,
        layer=args.layer, export=names(args.export), frames=args.frames, kernels=names(args.kernel),
        mask_source=args.mask_source,
        measurements=names(args.measurements), measured_hw=args.measured_hw))
    print(f"report written to {result.path / 'index.html'} ({len(result.files)} files)")
    return 0


def measure(args: argparse.Namespace) -> int:
    import torch

    from ..measure.runner import MeasureOptions, run_measure
    # pinned for the whole run and recorded in every row (`threads`): torch's choice unless told
    torch.set_num_threads(args.threads or torch.get_num_threads())
    if args.plan:
        return measure_plan(args)
    table = run_measure(MeasureOptions(
        device=args.device, blocks=csv_ints(args.blocks, "--blocks"), densities=csv_floats(args.densities, "--densities"),
        trace=args.trace, layers=names(args.layers) or None, shapes=[shape(s) for s in args.shape],
        dtype=args.dtype, repeat=args.repeat, warmup=args.warmup, kernels=names(args.kernels), energy=args.energy, energy_s=args.energy_s,
        output=args.output, progress=not args.quiet))
    print(f"{len(table)} timings written to {args.output}")
    return 0


def measure_plan(args: argparse.Namespace) -> int:
    from ..measure.plan import PlanOptions, run_plan
    result = run_plan(PlanOptions(args.plan, args.output, args.device, args.smoke, args.dry_run, not args.quiet))
    return wrote(result.outputs)


def validate(args: argparse.Namespace) -> int:
    from ..report.console import validation_summary
    from ..report.validation import ValidateOptions, run_validate
    result = run_validate(ValidateOptions(args.measurements, args.hw, args.holdout, args.seed, args.calibrate,
                                          args.output, csv_ints(args.seeds or "", "--seeds")))
    validation_summary(result.validation, args.hw)
    return wrote(result.outputs)


def calibrate(args: argparse.Namespace) -> int:
    from ..measure.calibrate import CalibrateOptions, run_calibrate
    result = run_calibrate(CalibrateOptions(device=args.device, output=args.output, base=args.base, quick=args.quick,
                                            threads=args.threads, progress=not args.quiet))
    for f in result.figures:
        if f.path[0] != "calibration":
            value = f"{f.value:.4g}" if isinstance(f.value, float) else str(f.value)
            print(f"{'.'.join(f.path):32s} {value}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"calibrated in {result.seconds:.0f} s")
    return wrote(result.paths)


def export(args: argparse.Namespace) -> int:
    from ..interop.timeloop.export import ExportOptions, run_export
    files = run_export(ExportOptions(trace=args.trace, hardware=args.hw, block=args.block, output=args.output,
                                     layers=names(args.layers) or None, frames=args.frames))
    print(f"{len(files)} Timeloop files written to {args.output}")
    return 0


def simulate(args: argparse.Namespace) -> int:
    from ..report.console import scalesim_summary, simulation_summary
    if args.config or (args.topology and args.density is None):
        if not (args.topology and args.config) or args.trace or args.shape:
            raise SparsesimError("give --topology FILE.csv and --config FILE.cfg together (SCALE-Sim's terms), "
                                 "or --topology with --density for synthetic masks; without a trace or --shape")
        from ..interop.scalesim import run_files
        table, out = run_files(args.topology, args.config, args.output)
        scalesim_summary(table, args.topology, args.config, out)
        return 0
    from ..sim.run import SimulateOptions, run_simulate
    options = SimulateOptions(
        trace=args.trace, hardware=names(args.hw), block=args.block, layers=names(args.layers) or None,
        frames=args.frames, output=args.output, schedule=args.schedule, progress=not args.quiet,
        **workload_options(args))
    result = run_simulate(options)
    simulation_summary(result, options.source.label)
    return 0


def info(args: argparse.Namespace) -> int:
    from ..report.console import describe
    from ..trace.format import open as open_trace
    print(describe(open_trace(args.trace)))
    return 0


def check(args: argparse.Namespace) -> int:
    from ..trace.check import check_traces
    return 0 if check_traces([Path(t) for t in args.traces], upgrade=args.upgrade) else EXIT_ERROR
