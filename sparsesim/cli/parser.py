"""The command line's grammar: one small function per command adds its arguments.

Only the command being run gets its arguments (and imports what its help needs): `sparsesim --help`
and `sparsesim hw list` stay fast because nothing there loads torch, PyAV, Ray or altair.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from .. import __version__
from ..errors import SparsesimError

ALL_HW = "h100,a100,orin,cpu,eyeriss,tpu-v1,gemmini"
BLOCKS = "1,2,4,8,16,32"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        raise SparsesimError(f"{self.prog}: {message} (see --help)")


class Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help or ""
        return super()._get_help_string(action)


def threshold(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def cost_args(p: argparse.ArgumentParser, hw: str, energy_table: bool = True) -> None:
    """The arguments every command that runs the cost model takes."""
    p.add_argument("--hw", default=hw, help="comma-separated hardware names (see `sparsesim hw list`) or YAML paths")
    p.add_argument("--block", default=BLOCKS, help="comma-separated block sizes B (B x B output blocks)")
    if energy_table:
        p.add_argument("--energy-table", metavar="NAME[,NAME]",
                       help="energy tables instead of each hardware's own (e.g. accelergy-45nm,sze-normalized, "
                       "to see how sensitive a conclusion is)")
    p.add_argument("--frames", type=int, metavar="N", help="only the first N frames (default: all)")


KERNEL_HELP = ("comma-separated kernel strategies, compared side by side (a `kernel` column): gather-scatter "
               "(reduce, gather, conv, scatter launches: SBNet), fused (one launch per layer, tiles read in "
               "place: DeltaCNN), region (one gather and one scatter for a chain of layers sharing a mask: "
               "SBNet's residual unit); NAME+graphs captures the launches in a CUDA graph (default: each "
               "hardware's natural kernel: gather-scatter on GPUs and CPUs, fused on arrays)")


def kernel_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernel", metavar="NAME[,NAME]", help=KERNEL_HELP)
    p.add_argument("--mask-source", default="residual", choices=("residual", "given"),
                   help="where block masks come from: residual (the Skip-Conv reduction over x_t and x_t-1, "
                   "charged, and delta updates) or given (indices handed in, as SBNet's benchmark and UGSP's "
                   "predictor: no reduction, values computed)")


def synthetic_args(p: argparse.ArgumentParser, topology: bool = True) -> None:
    """A trace-free workload: layer shapes with synthetic masks (`simulate` takes --topology itself: with
    --config it runs SCALE-Sim's files, with --density synthetic masks)."""
    p.add_argument("--shape", action="append", default=[], metavar="CIN,COUT,K,S,P,H,W",
                   help="instead of a trace: a conv layer (H x W its input); repeat it for a chain, each shape "
                   "feeding the next (a residual unit is three)")
    if topology:
        p.add_argument("--topology", metavar="FILE.csv", help="instead of a trace: the layers of a SCALE-Sim "
                       "topology CSV")
    p.add_argument("--density", default=None if not topology else "0.1", metavar="D[,D]",
                   help="synthetic masks: fraction of each layer's output active, in (0, 1]; several are compared "
                   "(default 0.1)")
    p.add_argument("--mask", default="square", metavar="square|random|clustered",
                   help="synthetic masks: square (SBNet's top-left rectangle of the map's aspect ratio), random "
                   "(8x8-pixel cells at random) or clustered (blobs)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random and clustered masks")


def measured_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--measurements", help="comma-separated `sparsesim measure` tables to put beside the predictions")
    p.add_argument("--measured-hw", help="the hardware the measurements were taken on (e.g. cpu)")


def target_metrics_help() -> str:
    from ..trace.target_metrics import METRICS
    return "; ".join(f"{m.name}: {'higher' if m.higher_is_better else 'lower'} is better"
                     + (f", {' or '.join(m.tasks)} models" if m.tasks else "") for m in METRICS.values())


def trace_args(t: argparse.ArgumentParser) -> None:
    from ..trace.gate_config import DEFAULT_CUT_THRESHOLD, GATE_KINDS, THRESHOLD_MODES, GateConfig
    from ..trace.models import names, source_usages
    t.add_argument("video", help="a video file PyAV can decode, sample:NAME for a bundled sample "
                   "(sample:carphone_pristine, sample:bikes, sample:bigbuckbunny), or a directory or glob of "
                   "videos (traced as independent tasks, with an index.parquet)")
    t.add_argument("--model", default="rife", help=f"model from the zoo ({', '.join(names())}) or your own: "
                   f"{', '.join(source_usages())} (see 'Your own model' in the README)")
    t.add_argument("--checkpoint", metavar="PATH", help="load these weights instead of the packaged ones "
                   "(python: models: a state dict for the factory's module)")
    t.add_argument("--gate", default=GateConfig.kind, help=f"gate kind: {', '.join(GATE_KINDS)} (delta, the "
                   "default: DeltaCNN's accumulated deltas, the reference moving only where a change was propagated; "
                   "the others compare with the previous frame, as Skip-Convolutions do)")
    t.add_argument("--threshold", type=threshold, default=GateConfig.threshold, metavar="EPS",
                   help=f"gate threshold epsilon (default {GateConfig.threshold}): a location is recomputed where its "
                   "norm reaches EPS")
    t.add_argument("--threshold-mode", default="relative", choices=THRESHOLD_MODES,
                   help="relative: EPS is a fraction of each layer's own activation scale (mean |x| of its input "
                   "on the last dense frame), so one EPS means the same in every layer and model; absolute: EPS as "
                   "given (traces recorded before this option were absolute)")
    t.add_argument("--target-psnr", type=threshold, metavar="DB",
                   help="first search the largest EPS whose gated output keeps this PSNR against the dense one "
                   "over the whole video (log-scale bisection in [1e-4, 2] on --calibration-frames frames at the "
                   "start, middle and end, then up to 4 whole-video runs until the video's PSNR is in [DB, DB+0.5)), "
                   "then trace at it (the search is recorded in meta.json)")
    t.add_argument("--target", metavar="METRIC=VALUE",
                   help=f"the same search for another metric ({target_metrics_help()}); a metric read from ground "
                   "truth runs the trials and the trace with --ground-truth; --target-psnr DB is --target psnr=DB")
    t.add_argument("--calibration-frames", type=int, default=12, metavar="N",
                   help="decoded frames the --target-psnr/--target search traces at each of its three places")
    t.add_argument("--per-layer", action="store_true",
                   help="with --target/--target-psnr: after the global EPS, raise per-layer multipliers on it (x2, x4, "
                   "x8, layers by dense MACs, largest first) where the search's windows still keep the target, then "
                   "check the whole video (multipliers in meta.json's calibration.per_layer)")
    t.add_argument("--per-layer-runs", type=int, metavar="N",
                   help="window runs the --per-layer search may take (default: 3 per layer)")
    t.add_argument("--cut-threshold", type=threshold, default=DEFAULT_CUT_THRESHOLD, metavar="MSE",
                   help="a scene cut (mean squared change of an input frame, RGB in [0, 1], above MSE) forces a "
                   "dense frame; 0 = never")
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
    own_model_args(t.add_argument_group(
        "your own model (onnx:, torchscript:, python:)",
        "Frames are RGB in [0, 1]; then the channel order, (x - mean) / std per channel, and the layout. Unset "
        "options come from what the model states (an ONNX model's fixed input shape, its mean/std metadata)."))
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
    t.add_argument("--ground-truth", action="store_true",
                   help="score the gated and the dense output against real frames as the model's task is scored: "
                   "interpolation (as --vfi-eval), super-resolution (frames downscaled by the model's factor, "
                   "upscaled, scored against the originals), detection (face map and proposals against the dense "
                   "run); adds gt_* columns to frames.parquet")
    t.add_argument("--vfi-eval", action="store_true",
                   help="frame interpolation (rife): step k interpolates frame 2k+1 from frames 2k and 2k+2 and "
                   "scores it against the real frame (PSNR, SSIM), gated and dense; the gated model sees the "
                   "half-rate video, as a deployed frame-rate doubler does")
    t.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    t.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--chunk-frames", type=int, default=32, help="frames per mask chunk file")
    t.add_argument("--resume", action="store_true",
                   help="continue a killed or interrupted trace of the same settings from its last whole chunk "
                   "(the gates restart there with a dense frame, recorded as reset_reason 'resume'); a complete "
                   "trace is left as it is, with nothing to resume the trace starts from the beginning")
    t.add_argument("--workers", type=int, default=1, help="parallel workers for many videos (Ray when > 1)")
    t.add_argument("--address", help="Ray cluster to run on: HOST:PORT, ray://HOST:PORT or auto (default: this machine)")
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def own_model_args(g) -> None:
    from ..trace.preprocess import COLORS, LAYOUTS
    g.add_argument("--input-size", metavar="WxH", help="the size the model sees: frames are resized to it "
                   "(default: the model's fixed input size, else --size or the video's)")
    g.add_argument("--mean", metavar="M[,M,M]", help="subtracted per channel from frames in [0, 1] (default 0)")
    g.add_argument("--std", metavar="S[,S,S]", help="divides per channel after the mean (default 1)")
    g.add_argument("--layout", choices=LAYOUTS, help="channels first or last (default: from the model's input "
                   "shape, else nchw)")
    g.add_argument("--color", choices=COLORS, help="channel order the model expects (default rgb)")
    g.add_argument("--frame-inputs", metavar="NAME[,NAME]", help="the model inputs fed with consecutive frames "
                   "(default: every input; two names make a frame pair per step)")
    g.add_argument("--quality-output", metavar="NAME|INDEX", help="the output the quality check (PSNR) compares, "
                   "for models with several (default: the first)")
    g.add_argument("--quality-peak", type=float, metavar="P", help="the PSNR peak of that output (default 1: "
                   "images and probability maps in [0, 1])")
    g.add_argument("--pad-multiple", type=int, metavar="N",
                   help="zero-pad frames right and bottom to a multiple of N (default 1: none)")


def hw_args(h: argparse.ArgumentParser) -> None:
    hsub = h.add_subparsers(dest="hw_command", required=True, parser_class=Parser)
    hsub.add_parser("list", help="one line per hardware")
    show = hsub.add_parser("show", help="every figure of one hardware and its energy tables")
    show.add_argument("name", help="hardware name (accel_models/<name>.yaml) or a YAML path")


TRACE_OR_SHAPES = ("trace directory written by `sparsesim trace` (or --shape/--topology instead; frame 0 of "
                   "synthetic masks is dense, as a trace's, and --frames N defaults to 4)")


def estimate_args(e: argparse.ArgumentParser) -> None:
    e.add_argument("trace", nargs="?", help=TRACE_OR_SHAPES)
    cost_args(e, ALL_HW)
    kernel_args(e)
    synthetic_args(e)
    e.add_argument("--channel-group", type=int, metavar="G",
                   help="work unit of B x B pixels x G output channels: the GEMM's N tile becomes G "
                   "(default: each hardware's own tile)")
    e.add_argument("--engine", default="sparsesim", choices=("sparsesim", "timeloop"),
                   help="sparsesim, or timeloop (runs timeloop-mapper where installed on the exported layers "
                   "and reports it beside sparsesim's estimate)")
    e.add_argument("-o", "--output", metavar="FILE",
                   help="write the rows (layer x frame x hw x block) to FILE (.parquet or .csv), and the "
                   "per-layer and per-hardware tables beside it as FILE.layers.* and FILE.summary.*")


def blocks_args(b: argparse.ArgumentParser) -> None:
    b.add_argument("trace", nargs="?", help=TRACE_OR_SHAPES)
    cost_args(b, "h100")
    kernel_args(b)
    synthetic_args(b)
    measured_args(b)
    b.add_argument("-o", "--output", metavar="FILE", help="also write the verdicts to FILE (.csv or .parquet)")


def report_args(r: argparse.ArgumentParser) -> None:
    r.add_argument("traces", nargs="+", metavar="TRACE", help="trace directories (compared side by side)")
    cost_args(r, ALL_HW, energy_table=False)
    kernel_args(r)
    r.add_argument("--layer", help="layer for the Eyexam waterfall (default: the one with the most MACs)")
    r.add_argument("--export", default="", help="also write each chart as svg and/or png (e.g. svg,png)")
    measured_args(r)
    r.add_argument("-o", "--output", required=True, metavar="DIR", help="report directory, e.g. reports/NAME/")


def measure_args(m: argparse.ArgumentParser) -> None:
    m.add_argument("--trace", help="take layer shapes (and each shape's median-activity mask) from this trace")
    m.add_argument("--layers", help="comma-separated layer names of the trace (default: all Conv2d layers)")
    m.add_argument("--shape", action="append", default=[], metavar="CIN,COUT,K,S,P,H,W",
                   help="a synthetic layer shape (repeatable); default: four representative 3x3/1x1 layers")
    m.add_argument("--blocks", default="2,4,8,16,32", help="comma-separated block sizes")
    m.add_argument("--densities", default="0.05,0.1,0.25,0.5,0.75,1.0", help="active-block densities of the synthetic masks")
    m.add_argument("--kernel", dest="kernels", default="dense,gather-scatter",
                   help="comma-separated kernels: dense, gather-scatter (SBNet's four steps), fused (one Triton "
                   "kernel; --device cuda only)")
    m.add_argument("--device", default="cpu", help="cpu or cuda")
    m.add_argument("--dtype", default="fp32", help="fp32 (TF32 off on CUDA), fp16 or bf16")
    m.add_argument("--repeat", type=int, default=15, help="timed repetitions per kernel: each repetition runs one call "
                   "of every kernel and step in turn (interleaved); the median, p10 and p90 are kept")
    m.add_argument("--warmup", type=int, default=3, help="untimed calls of each kernel and step first")
    m.add_argument("--energy", action="store_true",
                   help="CUDA: also each kernel's energy per call from NVML's counter over a loop, idle power "
                   "subtracted (static/dynamic columns)")
    m.add_argument("--energy-seconds", dest="energy_s", type=float, default=0.5, metavar="S",
                   help="length of each energy loop")
    m.add_argument("--plan", metavar="FILE", help="run a YAML plan of several measurements instead (e.g. "
                   "benchmarks/h200_plan.yaml; -o is then a directory); the shape, block and kernel options above "
                   "come from the plan")
    m.add_argument("--smoke", action="store_true", help="with --plan: every shape tiny, one repeat (checks the plan)")
    m.add_argument("--dry-run", action="store_true", help="with --plan: count cases and timed calls, estimate the time")
    m.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    m.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    m.add_argument("-o", "--output", required=True, metavar="PATH",
                   help="the table, e.g. traces/measurements/cpu.parquet (with --plan: a directory)")


def validate_args(v: argparse.ArgumentParser) -> None:
    v.add_argument("measurements", nargs="+", help="tables written by `sparsesim measure` (concatenated)")
    v.add_argument("--hw", required=True, help="the hardware the measurements were taken on (e.g. cpu)")
    v.add_argument("--holdout", type=float, default=0.5, help="fraction of layer shapes held out for the errors")
    v.add_argument("--seed", type=int, default=0, help="seed of the shape split")
    v.add_argument("--seeds", metavar="S[,S]", help="several split seeds (e.g. 0,1,2,3,4): every one reported and "
                   "their median; the tables are the first seed's")
    v.add_argument("--calibrate", action="store_true",
                   help="fit one scale factor per kernel on the training shapes (errors stay on held-out shapes)")
    v.add_argument("-o", "--output", metavar="DIR", help="write validation.csv, break_even.csv, residuals.csv, "
                   "metrics.json, scatter.html (and seeds.csv)")


def calibrate_args(c: argparse.ArgumentParser) -> None:
    c.add_argument("--device", default="cpu", help="cpu or cuda")
    c.add_argument("-o", "--output", metavar="FILE.yaml",
                   help="the description to write or update, with FILE.conv-efficiency.csv and FILE.calibration.csv "
                   "beside it (default: accel_models/cpu.yaml for cpu, accel_models/h200.yaml for cuda, in place)")
    c.add_argument("--base", metavar="NAME", help="where a new FILE starts from: a hardware name or YAML path "
                   "(default: cpu for cpu, h200 for cuda); an existing FILE is updated instead")
    c.add_argument("--quick", action="store_true", help="a few seconds: tiny sizes and grid (a CI check, not figures to use)")
    c.add_argument("--threads", type=int, help="torch CPU threads, pinned for the whole run (default: torch's choice)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def export_args(x: argparse.ArgumentParser) -> None:
    xsub = x.add_subparsers(dest="format", required=True, parser_class=Parser)
    xt = xsub.add_parser("timeloop", formatter_class=Help,
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


def sweep_args(w: argparse.ArgumentParser) -> None:
    w.add_argument("traces", nargs="+", metavar="TRACE", help="trace directories")
    w.add_argument("--hw", default=ALL_HW, help="comma-separated hardware")
    w.add_argument("--block", default=BLOCKS, help="comma-separated block sizes")
    w.add_argument("--energy-table", metavar="NAME[,NAME]", help="energy tables (default: each hardware's own)")
    kernel_args(w)
    w.add_argument("--threshold", help="only the traces recorded at these gate thresholds (comma-separated)")
    w.add_argument("--workers", type=int, default=1, help="parallel workers (Ray when > 1)")
    w.add_argument("--address", help="Ray cluster: HOST:PORT, ray://HOST:PORT or auto (default: this machine)")
    w.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    w.add_argument("-o", "--output", required=True, metavar="FILE", help="the table (.parquet or .csv)")


def simulate_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("trace", nargs="?", help=TRACE_OR_SHAPES)
    kernel_args(s)
    synthetic_args(s, topology=False)
    s.add_argument("--hw", default="tpu-v1", help="comma-separated hardware (systolic, spatial or gpu kinds)")
    s.add_argument("--block", type=int, default=8, help="block size B (B x B output blocks)")
    s.add_argument("--layers", help="comma-separated layer names or ids (default: all)")
    s.add_argument("--frames", type=int, metavar="N", help="only the first N frames (default: all)")
    s.add_argument("--schedule", choices=("static", "dynamic"),
                   help="spatial arrays: blocks owned by PE sets by position (static, Eyeriss' compile-time "
                   "mapping) or dealt to free sets (dynamic) (default: the hardware kind's own, static for "
                   "spatial arrays)")
    s.add_argument("--topology", metavar="FILE.csv", help="a SCALE-Sim topology CSV (conv or GEMM format): with "
                   "--config run in SCALE-Sim's terms, without it a workload with synthetic masks")
    s.add_argument("--config", metavar="FILE.cfg", help="a SCALE-Sim config file (with --topology)")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    s.add_argument("-o", "--output", metavar="FILE",
                   help="write the rows to FILE (.parquet or .csv); with a trace also FILE.layers.* and FILE.summary.*")


def info_args(i: argparse.ArgumentParser) -> None:
    i.add_argument("trace", help="trace directory")


def check_args(c: argparse.ArgumentParser) -> None:
    c.add_argument("traces", nargs="+", metavar="TRACE", help="trace directories")
    c.add_argument("--upgrade", action="store_true",
                   help="record a manifest for traces written before manifests existed (after checking "
                        "that their parquet files are whole)")


@dataclass(frozen=True)
class Command:
    help: str
    add: Callable[[argparse.ArgumentParser], None]
    description: str = ""
    aliases: tuple[tuple[str, str], ...] = ()   # option field -> flag, where the field is not the flag's dest


GATE_FLAGS = (("gate.kind", "--gate"),)
COMMANDS: dict[str, Command] = {
    "trace": Command("run a gated model over a video and record its masks", trace_args,
                     "Decode VIDEO, run a real trained model with Skip-Convolution gates on every conv layer, and "
                     "record each layer's mask per frame, the layer shapes and the layer graph to a trace directory.",
                     GATE_FLAGS),
    "hw": Command("list or show the hardware descriptions in accel_models/", hw_args),
    "estimate": Command("analytical energy, latency and memory of block-sparse skipping", estimate_args,
                        "Turn a trace plus block sizes into energy (by memory level and data type), Eyexam-style "
                        "latency bounds and memory for block-sparse Skip-Convolutions on each hardware, against "
                        "the dense run on the same hardware."),
    "blocks": Command("the block-size verdict per layer and hardware, for kernel authors", blocks_args,
                      "Per layer and for the whole model, on each hardware: the block size that minimises latency "
                      "and the one that minimises energy, the predicted speed-up over dense (expected, best and "
                      "worst frame), the break-even density and a plain verdict."),
    "report": Command("hardware comparison report (HTML, markdown, CSV)", report_args,
                      "Estimate one or more traces on the given hardware and write a self-contained HTML page "
                      "with altair charts (opens from disk, no internet), summary.md and the tables as CSV to DIR."),
    "measure": Command("time dense vs block-sparse conv kernels", measure_args,
                       "Time the dense conv and the block-sparse kernels (gather-scatter: each step on its own; "
                       "fused: the block list and one Triton kernel) per layer shape x block x density, after "
                       "checking each sparse result against the dense one."),
    "validate": Command("the cost model's predictions beside measured times", validate_args),
    "calibrate": Command("measure this machine and write its hardware description", calibrate_args,
                         "Time streaming copies per memory level, the indexed gather and scatter, the per-call "
                         "overhead and a grid of convs (the conv's efficiency per GEMM shape), then write the "
                         "figures into the hardware YAML (each marked 'measured by sparsesim calibrate' with the "
                         "date, device, library versions and threads) and the conv-efficiency table beside it. "
                         "Nothing is written until every probe has run."),
    "export": Command("write a trace's layers in other tools' formats", export_args),
    "sweep": Command("the cost model over traces x hardware x energy tables", sweep_args,
                     "Estimate every trace on every hardware (and energy table), each combination a task (on Ray "
                     "with --workers > 1 or --address), gathered into one table with the same rows as a serial run.",
                     (("thresholds", "--threshold"),)),
    "simulate": Command("cycle-level simulation beside the analytical model (or SCALE-Sim's own files)", simulate_args,
                        "Run block-sparse work through the event-level simulators (systolic array, row-stationary "
                        "spatial array, GPU tile scheduler) and show, per layer and frame, simulated vs analytical "
                        "latency and energy and the stall causes behind the gap. With --topology and --config it "
                        "reads SCALE-Sim's topology CSV and .cfg files unchanged and reports in SCALE-Sim's terms "
                        "(cycles, utilisation, SRAM and DRAM reads and writes)."),
    "info": Command("summarise a trace", info_args),
    "check": Command("verify traces against their manifests (every file's size and SHA-256)", check_args,
                     "Hash every file of each TRACE and list every problem, one line each: missing, truncated, "
                     "damaged or unlisted files. Exit 0 when all are sound, 2 otherwise. With --upgrade, traces "
                     "written before manifests existed get one."),
}
GLOBAL_ALIASES = {"hardware": "--hw", "blocks": "--block", "energy_tables": "--energy-table", "shapes": "--shape",
                  "densities": "--density", "kernels": "--kernel"}


def build_parser(command: str | None = None) -> Parser:
    """The grammar: every command is listed; only `command` (the one being run) gets its arguments."""
    parser = Parser(prog="sparsesim",
                    description="Hardware-aware analysis of dynamic spatial sparsity in video networks.")
    parser.add_argument("--version", action="version", version=f"sparsesim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, cmd in COMMANDS.items():
        p = sub.add_parser(name, help=cmd.help, description=cmd.description or None, formatter_class=Help)
        if command == name:
            cmd.add(p)
    return parser


def command_of(argv: list[str]) -> str | None:
    """The command an argument list runs, or None (`sparsesim --help`)."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def flag_for(parser: argparse.ArgumentParser, command: str | None, field: str) -> str:
    """The flag the user typed for an option field of a stage (`gate.block` -> `--gate-block`)."""
    sub = _subparser(parser, command)
    dests = {a.dest: max(a.option_strings, key=len) if a.option_strings else (a.metavar or a.dest.upper())
             for a in (sub._actions if sub else ())}
    aliases = dict(COMMANDS[command].aliases) if command in COMMANDS else {}
    last = field.rsplit(".", 1)[-1]
    for candidate in (aliases.get(field), dests.get(field), dests.get(field.replace(".", "_")), dests.get(last),
                      GLOBAL_ALIASES.get(field)):
        if candidate:
            return candidate
    return "--" + last.replace("_", "-")


def _subparser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return None
