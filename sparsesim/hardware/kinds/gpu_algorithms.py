"""The conv algorithms a GPU's library offers, timed per conv; the fastest runs, as an autotuner picks it.

cuDNN offers several forward algorithms for one conv and a framework's autotuner (TensorFlow's
`cudnn_use_autotune`, PyTorch's `cudnn.benchmark`, cudnnFind) times them all on the real problem and
keeps the fastest; CUTLASS's profiler does the same over kernels. sparsesim does it with its own
prediction: each algorithm of the GPU's `algorithms:` list is timed on the conv as the library sees it
(a batch of `images` maps of P x Q outputs: the whole map for a dense layer, the gathered tiles for a
block-sparse one) and the fastest kept, per layer, frame and block size. A YAML list per GPU says which
algorithms its library has and their parameters (a kernel's output tile, its thread-block tile, the
efficiency of its multiply: fitted where public measurements allow, `benchmarks/deepbench_gpu.py`).

- `implicit-gemm` (cuDNN's IMPLICIT_PRECOMP_GEMM, CUTLASS's implicit GEMM): the kind's tile model, the
  time the caller passes in (`direct`); one kernel, and `helper_kernels` small ones before it where the
  library has them (cuDNN's precomputed-offsets kernel: `Gpu.conv_choice` charges them).
- `winograd` (cuDNN's fused WINOGRAD, F(m x m, 3 x 3)): one kernel transforms the filters (read 9 CK,
  write alpha^2 CK, alpha = m + 2); a second transforms input tiles, multiplies and transforms back in
  one pass: an implicit GEMM over output pixels (padded to whole m x m tiles) x output channels whose
  reduction is (alpha/m)^2 x C per pixel (C padded to the kernel's channel chunk), in its own
  thread-block tile, at `efficiency` of the SM's rate; it reads its input once per channel tile, writes
  its output once and the transformed filters once per wave (the tiles of a wave share them in L2).
- `winograd-nonfused` (WINOGRAD_NONFUSED, F(m x m, 3 x 3)): four kernels: input, filter and output
  transforms as memory passes, and alpha^2 batched GEMMs of (tiles x C) . (C x K) in the GPU's own
  SGEMM tiles (`tiles:`) at `efficiency`.
Winograd applies to 3 x 3 convs of stride 1, dilation 1, one group; elsewhere only implicit GEMM runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .gpu_tiles import Tile, tile_seconds


@dataclass(frozen=True)
class Algorithm:
    """One entry of a GPU's `algorithms:` list."""
    name: str
    output_tile: int = 0         # Winograd's m (outputs per tile side)
    tile: Tile | None = None     # the kernel's thread-block tile (fused Winograd); None: the GPU's `tiles:`
    channel_chunk: int = 1       # input channels per step of the kernel's reduction (C is padded to it)
    efficiency: float = 1.0      # fraction of the SM's peak its multiply reaches
    helper_kernels: int = 0      # small kernels it launches before its main one (cuDNN's precomputed-offsets kernel)


@dataclass(frozen=True)
class ConvProblem:
    """A conv as the library sees it; arrays broadcast to (L, T, Nb)."""
    images: np.ndarray      # maps in the batch (1 for a dense layer, the active blocks for gathered tiles)
    rows: np.ndarray        # output rows per map
    cols: np.ndarray        # output columns per map
    cin: np.ndarray
    cout: np.ndarray
    in_elems: np.ndarray    # input elements the conv reads (the whole batch, halos included)
    bandwidth: np.ndarray   # bytes/s at the layer's backing level
    winograd: np.ndarray    # bool: a 3 x 3, stride 1, dilation 1, one-group conv

    @property
    def out_elems(self) -> np.ndarray:
        return self.images * self.rows * self.cols * self.cout


def _waves(tiles: np.ndarray, hw, copies: int) -> np.ndarray:
    return np.ceil(tiles / (hw.units * max(copies, 1)))


def _winograd_fused(p: ConvProblem, hw, a: Algorithm, direct) -> tuple[np.ndarray, float]:
    m = a.output_tile
    alpha2 = (m + 2) ** 2
    pixels = p.images * np.ceil(p.rows / m) * m * np.ceil(p.cols / m) * m
    reduction = alpha2 / m ** 2 * np.ceil(p.cin / a.channel_chunk) * a.channel_chunk
    compute, copies = tile_seconds(a.tile, hw, pixels, p.cout, reduction)
    m_tiles, n_tiles = np.ceil(pixels / a.tile.m), np.ceil(p.cout / a.tile.n)
    filters = alpha2 * p.cin * p.cout
    moved = p.in_elems * n_tiles + p.out_elems + filters * np.minimum(_waves(m_tiles * n_tiles, hw, copies), m_tiles)
    transform = (9 * p.cin * p.cout + filters) * hw.word_bytes / p.bandwidth     # the filter-transform kernel
    return np.maximum(compute / a.efficiency, moved * hw.word_bytes / p.bandwidth) + transform, 1.0


