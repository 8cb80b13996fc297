"""Run a gated model over a video and stream its masks to a trace (video -> Trace)."""
from __future__ import annotations

import contextlib
import copy
import datetime as dt
import math
import platform
import signal
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .. import __version__
from ..errors import SparsesimError, TraceError, require
from . import ground_truth, models, video
from .allocator import keep_freed_memory
from .gate_config import GateConfig, comparable_gate
from .preprocess import Preprocess
from .skipconv import GatedModel, psnr, record_dataflow
from .format import TraceWriter, existing_identity, read_meta
from .resume import Resumed, adopt
from .target_metrics import QualityTarget

AUTO_QUALITY_FRAMES = 300  # videos up to this many steps get a dense quality check on every frame


@dataclass(frozen=True)
class TraceOptions:
    video: str
    model: str = "rife"
    gate: GateConfig = GateConfig()
    checkpoint: str | None = None
    frames: int | None = None         # decoded frames to use (None = all)
    start: int = 0
    size: tuple[int, int] | None = None
    preprocess: Preprocess = Preprocess()   # models from a source (onnx:, torchscript:, python:)
    output: str | None = None
    quality_every: int | None = None  # None = every frame for short videos, else every 10th
    device: str = "cpu"
    chunk_frames: int = 32
    progress: bool = True
    skip_complete: bool = False       # an identical complete trace already there: leave it, report "skipped"
    resume: bool = False              # continue a killed or interrupted trace of the same identity (resume.py)
    reset_at: tuple[int, ...] = ()    # steps computed densely with reset_reason 'resume', as a resumed trace
                                      # has where it resumed: what a resumed trace is compared with
    handle_signals: bool = True       # Ctrl-C/SIGTERM close the trace as incomplete (main thread only)
    ground_truth: bool = False        # score outputs against real frames by the model's task (ground_truth.py)
    vfi_eval: bool = False            # the same, for frame interpolation only: frames 2k, 2k+2 -> real 2k+1
    target_psnr: float | None = None  # search the largest threshold keeping this PSNR first (target.py)
    target: str | None = None         # the same for any metric, METRIC=VALUE (target_metrics.py)
    calibration_frames: int = 12      # decoded frames the search traces
    per_layer: bool = False           # then raise per-layer multipliers on the epsilon found (per_layer.py)
    per_layer_runs: int | None = None  # window runs the per-layer search may take (None: 3 per layer)

    def quality_target(self) -> QualityTarget | None:
        """The quality target asked for: --target-psnr DB is --target psnr=DB."""
        if self.target_psnr is not None:
            return QualityTarget.of("psnr", self.target_psnr, "target_psnr")
        return QualityTarget.parse(self.target) if self.target is not None else None

    def validate(self) -> None:
        require(self.frames is None or self.frames >= 1, "frames", f"must be >= 1, got {self.frames}")
        require(self.start >= 0, "start", f"must be >= 0, got {self.start}")
        require(self.quality_every is None or self.quality_every >= 0, "quality_every",
                f"must be >= 0 (0 = off), got {self.quality_every}")
        require(self.chunk_frames >= 1, "chunk_frames", f"must be >= 1, got {self.chunk_frames}")
        require(all(step >= 0 for step in self.reset_at), "reset_at", f"steps must be >= 0, got {self.reset_at}")
        require(self.target is None or self.target_psnr is None, ("target", "target_psnr"),
                "give {target} or {target_psnr} (short for {target} psnr=DB), not both")
        self.quality_target()   # a malformed or unknown target, or a value out of its metric's range
        require(not self.per_layer or self.quality_target() is not None, ("per_layer", "target", "target_psnr"),
                "{per_layer} searches per-layer thresholds for a quality target: give {target} or {target_psnr} too")
        require(self.per_layer_runs is None or (self.per_layer and self.per_layer_runs >= 1),
                ("per_layer_runs", "per_layer"), f"must be >= 1 and goes with {{per_layer}}, got {self.per_layer_runs}")
        require(self.calibration_frames >= 3, "calibration_frames",
                f"must be >= 3 (a dense first step and gated ones), got {self.calibration_frames}")
        require(not (self.size and self.preprocess.input_size), ("size", "preprocess.input_size"),
                "give {size} or {preprocess.input_size}, not both")
        if self.gate.checkpoint and not Path(self.gate.checkpoint).is_file():
            raise SparsesimError(f"gate checkpoint not found: {self.gate.checkpoint}")
        require(not self.device.startswith("cuda") or torch.cuda.is_available(), "device",
                "{device} cuda asked for, but torch sees no CUDA GPU")


