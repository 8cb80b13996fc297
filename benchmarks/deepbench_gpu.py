"""sparsesim's dense conv latency beside DeepBench's measured cuDNN forward times on the same GPU and library
SBNet used (GTX 1080 Ti, cuDNN 6.0.21, fp32, the fastest forward algorithm per layer), and the fit of the
1080 Ti's conv-algorithm efficiencies (accel_models/gtx1080ti.yaml, `algorithms:`) on part of those rows.

    python benchmarks/deepbench_gpu.py DeepBench_NV_1080Ti.xlsx [-o out.csv]     # compare, row by row
    python benchmarks/deepbench_gpu.py --fit DeepBench_NV_1080Ti.xlsx [--write]  # refit (and write) the YAML
    ... [--hw FILE.yaml]       # another description of the 1080 Ti (e.g. other Winograd tiles) to compare or fit

The file is baidu-research/DeepBench, results/train/DeepBench_NV_1080Ti.xlsx (public; its Specs sheet says
CUDA 8.0.88, cuDNN 6.0.21; not copied here). Its 3x3 stride-1 forward rows are used: DeepBench times every
cuDNN algorithm and reports the fastest, as TensorFlow's autotuner picks one for SBNet. The rows are split
by shape (W, H, C, K; both batch sizes of a shape on the same side): sorted by (C, K, W, H), every other
shape is held out. `--fit` fits each non-GEMM algorithm's `efficiency` (the fraction of an SM's peak its
multiply reaches; implicit GEMM keeps the tile model, unfitted) on the other shapes, by least squares on
log(model / measured) over a grid (steps of 0.005), and reports the error on the held-out shapes, which
the fit never sees. SBNet's rows are never used here. `--write` puts the fitted values in the YAML.

A batch of N images is one map of N x H rows for the implicit GEMM (the same M; the seams' padding is
ignored) and N maps of H x W for Winograd's tiles. `ratio` = model time / measured time.
"""
from __future__ import annotations

import argparse
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from sparsesim import atomic, hardware
from sparsesim.cost.latency import latency
from sparsesim.workload import Geometry, dense_work, synthetic

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
ALGOS = ("IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED")
# the FP32 sheet's conv columns: W, H, C, N, K, S, R, pad_w, pad_h, stride_w, stride_h, forward ms, ..., algorithm
COLUMNS = dict(C="W", D="H", E="C", F="N", G="K", H="S", I="R", J="pad_w", K="pad_h", L="stride_w", M="stride_h",
               N="forward_ms", X="algorithm")
SHAPE = ["W", "H", "C", "K"]
GRID = dict(lo=0.3, hi=1.2, coarse=0.025, fine=0.005)    # efficiencies searched
HW = "gtx1080ti"


def sheet_rows(path: str) -> list[dict[str, str]]:
    """The first worksheet's cells, row by row, as {column letter: text} (strings resolved)."""
    with zipfile.ZipFile(path) as z:
        shared = [''.join(t.text or "" for t in si.iter(f"{NS}t"))
                  for si in ET.fromstring(z.read("xl/sharedStrings.xml")).findall(f"{NS}si")]
        sheet = ET.fromstring(z.read("xl/worksheets/sheet1.xml"))
    rows = []
    for r in sheet.iter(f"{NS}row"):
        cells = {}
        for c in r.findall(f"{NS}c"):
            v = c.find(f"{NS}v")
            if v is not None:
                cells[re.match(r"[A-Z]+", c.get("r")).group()] = shared[int(v.text)] if c.get("t") == "s" else v.text
        rows.append(cells)
    return rows


def conv_rows(path: str) -> pd.DataFrame:
    """DeepBench's forward conv rows (those naming a cuDNN algorithm)."""
    rows = [{name: r.get(col) for col, name in COLUMNS.items()} for r in sheet_rows(path) if r.get("X") in ALGOS]
    df = pd.DataFrame(rows)
    for col in df.columns.drop("algorithm"):
        df[col] = pd.to_numeric(df[col]).astype(float)
    return df


