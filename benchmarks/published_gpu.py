"""sparsesim beside SBNet's published GTX 1080 Ti speed-ups (Ren et al., CVPR 2018; data/sbnet_gtx1080ti.csv,
copied from ../shared/gpu-anchors/). No GPU needed: the rows are data.

    python benchmarks/published_gpu.py [--sensitivity] [--hw FILE.yaml] [-o benchmarks/results/published_gpu.csv]

What SBNet's benchmark times (uber-research/sbnet, benchmark/sparse_conv_perf.py and benchmark_topleft.py at
the paper's commit cf8ea06, read for this), and how each part is charged here:
- The block indices are computed once outside the timed graph and fed in (`ind_init`, `bin_init`), so the
  mask source is `given`: no reduction is charged.
- Which blocks are active: `reduce_mask` with `avgpool=True, tol=0.05`: a block is active where the mean
  of the mask over its *input* window (the output tile plus the receptive field's halo, zero outside the
  map) exceeds 0.05; the mask is a top-left rectangle covering `density` of the map (`sbnet_workload`).
- The maps are those `benchmark_configs.py` times (400x700, 200x350, 100x175, 50x88; the table says 704,
  352, 176).
- Timed per repeat, for one conv: `sparse_gather` -> `tf.nn.conv2d` (VALID, NCHW, cuDNN) ->
  `sparse_scatter_var` (in place): sparsesim's `gather-scatter` kernel on values. Dense: one
  `tf.nn.conv2d` (SAME, NCHW). For the residual unit: one gather of the unit's input tiles, then per conv
  a training-mode fused batch norm, a ReLU and the conv on the tiles, and one
  `sparse_scatter_var(add=True)`: sparsesim's `region` kernel, plus the batch norms and ReLUs (and, dense,
  the residual add) that sparsesim's conv-only layers do not hold: memory passes at the sustained DRAM
  rate, one op each (`elementwise`).
- 5 repeats are chained in one graph and timed with CUDA events around them: TensorFlow enqueues each
  GPU op's kernels and goes on, so host dispatch overlaps the GPU's work. The time is the longer of the
  GPU's work (kernels and a gap each) and the host's issuing, summed over the repeat's ops.
- SBNet sweeps odd input tiles (`block_sweep_in_code`) and keeps the fastest: the prediction is the best
  over output tiles = input tile - 2.

- Each conv op is TensorFlow's filter transform (HWIO -> OIHW, every call), cuDNN's precomputed-offsets
  kernel and the GEMM (or Winograd's filter transform and its kernel): three kernels, one op dispatch.

The hardware is `accel_models/gtx1080ti.yaml`: spec-sheet figures, a copy rate measured by others,
CUTLASS's SIMT tile table, the CUDA-graphs blog's per-kernel gap, a helper kernel's time measured by
others, Winograd's efficiency fitted on DeepBench's 1080 Ti rows, and assumptions (launch and TensorFlow
dispatch per op, the filter transform's time) that `--sensitivity` varies by +-50% with the others,
reporting how the errors move. Nothing here is fitted to the rows.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from sparsesim import hardware
from sparsesim.cost.estimate import block_work, estimate
from sparsesim.cost.latency import latency
from sparsesim.workload import BlockWorkload, Geometry, dense_work, library_conv, synthetic, traffic
from sparsesim.workload.blocks import block_counts
from sparsesim.workload.strategies import Kernel

ROWS = Path(__file__).resolve().parent / "data" / "sbnet_gtx1080ti.csv"
TOL = 0.05                 # benchmark_topleft.py: TOL = 0.05, AVGPOOL = True
CODE_WIDTHS = {704: 700, 352: 350, 176: 175}   # benchmark_configs.py INPUT_SIZE_DICT["resnet-v2"]
BN_PASSES = 3              # assumption: cuDNN's training batch norm reads its input twice (statistics, then
                           # normalisation) and writes once
RELU_PASSES = 2            # one read, one write
ADD_PASSES = 3             # the dense residual add reads two maps and writes one
TARGETS = dict(median=0.20, worst=0.30)


def out_tiles(sweep: str) -> list[int]:
    """SBNet's swept input tiles ('11..31 (odd)') as output tiles of its 3x3 receptive field."""
    lo, hi = (int(v) for v in re.match(r"(\d+)\.\.(\d+)", sweep).groups())
    return [b - 2 for b in range(lo, hi + 1, 2)]


