"""sparsesim's dense conv latency beside DeepBench's measured cuDNN forward times on the same GPU and library
SBNet used (GTX 1080 Ti, cuDNN 6.0.21, fp32, the fastest forward algorithm per layer). Nothing in sparsesim
was tuned on these rows: they test the dense baselines of benchmarks/published_gpu.py step by step.

    python benchmarks/deepbench_gpu.py DeepBench_NV_1080Ti.xlsx [-o out.csv]

The file is baidu-research/DeepBench, results/train/DeepBench_NV_1080Ti.xlsx (public; not copied here).
A batch of N images is modelled as one map of N x H rows (the same implicit-GEMM M; the seams' padding
is ignored). `ratio` = model time / measured time: above 1 the model is slower than cuDNN.
"""
from __future__ import annotations

import argparse
import re
import xml.etree.ElementTree as ET
import zipfile

import pandas as pd

from sparsesim import hardware
from sparsesim.cost.latency import latency
from sparsesim.workload import Geometry, dense_work, synthetic

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
ALGOS = ("IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED")
# the FP32 sheet's conv columns: W, H, C, N, K, S, R, pad_w, pad_h, stride_w, stride_h, forward ms, ..., algorithm
COLUMNS = dict(C="W", D="H", E="C", F="N", G="K", H="S", I="R", J="pad_w", K="pad_h", L="stride_w", M="stride_h",
               N="forward_ms", X="algorithm")


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


def model_us(row: pd.Series, hw) -> float:
    """sparsesim's dense conv time (its GPU work: no launch) for one DeepBench row."""
    shape = (f"{int(row.C)},{int(row.K)},{int(row.R)},{int(row.stride_h)},{int(row.pad_h)},"
             f"{int(row.N * row.H)},{int(row.W)}")
    geo = Geometry.from_layers(synthetic.shape_layers([shape]))
    t = latency(geo, hw, dense_work(geo))
    return float((t["latency_s"] - t["t_launch"] + t["t_launch_hidden"]).reshape(-1)[0]) * 1e6


def compare(path: str, hw=None) -> pd.DataFrame:
    hw = hw or hardware.load("gtx1080ti")
    df = conv_rows(path)
    df = df[(df.R == df.S) & (df.stride_h == df.stride_w) & (df.R == 3) & (df.stride_h == 1)].copy()
    df["measured_us"] = df["forward_ms"] * 1e3
    df["model_us"] = [model_us(r, hw) for r in df.itertuples()]
    df["ratio"] = df["model_us"] / df["measured_us"]
    return df.drop(columns=["forward_ms", "S", "pad_w", "stride_w"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("xlsx", help="DeepBench's results/train/DeepBench_NV_1080Ti.xlsx")
    parser.add_argument("-o", "--output", help="write the comparison as CSV")
    args = parser.parse_args()
    t = compare(args.xlsx)
    pd.set_option("display.width", 200)
    print(t.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(t.groupby("algorithm")["ratio"].describe()[["count", "min", "50%", "max"]].round(2).to_string())
    if args.output:
        t.to_csv(args.output, index=False)


if __name__ == "__main__":
    main()
