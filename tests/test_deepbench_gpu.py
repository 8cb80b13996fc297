"""benchmarks/deepbench_gpu.py reads DeepBench's result sheets and puts sparsesim's dense conv time beside each
measured forward time. A handmade two-row sheet in DeepBench's layout stands in for the public file."""
from __future__ import annotations

import sys
import zipfile
from pathlib import Path

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
