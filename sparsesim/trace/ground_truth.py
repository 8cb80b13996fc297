"""Ground truth as the seeds' papers measure it, keyed by the model's task (`ModelSpec.task`).

The gated-vs-dense PSNR (`psnr_db`) says how far skipping moves the output; it cannot say whether the
output is still right. A ground-truth protocol turns decoded frames into the model's inputs *and* the
real frame its output should match, then scores the gated and the dense output against it:

- interpolation (RIFE; Vimeo-90K/UCF101/Xiph style): drop every other frame and interpolate it back.
  Step k feeds frames (2k, 2k+2) and is scored against the real frame 2k+1. Why not a sliding
  (t-1, t+1) window: a deployed frame-rate doubler sees a stream of consecutive pairs in which each
  step's second frame is the next step's first; with stride 2 the gated model's temporal state sees
  exactly that stream (the half-rate video), whereas a sliding window would feed it two interleaved
  streams no deployment produces. Outputs are rounded to 8 bits first, as RIFE's benchmark scripts do
  (the papers score saved images); PSNR and SSIM on RGB in [0, 1].
- super-resolution (Set5/Set14/BasicSR convention): crop the frame to a multiple of the model's factor,
  downscale it by the factor (bicubic with antialiasing, rounded to 8 bits, as the LR images of the
  benchmarks are stored), upscale with the model and score against the cropped original: PSNR and SSIM
  on the BT.601 luma (Y) channel with `scale` pixels shaved off each border.
- detection (MTCNN P-Net, no labels on these videos): agreement with the dense run. The mean absolute
  difference of the face-probability maps, and the proposals P-Net makes at its MTCNN threshold (0.6),
  each a 12x12 box at stride 2 on the single-scale map, reduced by greedy NMS at IoU 0.5 (MTCNN's
  per-scale NMS): the fraction of dense proposals matched by a gated one at IoU >= 0.5 (recall) and of
  gated ones matched by a dense one (precision); 1 where there is nothing to match.

Without a protocol (`plain`), steps are the sliding window of `frames_per_step` frames the tracer has
always used, and nothing is scored.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

from ..errors import OptionError
from .models import ModelSpec
from .skipconv import psnr  # noqa: F401  (the same PSNR as psnr_db: inf for identical images, means skip it)

TASKS = ("interpolation", "super-resolution", "detection")
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5            # Wang et al. 2004: an 11x11 Gaussian, sigma 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03
PNET_THRESHOLD, PNET_NMS_IOU, MATCH_IOU = 0.6, 0.5, 0.5
PNET_CELL, PNET_STRIDE = 12, 2               # a P-Net map cell is a 12x12 window at stride 2


# -- metrics ----------------------------------------------------------------------------------------------

def _gaussian(size: int, sigma: float) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x * x / (2 * sigma * sigma))
    return g / g.sum()


def _blur_valid(x: torch.Tensor, taps: list[float]) -> torch.Tensor:
    """Separable 'valid' filtering of (N, C, H, W) by `taps` along H then W, each tap one whole-array
    multiply-add: the same sums as two depthwise convolutions, 2.6x faster in float64 on a CPU (torch's
    double-precision grouped conv has no fast path; SSIM was 60% of a 1280x720 --vfi-eval trace)."""
    n = len(taps)
    h, w = x.shape[-2] - n + 1, x.shape[-1] - n + 1
    rows = x[..., 0:h, :] * taps[0]
    for k in range(1, n):
        rows.add_(x[..., k:k + h, :], alpha=taps[k])
    out = rows[..., 0:w] * taps[0]
    for k in range(1, n):
        out.add_(rows[..., k:k + w], alpha=taps[k])
    return out


def ssim(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> float:
    """Mean SSIM of two (N, C, H, W) images, per channel then averaged, Gaussian window 'valid' as in
    Wang et al.'s reference code; NaN for images smaller than the window."""
    a, b = a.double(), b.double()
    c = a.shape[1]
    if min(a.shape[-2:]) < SSIM_WINDOW:
        return math.nan
    taps = _gaussian(SSIM_WINDOW, SSIM_SIGMA).tolist()
    # the five local moments in one pass over a stacked tensor
    mu_a, mu_b, aa, bb, ab = _blur_valid(torch.cat([a, b, a * a, b * b, a * b], dim=1), taps).split(c, dim=1)
    var_a, var_b = aa - mu_a ** 2, bb - mu_b ** 2
    cov = ab - mu_a * mu_b
    c1, c2 = (SSIM_K1 * peak) ** 2, (SSIM_K2 * peak) ** 2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(index.mean())


