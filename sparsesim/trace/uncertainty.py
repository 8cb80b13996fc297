"""Uncertainty-guided spatial pruning (UGSP-style), training-free, for frame interpolation.

The uncertainty of a pixel is the disagreement of the two input frames warped by the model's own
coarse flow: mean over channels of |warp(I0) - warp(I1)|. Cells of 8x8, 4x4 and 2x2 pixels decide for
the refinement blocks 1, 2 and 3 (UGSP's 1/8, 1/4, 1/2 decoder scales). The finest cells are ranked
by the smallest mean uncertainty of themselves and their ancestors, and the top `keep` fraction is
kept (exact to one cell); a coarser cell is kept when any cell inside it is, so the masks nest: what a
coarse level prunes stays pruned below. A user's own masks (`--masks`) replace the computed ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import SparsesimError

CELLS = (8, 4, 2)


def _cell_mean(u: torch.Tensor, cell: int) -> torch.Tensor:
    return F.avg_pool2d(u, cell, cell, ceil_mode=True)


def _expand(cells: torch.Tensor, cell: int, size: tuple[int, int]) -> torch.Tensor:
    return cells.repeat_interleave(cell, -2).repeat_interleave(cell, -1)[..., :size[0], :size[1]]


def nested_masks(uncertainty: torch.Tensor, keep: float, cells: tuple[int, ...] = CELLS) -> list[torch.Tensor]:
    """(1,1,H,W) uncertainty -> one bool (1,1,H,W) keep-mask per cell size, coarsest first, nested."""
    h, w = uncertainty.shape[-2:]
    finest = cells[-1]
    score = _cell_mean(uncertainty, finest)
    for cell in cells[:-1]:  # a fine cell is only as uncertain as its least uncertain ancestor
        ancestor = _expand(_cell_mean(uncertainty, cell), cell // finest, score.shape[-2:])
        score = torch.minimum(score, ancestor)
    n = score.numel()
    kept = int(round(keep * n))
    flat = torch.zeros(n, dtype=torch.bool)
    if kept:
        flat[torch.argsort(score.flatten(), descending=True, stable=True)[:kept]] = True
    fine = flat.view(score.shape)
    masks = []
    for cell in cells:
        ratio = cell // finest
        coarse = F.max_pool2d(fine.float(), ratio, ratio, ceil_mode=True) > 0 if ratio > 1 else fine
        masks.append(_expand(coarse, cell, (h, w)))
    return masks


@dataclass
class UncertaintyPruner:
    """Callable the RIFE model calls with its two coarsely warped frames."""
    keep: float

    def __call__(self, warped0: torch.Tensor, warped1: torch.Tensor) -> list[torch.Tensor]:
        u = (warped0 - warped1).abs().mean(dim=1, keepdim=True)
        return [m.to(warped0.dtype) for m in nested_masks(u, self.keep)]


@dataclass
class LoadedMasks:
    """Per-step masks from a user's UGSP-style network: an .npz with bool arrays `cells8`, `cells4`,
    `cells2` of shape (steps, ceil(H/c), ceil(W/c)) for the padded frame size, one per refinement block."""
    arrays: dict[str, np.ndarray]
    step: int = 0

    @classmethod
    def load(cls, path: str | Path) -> "LoadedMasks":
        try:
            with np.load(path) as data:   # members are read (and their zip CRCs checked) here, not per step
                arrays = {k: data[k] for k in data.files}
        except Exception as e:  # numpy and zipfile raise many types for a file that is not an .npz
            raise SparsesimError(f"cannot read masks {path}: {(str(e).splitlines() or [type(e).__name__])[0][:160] if str(e) else type(e).__name__}") from None
        missing = [f"cells{c}" for c in CELLS if f"cells{c}" not in arrays]
        if missing:
            raise SparsesimError(f"masks {path} lack arrays {', '.join(missing)} (need cells8, cells4, cells2)")
        wrong = [f"cells{c}" for c in CELLS if arrays[f"cells{c}"].ndim != 3
                 or arrays[f"cells{c}"].dtype.kind not in "biu"]
        if wrong:
            raise SparsesimError(f"masks {path}: {wrong[0]} must be a bool array (steps, rows, columns)")
        return cls({k: arrays[k].astype(bool) for k in arrays})

    def __call__(self, warped0: torch.Tensor, warped1: torch.Tensor) -> list[torch.Tensor]:
        h, w = warped0.shape[-2:]
        masks = []
        for cell in CELLS:
            arr = self.arrays[f"cells{cell}"]
            expected = (-(-h // cell), -(-w // cell))
            if self.step >= len(arr) or arr.shape[1:] != expected:
                raise SparsesimError(f"masks cells{cell}: need {expected} per step for step {self.step}, "
                                     f"have {arr.shape[1:]} x {len(arr)} steps")
            cells = torch.from_numpy(arr[self.step])[None, None]
            masks.append(_expand(cells, cell, (h, w)).to(warped0.dtype))
        self.step += 1
        return masks
