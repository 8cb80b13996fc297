"""Scene cuts force a dense reset frame, recorded with reason 'cut'; a smooth sequence has none."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import moving_square
from sparsesim import trace as trace_api
from sparsesim.cli import main
from sparsesim.trace import video


def with_cut(n: int, at: int):
    """The moving square, then from frame `at` another scene: a different background."""
    for t, frame in enumerate(moving_square(n)):
        yield frame if t < at else 255 - frame


def trace_frames(tmp_path: Path, frames, *extra: str) -> pd.DataFrame:
    src = tmp_path / "v.mp4"
    video.encode(src, frames)
    out = tmp_path / "t"
    assert main(["trace", str(src), "--model", "mtcnn-pnet", "--threshold", "0.05", "-o", str(out), "-q",
                 "--quality-every", "0", *extra]) == 0
    return trace_api.open(out).frames


def test_a_synthetic_cut_forces_a_dense_reset(tmp_path):
    df = trace_frames(tmp_path, with_cut(10, 6))
    assert df["reset_reason"].tolist() == ["first"] + [""] * 5 + ["cut"] + [""] * 3
    assert df["reset"].tolist() == [r != "" for r in df["reset_reason"]]
    assert (df.loc[6, [c for c in df.columns if c.startswith("active:")]] == 1.0).all()
    assert df.loc[6, "input_mse"] > 0.0155 > df.loc[1:5, "input_mse"].max()


def test_info_counts_the_dense_frames_by_reason(tmp_path, capsys):
    trace_frames(tmp_path, with_cut(10, 6))
    capsys.readouterr()
    assert main(["info", str(tmp_path / "t")]) == 0
    out = capsys.readouterr().out
    assert "(8 gated; dense: first 1, cut 1)" in out
    assert "delta semantics, relative thresholds: per layer" in out   # the default gate


def test_a_smooth_sequence_has_no_cut(tmp_path):
    df = trace_frames(tmp_path, moving_square(10))
    assert df["reset_reason"].tolist() == ["first"] + [""] * 9
    assert np.isnan(df.loc[0, "input_mse"]) and (df.loc[1:, "input_mse"] > 0).all()


def test_cut_detection_can_be_turned_off(tmp_path):
    df = trace_frames(tmp_path, with_cut(8, 4), "--cut-threshold", "0")
    assert "cut" not in set(df["reset_reason"])


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_bad_cut_thresholds_are_one_line_errors(tmp_path, capsys, value):
    out = tmp_path / "t"
    assert main(["trace", "x.mp4", "--cut-threshold", value, "-o", str(out), "-q"]) != 0
    err = capsys.readouterr().err.strip()
    assert "--cut-threshold" in err and "\n" not in err and "Traceback" not in err and not out.exists()