def quantise(x: torch.Tensor) -> torch.Tensor:
    """To 8 bits and back: what a saved output image holds."""
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.601 Y of RGB in [0, 1] (MATLAB rgb2ycbcr, as the SR benchmarks compute it), in [0, 1]."""
    w = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x * w).sum(1, keepdim=True) + 16.0) / 255.0


# -- detection agreement ----------------------------------------------------------------------------------

def proposals(prob: torch.Tensor, threshold: float = PNET_THRESHOLD) -> torch.Tensor:
    """P-Net's proposals from a (1, 1, h, w) face-probability map: (n, 4) boxes x0, y0, x1, y1 in frame
    pixels after greedy NMS, highest probability first."""
    p = prob[0, 0]
    ys, xs = torch.nonzero(p >= threshold, as_tuple=True)
    if len(ys) == 0:
        return torch.zeros((0, 4), dtype=torch.float64)
    scores = p[ys, xs].double()
    x0, y0 = xs.double() * PNET_STRIDE, ys.double() * PNET_STRIDE
    boxes = torch.stack([x0, y0, x0 + PNET_CELL, y0 + PNET_CELL], 1)[torch.argsort(scores, descending=True, stable=True)]
    return boxes[_nms(boxes, PNET_NMS_IOU)]


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, m) IoU of two box sets."""
    lo = torch.maximum(a[:, None, :2], b[None, :, :2])
    hi = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (hi - lo).clamp(min=0).prod(-1)
    area = lambda x: (x[:, 2:] - x[:, :2]).prod(-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def _nms(boxes: torch.Tensor, limit: float) -> torch.Tensor:
    """Indices kept by greedy NMS of boxes sorted by score: one vectorised IoU row per kept box (the
    greedy order is inherently sequential; the loop runs over kept boxes, not pixels)."""
    alive = torch.ones(len(boxes), dtype=torch.bool)
    keep = []
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        keep.append(i)
        alive[i + 1:] &= iou(boxes[i:i + 1], boxes[i + 1:])[0] <= limit
    return torch.tensor(keep, dtype=torch.long)


def matched(a: torch.Tensor, b: torch.Tensor, limit: float = MATCH_IOU) -> float:
    """Fraction of boxes in `a` with a box of `b` at IoU >= limit (1 when `a` is empty)."""
    if len(a) == 0:
        return 1.0
    if len(b) == 0:
        return 0.0
    return float((iou(a, b) >= limit).any(1).double().mean())


# -- protocols --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    inputs: tuple[torch.Tensor, ...]     # the model's frames, (1, 3, h, w) in [0, 1], not yet padded
    reference: torch.Tensor | None       # the real frame the output is scored against
    offset: int                          # first decoded frame of the step, counted from --start
    reference_offset: int | None         # the scored real frame, counted from --start


Select = Callable[[list[torch.Tensor], ModelSpec], tuple[tuple[torch.Tensor, ...], torch.Tensor | None, int | None]]
Score = Callable[[torch.Tensor, torch.Tensor, "torch.Tensor | None", ModelSpec], dict[str, float]]


@dataclass(frozen=True)
class Protocol:
    task: str                    # '' for the plain sliding window
    window: int                  # decoded frames one step reads
    stride: int                  # decoded frames from one step to the next
    columns: tuple[str, ...]     # what `score` adds to each row of frames.parquet
    describe: str                # for meta.json
    select: Select               # window -> (model inputs, reference, reference index in the window)
    score: Score                 # (gated output, dense output, reference, spec) -> columns
    min_side: Callable[[ModelSpec], int] = lambda spec: 1   # the smallest frame side it can score

    def steps(self, frames: Iterator[torch.Tensor], spec: ModelSpec) -> Iterator[Step]:
        window: deque[torch.Tensor] = deque(maxlen=self.window)
        for i, frame in enumerate(frames):
            window.append(frame)
            first = i + 1 - self.window
            if first >= 0 and first % self.stride == 0:
                inputs, reference, at = self.select(list(window), spec)
                yield Step(inputs, reference, first, None if at is None else first + at)

    def steps_expected(self, frames: int) -> int:
        return (frames - self.window) // self.stride + 1 if frames >= self.window else 0

    def check_size(self, spec: ModelSpec, size: tuple[int, int]) -> None:
        """A frame too small for the protocol is a one-line error before anything is traced."""
        need = self.min_side(spec)
        if min(size) < need:
            raise OptionError("size", f"{size[0]}x{size[1]} is too small for {self.task} ground truth of {spec.name}: "
                              f"each side needs at least {need} pixels")

    def record(self) -> dict:
        return {"task": self.task, "columns": list(self.columns), "protocol": self.describe}


def plain(spec: ModelSpec) -> Protocol:
    """The tracer's steps without ground truth: consecutive windows of `frames_per_step` frames."""
    return Protocol("", spec.frames_per_step, 1, (), "", lambda w, s: (tuple(w), None, None), lambda *a: {})


def _image_scores(gated: torch.Tensor, dense: torch.Tensor, reference: torch.Tensor,
                  view: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
    ref = view(reference)
    g, d = view(quantise(gated)), view(quantise(dense))
    return {"gt_psnr_db": psnr(g, ref), "gt_ssim": ssim(g, ref),
            "gt_psnr_dense_db": psnr(d, ref), "gt_ssim_dense": ssim(d, ref)}


IMAGE_COLUMNS = ("gt_psnr_db", "gt_ssim", "gt_psnr_dense_db", "gt_ssim_dense")


def _interpolation_select(window, spec):
    before, middle, after = window
    return (before, after), middle, 1


def _interpolation_score(gated, dense, reference, spec):
    h, w = reference.shape[-2:]
    return _image_scores(gated[..., :h, :w], dense[..., :h, :w], reference, lambda x: x)


def modcrop(frame: torch.Tensor, scale: int) -> torch.Tensor:
    h, w = frame.shape[-2:]
    return frame[..., :h - h % scale, :w - w % scale]


def downscale(frame: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic with antialiasing (MATLAB imresize's kernel widening), rounded to 8 bits."""
    h, w = frame.shape[-2:]
    return quantise(F.interpolate(frame, size=(h // scale, w // scale), mode="bicubic", antialias=True,
                                  align_corners=False))


def _sr_select(window, spec):
    (frame,) = window
    high = modcrop(frame, spec.scale)
    return (downscale(high, spec.scale),), high, 0


def _sr_score(gated, dense, reference, spec):
    s = spec.scale
    h, w = reference.shape[-2:]
    shave = lambda x: luma(x[..., :h, :w])[..., s:h - s, s:w - s]  # noqa: E731
    return _image_scores(gated, dense, reference, shave)


def _detection_score(gated, dense, reference, spec):
    found, truth = proposals(gated), proposals(dense)
    return {"gt_prob_mae": float((gated.double() - dense.double()).abs().mean()),
            "gt_det_dense": float(len(truth)), "gt_det_gated": float(len(found)),
            "gt_det_recall": matched(truth, found), "gt_det_precision": matched(found, truth)}


PROTOCOLS: dict[str, Protocol] = {p.task: p for p in (
    Protocol("interpolation", 3, 2, IMAGE_COLUMNS,
             "frames (2k, 2k+2) in, scored against the real frame 2k+1; outputs rounded to 8 bits; "
             "PSNR and SSIM (11x11 Gaussian, sigma 1.5) on RGB in [0, 1], gated and dense",
             _interpolation_select, _interpolation_score),
    Protocol("super-resolution", 1, 1, IMAGE_COLUMNS,
             "each frame cropped to a multiple of the factor, downscaled by it (bicubic, antialiased, 8 bits), "
             "upscaled by the model, scored against the cropped frame: PSNR and SSIM on BT.601 luma with the "
             "factor shaved off each border, gated and dense",
             _sr_select, _sr_score, lambda spec: 3 * spec.scale),  # 1 low-res pixel left after the shave
    Protocol("detection", 1, 1, ("gt_prob_mae", "gt_det_dense", "gt_det_gated", "gt_det_recall", "gt_det_precision"),
             "agreement with the dense run: mean |gated - dense| face probability; P-Net proposals (p >= 0.6, "
             "12x12 boxes at stride 2, greedy NMS at IoU 0.5) matched at IoU >= 0.5: recall of the dense ones, "
             "precision of the gated ones",
             lambda w, s: (tuple(w), None, None), _detection_score),
)}


def resolve(spec: ModelSpec, ground_truth: bool, vfi_eval: bool) -> Protocol:
    """The protocol a trace runs: the model's task's with --ground-truth or --vfi-eval, else `plain`."""
    if vfi_eval and spec.task != "interpolation":
        kind = f"a {spec.task} model" if spec.task else "not a frame-interpolation model"
        raise OptionError("vfi_eval", f"needs a frame-interpolation model (rife); {spec.name} is {kind}"
                          + ("; use --ground-truth" if spec.task else ""))
    if not (ground_truth or vfi_eval):
        return plain(spec)
    if spec.task not in PROTOCOLS:
        raise OptionError("ground_truth", f"has no protocol for {spec.name}: ground truth is defined for the "
                          f"zoo's tasks ({', '.join(TASKS)}), and this model states none")
    protocol = PROTOCOLS[spec.task]
    if spec.task == "interpolation" and spec.frames_per_step != 2:
        raise OptionError("vfi_eval", f"needs a model that takes a frame pair; {spec.name} takes "
                          f"{spec.frames_per_step} frames per step")
    return protocol