def three_by_three(path: str) -> pd.DataFrame:
    """The 3x3 stride-1 rows, each marked `held_out` (every other shape, sorted by C, K, W, H)."""
    df = conv_rows(path)
    df = df[(df.R == df.S) & (df.stride_h == df.stride_w) & (df.R == 3) & (df.stride_h == 1)].copy()
    shapes = df[SHAPE].drop_duplicates().sort_values(["C", "K", "W", "H"]).reset_index(drop=True)
    held = {tuple(s) for s in shapes.iloc[1::2].itertuples(index=False)}
    df["held_out"] = [tuple(s) in held for s in df[SHAPE].itertuples(index=False)]
    df["measured_us"] = df["forward_ms"] * 1e3
    return df.drop(columns=["forward_ms", "S", "pad_w", "stride_w"]).reset_index(drop=True)


def model(df: pd.DataFrame, hw) -> pd.DataFrame:
    """sparsesim's dense conv (its GPU work: no launch) for every row at once, in the algorithm it picks,
    and the direct implicit GEMM's time beside it. DeepBench calls cuDNN itself: no framework kernels
    (cuDNN's own helper kernels, e.g. implicit GEMM's offsets kernel, stay)."""
    hw = replace(hw, part=replace(hw.part, framework_conv_kernels=0))
    layers = pd.concat([synthetic.shape_layers([f"{int(r.C)},{int(r.K)},{int(r.R)},{int(r.stride_h)},{int(r.pad_h)},"
                                                f"{int(r.N * r.H)},{int(r.W)}"]) for r in df.itertuples()],
                       ignore_index=True).assign(id=lambda t: np.arange(len(t)))
    geo = Geometry.from_layers(layers)
    images = df["N"].to_numpy().reshape(-1, 1, 1)
    w = replace(dense_work(geo), blocks=images, tile_h=df["H"].to_numpy().reshape(-1, 1, 1),
                tile_in=geo.in_elems / images)
    t = latency(geo, hw, w)
    gpu = t["latency_s"] - t["t_launch"] + t["t_launch_hidden"]
    return pd.DataFrame({"model_us": gpu.reshape(-1) * 1e6, "direct_us": t["t_bandwidth"].reshape(-1) * 1e6,
                         "model_algorithm": t["algorithm"].reshape(-1)})


def compare(path: str, hw=None) -> pd.DataFrame:
    df = three_by_three(path)
    df = pd.concat([df, model(df, hw or hardware.load(HW))], axis=1)
    df["ratio"] = df["model_us"] / df["measured_us"]
    # direct-conv rate cuDNN reached: 2 x MACs / time (Winograd and FFT can exceed the fp32 peak)
    df["measured_tflops"] = 2 * df["N"] * df["H"] * df["W"] * df["C"] * df["K"] * 9 / df["measured_us"] / 1e6
    return df


def with_efficiencies(hw, values: dict[str, float]):
    """The hardware with its algorithms' efficiencies replaced by `values` (by name)."""
    algos = tuple(replace(a, efficiency=values.get(a.name, a.efficiency)) for a in hw.part.algorithms)
    return replace(hw, part=replace(hw.part, algorithms=algos))


def _loss(df: pd.DataFrame, hw, values: dict[str, float]) -> float:
    m = model(df, with_efficiencies(hw, values))["model_us"].to_numpy()
    return float(np.mean(np.log(m / df["measured_us"].to_numpy()) ** 2))