@dataclass(frozen=True)
class TraceResult:
    path: Path
    frames: int
    complete: bool
    skipped: bool = False
    resumed_at: int | None = None     # the step a --resume run continued from (None: traced from the start)


class StopFlag:
    """Set by the first Ctrl-C (or SIGTERM): the loop stops after the current frame and the trace is
    closed as incomplete. A second Ctrl-C interrupts at once (the target is then left untouched)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def _handle(self, signum, frame) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    @contextlib.contextmanager
    def installed(self) -> Iterator["StopFlag"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


@contextlib.contextmanager
def terminate_as_interrupt(enabled: bool = True) -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does: a quality-target search has nothing to keep, and
    unwinding removes its temporary trial traces (the default SIGTERM ends the process where it stands and
    leaves them in the temporary directory)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def frame_tensor(frame: np.ndarray, device: str) -> torch.Tensor:
    """(H,W,3) uint8 -> (1,3,H,W) float in [0,1]."""
    return torch.from_numpy(frame).to(device).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def pad_to(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-padded right/bottom to a multiple."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, -w % multiple, 0, -h % multiple))


def to_tensor(frame: np.ndarray, multiple: int, device: str) -> torch.Tensor:
    """(H,W,3) uint8 -> (1,3,H',W') float in [0,1], zero-padded right/bottom to a multiple."""
    return pad_to(frame_tensor(frame, device), multiple)


def crop_like(output: torch.Tensor, size: tuple[int, int], padded: tuple[int, int]) -> torch.Tensor:
    """Drop the padding from an output at frame resolution; outputs at other resolutions stay whole."""
    return output[..., :size[1], :size[0]] if tuple(output.shape[-2:]) == padded else output


def quality_period(options: TraceOptions, steps_expected: int) -> int:
    if options.quality_every is not None:
        return options.quality_every
    return 1 if 0 < steps_expected <= AUTO_QUALITY_FRAMES else 10


def default_output(info: video.VideoInfo, options: TraceOptions) -> Path:
    # a ground-truth trace feeds other inputs (every other frame, downscaled frames): its own directory
    truth = "-gt" if options.ground_truth or options.vfi_eval else ""
    return Path("traces") / f"{info.name}-{models.slug(options.model)}-{options.gate.label}{truth}"


def identity(info: video.VideoInfo, loaded: models.LoadedModel, options: TraceOptions,
             size: tuple[int, int]) -> dict:
    """What makes two traces the same trace: re-running it may replace it, nothing else may."""
    gate = options.gate.record()
    if options.gate.checkpoint:  # the gates' content, not their path, makes the trace
        gate["checkpoint"] = video.file_sha256(Path(options.gate.checkpoint))
    ident = {"video_sha256": info.sha256, "model": loaded.spec.name, "weights_sha256": loaded.weights_sha256,
             "gate": gate, "start": options.start, "frames": options.frames, "size": list(size)}
    if loaded.spec.preprocess is not None:  # models from a source: how frames became inputs makes the trace
        ident["preprocess"] = loaded.spec.preprocess.record()
    if options.reset_at:  # forced resets change the masks (absent when none: older traces keep their identity)
        ident["reset_at"] = sorted(set(options.reset_at))
    if options.ground_truth or options.vfi_eval:  # other inputs (every other frame, downscaled frames)
        ident["ground_truth"] = loaded.spec.task
    return ident


def same_trace(found: dict, ident: dict) -> bool:
    """Identities match; gate settings a trace predates count as their defaults (adding a setting to
    sparsesim must not make every recorded trace 'different'), except those whose default changed when
    they came: a trace without `threshold_mode` was traced with absolute thresholds and no cut detection
    (gate_config.comparable_gate)."""
    return ({**found, "gate": comparable_gate(found.get("gate", {}))} ==
            {**ident, "gate": comparable_gate(ident.get("gate", {}))})


def software() -> dict:
    return {"sparsesim": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "av": av.__version__, "python": platform.python_version(), "threads": torch.get_num_threads()}


def trace_video(options: TraceOptions, loaded: models.LoadedModel | None = None,
                notify: Callable[[str], None] = lambda line: None) -> TraceResult:
    """Trace one video. `loaded` lets a long-lived worker reuse a model it loaded once (it is copied:
    tracing instruments the module in place). `notify` hears one line on what --resume does."""
    options.validate()
    keep_freed_memory()
    path = video.resolve_video(options.video)
    info = video.probe(path)
    if loaded is None:
        loaded = models.load(options.model, options.checkpoint, options.device, options.preprocess)
    else:
        loaded = replace(loaded, module=copy.deepcopy(loaded.module))
    spec = loaded.spec
    goal = options.quality_target()
    if goal and goal.metric.tasks:   # the trials and the trace score what the metric reads
        goal.metric.check_model(spec, "target")   # psnr, the one --target-psnr names, needs no protocol
        options = replace(options, ground_truth=True)
    protocol = ground_truth.resolve(spec, options.ground_truth, options.vfi_eval)  # before anything is written
    size = options.size or (spec.preprocess and spec.preprocess.input_size) or (info.width, info.height)
    protocol.check_size(spec, size)
    calibration = None
    if goal:
        from .target import calibrate
        with terminate_as_interrupt(options.handle_signals):   # its trial traces are temporary: removed on the way out
            calibration = calibrate(options, loaded, goal, options.calibration_frames)
        options = replace(options, gate=calibration.apply(options.gate))
    target = Path(options.output) if options.output else default_output(info, options)
    ident = identity(info, loaded, options, size)
    found = existing_identity(target)
    if found is not None and not same_trace(found, ident):
        raise TraceError(f"output directory {target} already holds a different trace; "
                         "choose another -o or delete it")
    if found is not None and (options.skip_complete or options.resume) and read_meta(target).get("complete"):
        return TraceResult(target, int(read_meta(target)["frames_recorded"]), True, skipped=True)

    available = max(info.frame_count - options.start, 0)
    frames_expected = min(options.frames or available, available) if info.frame_count else (options.frames or 0)
    steps_expected = protocol.steps_expected(frames_expected)
    every = quality_period(options, steps_expected)
    meta = {
        "identity": ident,
        "video": {**asdict(info), "start": options.start, "frames_requested": options.frames,
                  "size": list(size)},
        "model": {"name": spec.name, "description": spec.description, "weights": loaded.weights_path,
                  "weights_sha256": loaded.weights_sha256, "frames_per_step": spec.frames_per_step,
                  "pad_multiple": spec.pad_multiple, "device": options.device,
                  **({"preprocess": spec.preprocess.record()} if spec.preprocess else {})},
        "gate": {**options.gate.record(), "label": options.gate.label, "semantics": options.gate.semantics},
        "quality": {"every": every, "metric": "psnr_db", "peak": spec.output_peak,
                    "of": "gated vs dense primary output of the same model", "output": spec.output_name},
        **({"ground_truth": protocol.record()} if protocol.task else {}),
        **({"calibration": calibration.record()} if calibration else {}),
        "software": software(),
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    resume = (lambda out: adopt(out, lambda found: same_trace(found, ident))) if options.resume else None
    writer = TraceWriter(target, meta, options.chunk_frames, resume)
    if options.resume:
        notify(_resume_line(target, writer.resumed))
    try:
        stop = StopFlag()
        with (stop.installed() if options.handle_signals else contextlib.nullcontext(stop)), torch.inference_mode():
            steps = _run(writer, loaded, options, path, size, every, steps_expected,
                         info.frame_count, stop, protocol)
        if steps == 0:
            need = protocol.window
            raise SparsesimError(f"no decodable frames in {path} from frame {options.start}" if need == 1 else
                                 f"model {spec.name} needs at least {need} decodable frames; {path} "
                                 f"gave fewer from frame {options.start}")
        finished = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        complete = not stop.event.is_set()
        writer.close(complete, "complete" if complete else "interrupted", finished=finished)
        return TraceResult(target, steps, complete, resumed_at=writer.resumed and writer.resumed.frames)
    except BaseException:
        writer.abort()
        raise


def _resume_line(target: Path, resumed: Resumed | None) -> str:
    if resumed is None:
        return f"nothing to resume at {target}: tracing from the start"
    dropped = f", {resumed.dropped} frames after it dropped" if resumed.dropped else ""
    return (f"resuming the {resumed.source} trace {target} at frame {resumed.frames} ({resumed.chunks} whole "
            f"chunks kept{dropped}); the gates restart there with a dense frame")


def _run(writer: TraceWriter, loaded: models.LoadedModel, options: TraceOptions, path: Path,
         size: tuple[int, int], every: int, steps_expected: int, declared: int, stop: StopFlag,
         protocol: ground_truth.Protocol) -> int:
    """The frame loop from the writer's first unrecorded step (0, or where a resumed trace stopped);
    returns the number of steps the trace holds. `protocol` turns decoded frames into each step's inputs
    (and the real frame its output is scored against, with ground truth)."""
    spec = loaded.spec
    model = GatedModel.wrap(loaded.module, options.gate)
    cuts = CutDetector(options.gate.cut_threshold, size)
    order = []
    first = writer.frames_recorded
    warm = 1 if first else 0   # a resumed run decodes the step before its first: the cut detector needs it
    step = first - warm
    forced = {first: "resume"} if first else {}
    forced.update((s, "resume") for s in options.reset_at)
    bar = tqdm(total=steps_expected or None, initial=first, unit="frame", desc=f"trace {spec.name}",
               disable=not options.progress, dynamic_ncols=True)
    # Step s reads decoded frames s*stride onwards: a resumed run decodes from the first frame of the step
    # before its first one, so its windows (and input changes) are what the uninterrupted run had.
    skip = step * protocol.stride
    count = options.frames - skip if options.frames is not None else None
    decoded = (frame_tensor(f, options.device)
               for f in video.frames(path, options.start + skip, count, size, declared))
    with bar:
        for item in protocol.steps(decoded, spec):
            inputs = [pad_to(x, spec.pad_multiple) for x in item.inputs]
            energy = cuts.energy(inputs)
            if step < first:  # the step before a resumed one: decoded only for its input change (cuts)
                step += 1
                continue
            reason = model.begin_step(step, forced.get(step) or ("cut" if cuts.is_cut(energy) else ""))
            if step == first:
                order, output = _first_step(writer, model, spec, options, inputs, step)
            else:
                output = spec.run(model.module, inputs)
            masks = model.masks(order)  # before the quality check's dense pass, which runs unpruned
            checked = every and step % every == 0
            # one dense pass serves the gated-vs-dense check and the ground truth
            dense = _dense(model, spec, inputs) if checked or protocol.columns else None
            row = {"source_frame": options.start + skip + item.offset, "reset": bool(reason), "reset_reason": reason,
                   "psnr_db": _quality(spec, inputs, output, dense, size) if checked else math.nan,
                   "reference_bytes": model.reference_bytes(), "input_mse": energy}
            if protocol.columns:
                if item.reference_offset is not None:
                    row["reference_frame"] = options.start + skip + item.reference_offset
                row.update(protocol.score(output, dense, item.reference, spec))
            row["active_mean"] = float(np.mean([m.mean() for m in masks]))
            if reason and options.gate.records_thresholds:  # a dense frame set each layer's threshold anew
                writer.add_thresholds(step, model.thresholds(order))
            writer.add_frame(step, masks, row)
            step += 1
            bar.update()
            if stop.event.is_set():
                break
    return step


def _first_step(writer: TraceWriter, model: GatedModel, spec: models.ModelSpec, options: TraceOptions,
                inputs: list[torch.Tensor], step: int) -> tuple[list, torch.Tensor]:
    """The first step of this run finds the layers, their order and the graph (and prunes channels); a
    fresh trace records them, a resumed one must find the ones it recorded."""
    with record_dataflow(model.layers, inputs) as flow:
        output = spec.run(model.module, inputs)
    order = sorted(model.called(), key=lambda layer: flow.order.index(layer.name))
    layers = [layer.layer_info(i) for i, layer in enumerate(order)]
    graph = flow.graph(output, layers)
    if step == 0:
        writer.set_layers(layers, graph)
    elif layers != writer.layers:
        raise TraceError(f"cannot resume {writer.target}: the model's layers differ from the ones it recorded")
    if options.gate.prune or options.gate.channel_scales:
        masks = _prune_channels(model, order, graph, flow.shuffles, options.gate)
        if step == 0:
            writer.set_channels(layers, masks)
        model.begin_step(step, "resume" if step else "")  # run the first frame again, now with the channels pruned
        output = spec.run(model.module, inputs)
    return order, output


class CutDetector:
    """A scene cut: the model input changed by more than `threshold` (mean squared difference of each input
    frame from the previous step's, RGB in [0, 1]; the largest over the step's frames, so a two-frame model
    resets on both steps that straddle the cut). 0 = never."""

    def __init__(self, threshold: float, size: tuple[int, int]) -> None:
        self.threshold, self.size = threshold, size
        self.previous: list[torch.Tensor] | None = None

    def energy(self, inputs: list[torch.Tensor]) -> float:
        """This step's input residual energy (NaN on the first step); remembers the inputs."""
        previous, self.previous = self.previous, inputs
        if previous is None or [t.shape for t in previous] != [t.shape for t in inputs]:
            return math.nan
        w, h = self.size  # the frame without the model's padding, which would dilute the energy
        return max(float(torch.mean((a[..., :h, :w].double() - b[..., :h, :w].double()) ** 2))
                   for a, b in zip(inputs, previous))

    def is_cut(self, energy: float) -> bool:
        return self.threshold > 0 and energy > self.threshold   # NaN compares False


def _prune_channels(model: GatedModel, order, graph, shuffles: dict[str, int], gate: GateConfig):
    """SSL-style channel masks for every gated layer, applied to the model; returns them for the trace."""
    from .channels import channel_masks, load_scales
    scales = load_scales(gate.channel_scales) if gate.channel_scales else None
    masks = channel_masks({layer.name: layer.conv for layer in order}, graph, shuffles, gate.prune, scales)
    for layer in order:
        layer.channel_mask = torch.from_numpy(masks.out[layer.name]).float().view(1, -1, 1, 1)
    return masks


def _dense(model: GatedModel, spec: models.ModelSpec, inputs: list[torch.Tensor]) -> torch.Tensor:
    """A dense pass of the same model on the same inputs (the gated state is left untouched)."""
    model.set_gating(False)
    try:
        return spec.run(model.module, inputs)
    finally:
        model.set_gating(True)


def _quality(spec: models.ModelSpec, inputs: list[torch.Tensor], gated: torch.Tensor, dense: torch.Tensor,
             size: tuple[int, int]) -> float:
    """PSNR of the gated output against the dense pass."""
    padded = tuple(inputs[0].shape[-2:])
    return psnr(crop_like(gated, size, padded), crop_like(dense, size, padded), spec.output_peak)