def chain(row: pd.Series) -> list[str]:
    """The row's layers as --shape chain, on the map SBNet's code times: one 3x3 conv, or the bottleneck
    unit (1x1, 3x3, 1x1)."""
    h, w, cin, cout = int(row["H"]), int(row["W"]), int(row["C_in"]), int(row["C_out"])
    w = CODE_WIDTHS.get(w, w)
    if row["op"] == "conv3x3":
        return [f"{cin},{cout},3,1,1,{h},{w}"]
    mid = int(row["C_mid"])
    return [f"{cin},{mid},1,1,0,{h},{w}", f"{mid},{mid},3,1,1,{h},{w}", f"{mid},{cout},1,1,0,{h},{w}"]


def sbnet_blocks(h: int, w: int, density: float, block: int, halo: int) -> tuple[int, int]:
    """(active blocks, in-bounds output pixels they cover) of SBNet's top-left mask under its rule: the
    mean of the mask over a block's input window ((B + 2 halo)^2, zero outside the map) exceeds TOL."""
    rows, cols = int(np.ceil(np.sqrt(density) * h)), int(np.ceil(np.sqrt(density) * w))
    nh, nw = -(-h // block), -(-w // block)
    size = block + 2 * halo
    padded = np.zeros((nh * block + 2 * halo + 1, nw * block + 2 * halo + 1))
    padded[1 + halo: 1 + halo + rows, 1 + halo: 1 + halo + cols] = 1.0     # an integral image's zero row/col
    s = padded.cumsum(0).cumsum(1)
    top, left = np.arange(nh)[:, None] * block, np.arange(nw)[None, :] * block
    covered = s[top + size, left + size] - s[top, left + size] - s[top + size, left] + s[top, left]
    active = covered / size ** 2 > TOL
    return int(active.sum()), int((active * block_counts(h, w, block)).sum())


def sbnet_workload(layers: pd.DataFrame, blocks: list[int], density: float) -> BlockWorkload:
    """Frame 0 dense, frame 1 SBNet's blocks, every layer of the chain on one mask (one region)."""
    layers = layers.sort_values("id").reset_index(drop=True)
    h, w = int(layers["out_h"].iloc[0]), int(layers["out_w"].iloc[0])
    halo = int(((layers["kernel_h"] - 1) // 2).sum())                     # the chain's receptive field
    counts = np.array([sbnet_blocks(h, w, density, b, halo) for b in blocks])   # (Nb, 2)
    total = np.array([(-(-h // b)) * (-(-w // b)) for b in blocks])
    L = len(layers)
    active = np.stack([np.broadcast_to(total, (L, len(blocks))), np.broadcast_to(counts[:, 0], (L, len(blocks)))], 1)
    pixels = np.stack([np.full((L, len(blocks)), h * w), np.broadcast_to(counts[:, 1], (L, len(blocks)))], 1)
    mask_pixels = np.array([[h * w, int(np.ceil(np.sqrt(density) * h)) * int(np.ceil(np.sqrt(density) * w))]] * L)
    return BlockWorkload(name=f"sbnet-square-d{density:g}", layers=layers, frames=np.arange(2), blocks=tuple(blocks),
                         active_blocks=active.astype(np.int64), active_pixels=pixels.astype(np.int64),
                         total_blocks=np.broadcast_to(total, (L, len(blocks))).astype(np.int64),
                         mask_pixels=mask_pixels, regions=np.zeros(L, np.int64),
                         region_blocks=active.astype(np.int64), region_pixels=pixels.astype(np.int64))


def split(hw, t: dict) -> tuple[np.ndarray, np.ndarray]:
    """(GPU seconds: its own work and a gap per kernel, host seconds issuing) of a layer's latency steps."""
    busy = t["latency_s"] - (t["t_launch"] - t["t_launch_hidden"])
    return busy + t["launches"] * hw.part.kernel_gap_s, t["t_launch"]


def elementwise(hw, elems, passes: float) -> tuple[np.ndarray, float]:
    """(GPU, host) seconds of a memory-bound op of SBNet's graph: `passes` sweeps over `elems` at the
    sustained DRAM rate and a kernel gap; the host issues one launch and dispatch."""
    gpu = passes * np.asarray(elems, float) * hw.word_bytes / hw.levels[0].rate + hw.part.kernel_gap_s
    return gpu, hardware.kinds.of(hw).dispatch_s(hw, 1)


def unit_extras(hw, wl, kernel: Kernel, bn_passes: float) -> dict[str, tuple]:
    """(GPU, host) seconds, dense and sparse per block size, of the batch norms and ReLUs before each conv
    and the residual add (dense: an op over the map; sparse: fused in the scatter, one more read)."""
    geo = Geometry.from_layers(wl.layers)
    w = block_work(geo, wl, kernel)
    out = {}
    for name, elems, add in (("dense", geo.in_elems[:, 0, 0], geo.out_elems[-1, 0, 0]),
                             ("sparse", (w.blocks * w.tile_in)[:, 1, :], None)):
        parts = [elementwise(hw, elems, bn_passes), elementwise(hw, elems, RELU_PASSES)]
        if add is not None:
            parts.append(elementwise(hw, add, ADD_PASSES))
        gpu = sum(np.asarray(g).sum(axis=0) for g, _ in parts)
        host = sum(h * len(elems) for _, h in parts[:2]) + (parts[2][1] if add is not None else 0.0)
        out[name] = (gpu, host)
    scatter_read = (w.pixels * geo.cout)[-1, 1, :] * hw.word_bytes / hw.levels[0].rate
    out["sparse"] = (out["sparse"][0] + scatter_read, out["sparse"][1])
    return out


def predict(row: pd.Series, hw, blocks: list[int], bn_passes: float = BN_PASSES) -> pd.DataFrame:
    """Predicted speed-up of frame 1 per output block size: gather-scatter for one conv, region for the unit;
    each side the longer of its GPU work and its host issuing over the repeat's ops."""
    unit = row["op"] != "conv3x3"
    kernel = Kernel("region" if unit else "gather-scatter", mask_source="given")
    wl = sbnet_workload(synthetic.shape_layers(chain(row)), blocks, float(row["density"]))
    rows = estimate(wl, [hw], [hardware.energy_table(hw.energy_table)], [kernel]).rows
    frame = rows[rows["frame"] == 1]
    sparse = frame.groupby("block")[["latency_s", "t_launch", "t_launch_hidden", "launches", "t_algorithm",
                                     "t_gather", "t_scatter"]].sum()
    algorithms = frame.groupby("block")["conv_algorithm"].agg(lambda a: "+".join(dict.fromkeys(a)))
    gpu, host = split(hw, sparse)
    geo = Geometry.from_layers(wl.layers)
    dense = latency(geo, hw, dense_work(geo, kernel))
    dense_gpu, dense_host = split(hw, dense)
    dense_gpu, dense_host = float(dense_gpu.sum()), float(dense_host.sum())
    if unit:
        extra = unit_extras(hw, wl, kernel, bn_passes)
        gpu, host = gpu + extra["sparse"][0], host + extra["sparse"][1]
        dense_gpu, dense_host = dense_gpu + float(extra["dense"][0]), dense_host + float(extra["dense"][1])
    out = pd.DataFrame({"block": sparse.index, "gpu_s": gpu.to_numpy(), "host_s": host.to_numpy(),
                        "conv_s": sparse["t_algorithm"].to_numpy(), "gather_s": sparse["t_gather"].to_numpy(),
                        "scatter_s": sparse["t_scatter"].to_numpy(), "dense_gpu_s": dense_gpu,
                        "dense_host_s": dense_host, "algorithm": algorithms.to_numpy(),
                        "dense_algorithm": "+".join(dict.fromkeys(dense["algorithm"].reshape(-1)))})
    out["latency_s"] = out[["gpu_s", "host_s"]].max(axis=1)
    out["latency_dense_s"] = max(dense_gpu, dense_host)
    return out.assign(speedup=out["latency_dense_s"] / out["latency_s"])


def compare(hw=None, bn_passes: float = BN_PASSES) -> pd.DataFrame:
    """Every row of the published table beside the prediction at the best block of SBNet's sweep."""
    hw = hw or hardware.load("gtx1080ti")
    data = pd.read_csv(ROWS)
    out = []
    for _, row in data.iterrows():
        p = predict(row, hw, out_tiles(row["block_sweep_in_code"]), bn_passes)
        best = p.loc[p["speedup"].idxmax()]
        out.append({"where": row["where"].split(" (")[0], "op": row["op"], "map": f"{row['H']}x{row['W']}",
                    "channels": int(row["C_in"]), "density": row["density"], "best_out_tile": int(best["block"]),
                    "dense_us": best["latency_dense_s"] * 1e6, "sparse_us": best["latency_s"] * 1e6,
                    "sparse_gpu_us": best["gpu_s"] * 1e6, "sparse_host_us": best["host_s"] * 1e6,
                    "conv_us": best["conv_s"] * 1e6, "gather_us": best["gather_s"] * 1e6,
                    "scatter_us": best["scatter_s"] * 1e6, "dense_algorithm": best["dense_algorithm"],
                    "sparse_algorithm": best["algorithm"],
                    "predicted": best["speedup"], "measured": row["speedup_sbnet"],
                    "error": best["speedup"] / row["speedup_sbnet"] - 1, **_dense_rates(row, best)})
    return pd.DataFrame(out)


def _dense_rates(row: pd.Series, best: pd.Series) -> dict[str, float]:
    """A single conv's dense rate as modelled, and the rate the measured speed-up implies with the sparse side
    as modelled (direct-conv TFLOP/s: 2 x MACs / seconds); NaN for the residual unit (it holds more than convs)."""
    if row["op"] != "conv3x3":
        return {"dense_tflops": np.nan, "dense_tflops_implied": np.nan}
    flop = 2 * float(synthetic.shape_layers(chain(row))["dense_macs"].sum())
    return {"dense_tflops": flop / best["latency_dense_s"] / 1e12,
            "dense_tflops_implied": flop / (row["speedup_sbnet"] * best["latency_s"]) / 1e12}


def block_curve(hw=None, blocks=range(2, 33)) -> pd.DataFrame:
    """The 400x704 single conv's predicted speed-up for every B = 2..32 (does the block size matter?)."""
    hw = hw or hardware.load("gtx1080ti")
    row = pd.read_csv(ROWS).iloc[0]
    return predict(row, hw, list(blocks))[["block", "speedup"]]


def algorithm_table(hw=None, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each conv algorithm of the GPU's list timed on the single convs' dense maps and on their batch of
    gathered tiles at the best block (microseconds; inf where one does not apply): which one runs and by
    how much it beats the others."""
    hw = hw or hardware.load("gtx1080ti")
    table = compare(hw) if table is None else table
    kind, names = hardware.kinds.of(hw), [a.name for a in hw.part.algorithms]
    out = []
    for (_, row), best in zip(pd.read_csv(ROWS).iterrows(), table["best_out_tile"]):
        if row["op"] != "conv3x3":
            continue
        kernel = Kernel("gather-scatter", mask_source="given")
        wl = sbnet_workload(synthetic.shape_layers(chain(row)), [int(best)], float(row["density"]))
        geo = Geometry.from_layers(wl.layers)
        for side, w in (("dense", dense_work(geo, kernel)), (f"tiles B={best}", block_work(geo, wl, kernel))):
            moved = traffic(geo, hw, w)
            direct = latency(geo, hw, w, moved=moved)["t_bandwidth"]
            timed = kind.conv_times(geo, hw, w, direct, moved.bandwidth, library_conv(hw, w)).seconds
            seconds = timed.reshape(len(names), -1)[:, -1]            # the dense map, or frame 1's tiles
            out.append({"map": f"{row['H']}x{row['W']}", "channels": int(row["C_in"]), "conv": side,
                        **{f"{n}_us": v * 1e6 for n, v in zip(names, seconds)}})
    return pd.DataFrame(out)


def summary(t: pd.DataFrame) -> dict:
    single = t[t["op"] == "conv3x3"]["predicted"].to_numpy()
    return {"median_abs_error": float(t["error"].abs().median()), "max_abs_error": float(t["error"].abs().max()),
            "single_conv_in_order": bool(np.all(np.diff(single) < 0)), "smallest_map_below_1x": bool(single[-1] < 1)}


def _scale_part(field: str):
    return lambda hw, f: replace(hw, part=replace(hw.part, **{field: getattr(hw.part, field) * f}))


def _scale_dram(hw, f):
    return replace(hw, levels=(replace(hw.levels[0], sustained=hw.levels[0].rate * f), *hw.levels[1:]))


def _scale_winograd(hw, f):
    """The fitted Winograd efficiency (not an assumption: how far the conclusion hangs on it)."""
    algos = tuple(replace(a, efficiency=a.efficiency * f) if a.name.startswith("winograd") else a
                  for a in hw.part.algorithms)
    return replace(hw, part=replace(hw.part, algorithms=algos))


ASSUMPTIONS = {  # name -> how to scale it on the hardware (or the benchmark's own bill)
    "launch_us": _scale_part("launch_s"),
    "dispatch_us": _scale_part("dispatch_s"),
    "kernel_gap_us": _scale_part("kernel_gap_s"),
    "sustained_dram": _scale_dram,
    "l2_bandwidth": lambda hw, f: replace(hw, levels=tuple(replace(lv, bandwidth=lv.bandwidth * f) if lv.kind == "l2"
                                                           else lv for lv in hw.levels)),
    "winograd_efficiency": _scale_winograd,
    "helper_kernel_us": _scale_part("helper_kernel_s"),
}


def sensitivity(hw=None) -> pd.DataFrame:
    """Each assumption at 0.5x and 1.5x: how the median and worst errors move."""
    hw = hw or hardware.load("gtx1080ti")
    base = summary(compare(hw))
    out = []
    for name, scale in [*ASSUMPTIONS.items(), ("bn_passes", None)]:
        for f in (0.5, 1.5):
            t = compare(hw, BN_PASSES * f) if scale is None else compare(scale(hw, f))
            s = summary(t)
            out.append({"assumption": name, "factor": f, "median_abs_error": s["median_abs_error"],
                        "median_change": s["median_abs_error"] - base["median_abs_error"],
                        "max_abs_error": s["max_abs_error"], "in_order": s["single_conv_in_order"],
                        "smallest_below_1x": s["smallest_map_below_1x"]})
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sensitivity", action="store_true", help="vary each assumption by +-50%%")
    parser.add_argument("-o", "--output", help="write the comparison as CSV")
    parser.add_argument("--hw", default="gtx1080ti", help="the 1080 Ti's description: a name or a YAML path")
    args = parser.parse_args()
    hw = hardware.load(args.hw)
    t = compare(hw)
    pd.set_option("display.width", 200)
    print(t.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(summary(t), f"targets: median |err| <= {TARGETS['median']:.0%}, all within {TARGETS['worst']:.0%}")
    curve = block_curve(hw)
    best = curve.loc[curve["speedup"].idxmax()]
    print(f"400x704 single conv, B = 2..32: speed-up {curve['speedup'].min():.2f}..{curve['speedup'].max():.2f}, "
          f"best B = {int(best['block'])} (SBNet swept output tiles 9..29)")
    print("each conv algorithm on the single convs' dense maps and gathered tiles (us):")
    print(algorithm_table(hw, t).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if args.output:
        t.to_csv(args.output, index=False)
    if args.sensitivity:
        print(sensitivity(hw).to_string(index=False, float_format=lambda v: f"{v:+.3f}"))


if __name__ == "__main__":
    main()
