"""Does a trace's activity follow the motion? Active fraction of one layer inside vs outside where the frame changed.

Issue 17 asks that at the defaults "a static region is skipped, a moving one is not". For every gated step
of a trace this re-decodes the step's inputs exactly as the tracer built them (same protocol, same padding),
takes the frame change |inputs_t - inputs_{t-1}| at the layer's input resolution (area average; the
largest over the step's frames and RGB), marks the pixels above --change (RGB in [0, 1]), dilates them by
the kernel's reach and maps them onto the layer's output grid (a cell is 'moving' when it reads a moving
pixel). It then reports the layer's active fraction inside the moving region and outside it, over the
gated steps.

    PYTHONPATH=. python -m sparsesim.cli trace sample:bikes --model rife --frames 25 -o /tmp/bikes-rife
    PYTHONPATH=. python benchmarks/motion_follows.py /tmp/bikes-rife     # first layer, --change 0.01,0.02,0.05

Frame-to-frame change is a proxy for motion: noise and lighting flicker count as change too, which is
why the threshold is a small absolute step rather than 0.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from sparsesim import trace
from sparsesim.trace import ground_truth, models, video
from sparsesim.trace.tracer import frame_tensor, pad_to


@dataclass(frozen=True)
class MotionActivity:
    layer: str
    steps: int                  # gated steps counted
    moving_share: float         # fraction of the layer's output cells in the moving region
    active_moving: float        # active fraction inside the moving region
    active_static: float        # active fraction outside it
    static_skipped: float       # 1 - active_static


def traced_video(meta: dict) -> Path:
    """The video the trace recorded: its recorded path, else the bundled sample of that name (a trace made
    on another machine), whichever has the recorded content."""
    recorded = Path(meta["video"].get("path", ""))
    samples = video.sample_videos()
    for path in (recorded, samples.get(meta["video"]["name"])):
        if path and path.is_file() and video.file_sha256(path) == meta["identity"]["video_sha256"]:
            return path
    raise SystemExit(f"the video this trace recorded ({recorded}) is not here with the same content")


def step_inputs(t: trace.Trace) -> Iterator[list[torch.Tensor]]:
    """Each step's padded model inputs, rebuilt as the tracer built them (the trace's own protocol)."""
    ident, meta = t.meta["identity"], t.meta
    spec = models.load(ident["model"]).spec
    truth = "ground_truth" in meta
    protocol = ground_truth.resolve(spec, truth and spec.task != "interpolation", truth and spec.task == "interpolation")
    path = traced_video(meta)
    decoded = (frame_tensor(f, "cpu") for f in video.frames(path, ident["start"], ident["frames"],
                                                                tuple(ident["size"])))
    for item in protocol.steps(decoded, spec):
        yield [pad_to(x, spec.pad_multiple) for x in item.inputs]


def changed(now: list[torch.Tensor], before: list[torch.Tensor], threshold: float,
            layer: trace.LayerInfo) -> torch.Tensor:
    """(in_h, in_w) bool: where any input frame of the step, seen at the layer's input resolution (area
    average: RIFE's first block reads the frames at a quarter scale), moved by more than `threshold` in
    any channel."""
    def scaled(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(layer.in_h, layer.in_w), mode="area")

    diff = torch.stack([(scaled(a) - scaled(b)).abs().amax(dim=1)[0] for a, b in zip(now, before)]).amax(dim=0)
    return diff > threshold


def on_layer_grid(moving: torch.Tensor, layer: trace.LayerInfo) -> np.ndarray:
    """Moving input pixels -> the output cells of `layer` that read one (dilated by the kernel's reach on the
    input grid, then any moving pixel under an output cell's stride window)."""
    ry, rx = layer.kernel_h // 2, layer.kernel_w // 2
    grid = F.max_pool2d(moving[None, None].float(), (2 * ry + 1, 2 * rx + 1), stride=1, padding=(ry, rx))
    grid = F.adaptive_max_pool2d(grid, (layer.out_h, layer.out_w))
    return grid[0, 0].numpy() > 0


def motion_activity(path, layer: int | str = 0, change: float = 0.05) -> MotionActivity:
    t = trace.open(path)
    info = t.layer(layer)
    masks = t.layer_masks(info.id)
    resets = t.frames["reset"].to_numpy()
    inside, outside, cells_in, cells_out, steps = 0, 0, 0, 0, 0
    before = None
    for step, now in enumerate(step_inputs(t)):
        if step >= len(masks):
            break
        if before is not None and not resets[step]:   # dense steps say nothing about gating
            region = on_layer_grid(changed(now, before, change, info), info)
            mask = masks[step]
            inside += int(mask[region].sum())
            outside += int(mask[~region].sum())
            cells_in += int(region.sum())
            cells_out += int((~region).sum())
            steps += 1
        before = now
    active_in = inside / cells_in if cells_in else float("nan")
    active_out = outside / cells_out if cells_out else float("nan")
    return MotionActivity(info.name, steps, cells_in / max(cells_in + cells_out, 1), active_in, active_out,
                          1.0 - active_out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace")
    parser.add_argument("--layer", default="0", help="layer id or name (default: the first)")
    parser.add_argument("--change", default="0.01,0.02,0.05",
                        help="a pixel moved when it changed by more (RGB in [0, 1]); comma-separated: one line each")
    args = parser.parse_args()
    torch.set_num_threads(1)
    layer = int(args.layer) if args.layer.isdigit() else args.layer
    for change in map(float, args.change.split(",")):
        r = motion_activity(args.trace, layer, change)
        print(f"{args.trace}: layer {r.layer}, {r.steps} gated steps, change > {change:g}: moving region "
              f"{r.moving_share:.1%} of the cells; active {r.active_moving:.1%} inside it, {r.active_static:.1%} "
              f"outside it (static skipped {r.static_skipped:.1%})")


if __name__ == "__main__":
    main()
