"""benchmarks/deepbench_gpu.py reads DeepBench's result sheets and puts sparsesim's dense conv time beside each
measured forward time. A handmade two-row sheet in DeepBench's layout stands in for the public file."""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import deepbench_gpu  # noqa: E402

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def _sheet(path: Path, rows: list[list]) -> None:
    strings = sorted({v for r in rows for v in r if isinstance(v, str)})
    cells = []
    for i, r in enumerate(rows, 1):
        out = []
        for j, v in enumerate(r):
            ref = f"{chr(ord('A') + j)}{i}"
            if v is None:
                continue
            out.append(f'<c r="{ref}" t="s"><v>{strings.index(v)}</v></c>' if isinstance(v, str)
                       else f'<c r="{ref}"><v>{v}</v></c>')
        cells.append(f'<row r="{i}">{"".join(out)}</row>')
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("xl/sharedStrings.xml", f'<sst {NS}>' + "".join(f"<si><t>{s}</t></si>" for s in strings) + "</sst>")
        z.writestr("xl/worksheets/sheet1.xml", f'<worksheet {NS}><sheetData>{"".join(cells)}</sheetData></worksheet>')


def test_the_sheet_is_read_and_each_3x3_conv_gets_the_models_time(tmp_path):
    blank = [None, None]
    header = ["Convolution", None, "W", "H", "C", "N", "K", "S", "R"]
    conv = [None, None, 56, 56, 64, 8, 64, 3, 3, 1, 1, 1, 1, 0.145] + [None] * 9 + ["WINOGRAD"]
    conv1x1 = [None, None, 56, 56, 64, 8, 64, 1, 1, 0, 0, 1, 1, 0.05] + [None] * 9 + ["IMPLICIT_PRECOMP_GEMM"]
    _sheet(tmp_path / "db.xlsx", [blank, header, conv, conv1x1])
    rows = deepbench_gpu.conv_rows(str(tmp_path / "db.xlsx"))
    assert rows["algorithm"].tolist() == ["WINOGRAD", "IMPLICIT_PRECOMP_GEMM"] and rows["K"].tolist() == [64, 64]
    t = deepbench_gpu.compare(str(tmp_path / "db.xlsx"))
    assert len(t) == 1 and t["measured_us"].iloc[0] == pytest.approx(145.0)
    # 56 x 56 x 8 pixels x 64 x 64 x 9 MACs at the 1080 Ti's fp32 peak (11.34 TFLOPS): 163 us at best
    assert t["model_us"].iloc[0] >= 925e6 * 2 / 11.34e12 * 1e6 * 0.999
    assert t["ratio"].iloc[0] == pytest.approx(t["model_us"].iloc[0] / 145.0)


SHAPES = [(56, 56, 128, 128), (28, 28, 256, 256), (112, 112, 64, 128), (14, 14, 512, 512), (224, 224, 3, 64),
          (28, 28, 128, 128)]


def _synthetic_sheet(path: Path, hw, efficiency: float) -> None:
    """DeepBench's layout, the 'measured' times being sparsesim's own with Winograd at `efficiency`."""
    import pandas as pd
    df = pd.DataFrame([dict(W=w, H=h, C=c, N=n, K=k, R=3, pad_h=1, stride_h=1) for w, h, c, k in SHAPES
                       for n in (8, 16)])
    us = deepbench_gpu.model(df, deepbench_gpu.with_efficiencies(hw, {"winograd": efficiency}))["model_us"]
    rows = [[None, None], ["Convolution", None, "W", "H", "C", "N", "K", "S", "R"]]
    for r, t in zip(df.itertuples(), us):
        rows.append([None, None, r.W, r.H, r.C, r.N, r.K, 3, 3, 1, 1, 1, 1, repr(t / 1e3)] + [None] * 9 + ["WINOGRAD"])
    _sheet(path, rows)


def test_the_fit_recovers_the_efficiency_that_made_the_times_and_holds_shapes_out(tmp_path):
    """Times made by the model itself with fused Winograd at 0.6: the fit, on the shapes not held out, finds
    0.6 (on its grid), and every row, held out or not, is then reproduced; half the shapes are held out,
    both batches of a shape on the same side."""
    from sparsesim import hardware
    hw = hardware.load("gtx1080ti")
    _synthetic_sheet(tmp_path / "db.xlsx", hw, 0.6)
    rows = deepbench_gpu.three_by_three(str(tmp_path / "db.xlsx"))
    assert rows["held_out"].sum() == 6 and rows.groupby(["W", "H", "C", "K"])["held_out"].nunique().max() == 1
    fitted = deepbench_gpu.fit(str(tmp_path / "db.xlsx"), hw)
    assert fitted == {"winograd": pytest.approx(0.6, abs=1e-9)}
    t = deepbench_gpu.compare(str(tmp_path / "db.xlsx"), deepbench_gpu.with_efficiencies(hw, fitted))
    assert (t.loc[~t["held_out"], "model_algorithm"] == "winograd").sum() >= 2    # the fit saw Winograd win
    np.testing.assert_allclose(t["ratio"], 1.0, rtol=1e-9)
    assert (deepbench_gpu.errors(t)["median_abs_error"] < 1e-9).all()


def test_write_replaces_the_fitted_efficiency_and_keeps_the_comments(tmp_path):
    from sparsesim import hardware
    text = (hardware.models_dir() / "gtx1080ti.yaml").read_text()
    path = tmp_path / "gtx1080ti.yaml"
    path.write_text(text)
    deepbench_gpu.write({"winograd": 0.61234}, path)
    new = path.read_text()
    changed = [(a, b) for a, b in zip(text.splitlines(), new.splitlines()) if a != b]
    assert len(changed) == 1 and "efficiency: 0.612    # fitted: python benchmarks/deepbench_gpu.py --fit" in changed[0][1]
    assert hardware.load(str(path)).part.algorithms[1].efficiency == 0.612