def _winograd_nonfused(p: ConvProblem, hw, a: Algorithm, direct) -> tuple[np.ndarray, float]:
    m = a.output_tile
    alpha2 = (m + 2) ** 2
    tiles = p.images * np.ceil(p.rows / m) * np.ceil(p.cols / m)
    passes = (p.in_elems + alpha2 * tiles * p.cin            # input transform
              + 9 * p.cin * p.cout + alpha2 * p.cin * p.cout  # filter transform
              + alpha2 * tiles * p.cout + p.out_elems)       # output transform
    gemm = np.full(np.broadcast(tiles, p.cout, p.cin).shape, np.inf)
    for t in hw.part.tiles:                                  # the library's SGEMM picks its tile
        m_tiles = np.ceil(tiles / t.m)
        compute, copies = tile_seconds(t, hw, alpha2 * m_tiles * t.m, p.cout, p.cin)
        waves = _waves(alpha2 * m_tiles * np.ceil(p.cout / t.n), hw, copies)
        moved = alpha2 * (tiles * p.cin * np.ceil(p.cout / t.n) + p.cin * p.cout * np.minimum(waves, m_tiles)
                          + tiles * p.cout)
        gemm = np.minimum(gemm, np.maximum(compute / a.efficiency, moved * hw.word_bytes / p.bandwidth))
    return passes * hw.word_bytes / p.bandwidth + gemm, 3.0


def _implicit_gemm(p: ConvProblem, hw, a: Algorithm, direct) -> tuple[np.ndarray, float]:
    return direct, 0.0


# name -> (time model: (seconds, kernels besides the conv's one launch), applies to Winograd's shapes only,
#          needs a thread-block tile, needs an output tile)
MODELS = {"implicit-gemm": (_implicit_gemm, False, False, False),
          "winograd": (_winograd_fused, True, True, True),
          "winograd-nonfused": (_winograd_nonfused, True, False, True)}


def parse(g) -> tuple[Algorithm, ...]:
    """The `algorithms:` list of a GPU section (absent: implicit GEMM alone, the tile model)."""
    rows = g.get("algorithms", list, [{"name": "implicit-gemm"}])
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or row.get("name") not in MODELS:
            g.fail(f"algorithms[{i}]", f"a mapping whose name is one of {', '.join(MODELS)}", row)
        _, _, needs_tile, needs_m = MODELS[row["name"]]
        tile = row.get("tile")
        if needs_tile and not (isinstance(tile, list) and len(tile) == 5 and all(isinstance(v, int) and v > 0
                                                                               for v in tile)):
            g.fail(f"algorithms[{i}].tile", "[M, N, K, warps, stages] of positive integers", tile)
        m, eff, chunk = row.get("output_tile", 0), row.get("efficiency", 1.0), row.get("channel_chunk", 1)
        helpers = row.get("helper_kernels", 0)
        if needs_m and not (isinstance(m, int) and m >= 2):
            g.fail(f"algorithms[{i}].output_tile", "an integer >= 2", m)
        if isinstance(eff, bool) or not isinstance(eff, (int, float)) or not 0 < eff <= 2:
            g.fail(f"algorithms[{i}].efficiency", "a number in (0, 2]", eff)
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            g.fail(f"algorithms[{i}].channel_chunk", "a positive integer", chunk)
        if isinstance(helpers, bool) or not isinstance(helpers, int) or helpers < 0:
            g.fail(f"algorithms[{i}].helper_kernels", "a non-negative integer", helpers)
        out.append(Algorithm(row["name"], m, Tile(*tile) if needs_tile else None, chunk, float(eff), helpers))
    if not out or out[0].name != "implicit-gemm":
        g.fail("algorithms", "a list starting with implicit-gemm (the tile model every conv can run in)", rows)
    return tuple(out)


@dataclass(frozen=True)
class Timed:
    """Every algorithm's seconds and extra kernels (beyond the conv's one launch) for a conv, stacked along
    a first axis in the list's order."""
    seconds: np.ndarray
    extra_kernels: np.ndarray


def time_all(p: ConvProblem, hw, algorithms: tuple[Algorithm, ...], direct: Any) -> Timed:
    """Each algorithm's time on the problem (inf where it does not apply; 0 where nothing runs)."""
    shape = np.broadcast(direct, p.images, p.rows, p.cin, p.cout).shape
    seconds, extra = [], []
    for a in algorithms:
        model, winograd_only, _, _ = MODELS[a.name]
        s, k = model(p, hw, a, direct)
        ok = p.winograd if winograd_only else True
        s = np.where(p.images > 0, np.where(ok, s, np.inf), 0.0)
        seconds.append(np.broadcast_to(s, shape))
        extra.append(np.broadcast_to(np.where(p.images > 0, k, 0.0), shape))
    return Timed(np.stack(seconds), np.stack(extra))