def fit(path: str, hw=None) -> dict[str, float]:
    """Each non-GEMM algorithm's efficiency, fitted jointly on the rows not held out: a coarse grid over
    all of them, then a fine one around the best point."""
    hw = hw or hardware.load(HW)
    df = three_by_three(path)
    train = df[~df["held_out"]].reset_index(drop=True)
    names = list(dict.fromkeys(a.name for a in hw.part.algorithms if a.name != "implicit-gemm"))
    if not names:
        return {}
    grids = [np.round(np.arange(GRID["lo"], GRID["hi"] + 1e-9, GRID["coarse"]), 4)] * len(names)
    best = None
    for step in ("coarse", "fine"):
        for point in np.array(np.meshgrid(*grids, indexing="ij")).reshape(len(names), -1).T:
            values = dict(zip(names, point))
            loss = _loss(train, hw, values)
            if best is None or loss < best[0] - 1e-15:
                best = (loss, values)
        if step == "coarse":
            grids = [np.clip(np.round(np.arange(v - GRID["coarse"], v + GRID["coarse"] + 1e-9, GRID["fine"]), 4),
                             GRID["lo"], GRID["hi"]) for v in best[1].values()]
    return {k: float(v) for k, v in best[1].items()}


def errors(t: pd.DataFrame) -> pd.DataFrame:
    """Median and worst |error| of the fitted and the held-out rows, before (direct implicit GEMM alone)
    and with the algorithm choice, and how often the picked algorithm is DeepBench's."""
    t = t.assign(error=t["ratio"] - 1, direct_error=t["direct_us"] / t["measured_us"] - 1,
                 winograd=t["algorithm"].str.startswith("WINOGRAD") | t["algorithm"].str.startswith("FFT"),
                 picked=t["model_algorithm"] != "implicit-gemm")
    out = []
    for label, sel in (("fitted", ~t["held_out"]), ("held out", t["held_out"])):
        s = t[sel]
        out.append({"rows": label, "n": len(s), "median_abs_error": s["error"].abs().median(),
                    "max_abs_error": s["error"].abs().max(),
                    "median_abs_error_direct": s["direct_error"].abs().median(),
                    "max_abs_error_direct": s["direct_error"].abs().max(),
                    "algorithm_class_agrees": (s["winograd"] == s["picked"]).mean()})
    return pd.DataFrame(out)


def write(values: dict[str, float], path: Path) -> None:
    """Replace each fitted algorithm's `efficiency:` value in the YAML (comments kept), atomically."""
    lines = path.read_text().splitlines(keepends=True)
    current = None
    for i, line in enumerate(lines):
        named = re.match(r"\s*- name: ([\w-]+)", line)
        if named:
            current = named.group(1)
        eff = re.match(r"(\s*efficiency:\s*)[\d.]+(.*)", line, re.S)
        if eff and current in values:
            lines[i] = f"{eff.group(1)}{values[current]:.3f}{eff.group(2)}"
    atomic.write_atomic(path, lambda tmp: Path(tmp).write_text("".join(lines)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("xlsx", help="DeepBench's results/train/DeepBench_NV_1080Ti.xlsx")
    parser.add_argument("--fit", action="store_true", help="refit the non-GEMM algorithms' efficiencies")
    parser.add_argument("--write", action="store_true", help="with --fit: write them into accel_models/gtx1080ti.yaml")
    parser.add_argument("--hw", default=HW, help="the GPU description (a name or a YAML path) to compare or fit")
    parser.add_argument("-o", "--output", help="write the comparison as CSV")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    hw = hardware.load(args.hw)
    if args.fit:
        values = fit(args.xlsx, hw)
        print("fitted on", int((~three_by_three(args.xlsx)["held_out"]).sum()), "rows:",
              ", ".join(f"{k} efficiency {v:.3f}" for k, v in values.items()))
        hw = with_efficiencies(hw, values)
        if args.write:
            write(values, Path(args.hw) if Path(args.hw).is_file() else hardware.models_dir() / f"{args.hw}.yaml")
    t = compare(args.xlsx, hw)
    print(t.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(errors(t).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.output:
        t.to_csv(args.output, index=False)


if __name__ == "__main__":
    main()
