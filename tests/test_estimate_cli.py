"""`sparsesim estimate` on a real trace, as a user runs it."""
from __future__ import annotations

import pandas as pd
import pytest

from sparsesim.cli import main


def test_estimate_writes_rows_layers_and_summary(small_trace, tmp_path, capsys):
    out = tmp_path / "est.parquet"
    assert main(["estimate", str(small_trace), "--hw", "h100,eyeriss", "--block", "1,4,8", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "best B" in printed and "h100" in printed and "eyeriss" in printed
    rows = pd.read_parquet(out)
    layers = pd.read_parquet(tmp_path / "est.layers.parquet")
    summary = pd.read_parquet(tmp_path / "est.summary.parquet")
    assert len(rows) == 5 * 10 * 2 * 3  # layers x frames x hw x blocks
    assert set(layers["break_even_density"].between(0, 1)) == {True}
    assert len(summary) == 6 and {"speedup", "energy_saving", "mem_overhead"} <= set(summary.columns)
    first = rows[rows["frame"] == 0]
    assert (first["density"] == 1.0).all()  # the first frame is dense
    by_level = rows[[c for c in rows.columns if c.startswith("e_") and not c.startswith("e_type_")]].sum(axis=1)
    by_type = rows[[c for c in rows.columns if c.startswith("e_type_")]].sum(axis=1) + rows["e_mac"]
    pd.testing.assert_series_equal(by_level, rows["energy_pj"], check_names=False, rtol=1e-9)
    pd.testing.assert_series_equal(by_type, rows["energy_pj"], check_names=False, rtol=1e-9)


def test_estimate_csv_and_energy_table_override(small_trace, tmp_path, capsys):
    out = tmp_path / "est.csv"
    assert main(["estimate", str(small_trace), "--hw", "eyeriss", "--block", "2", "--frames", "3",
                 "--energy-table", "sze-normalized,accelergy-45nm", "-o", str(out)]) == 0
    rows = pd.read_csv(out)
    assert set(rows["energy_table"]) == {"sze-normalized", "accelergy-45nm"} and rows["frame"].max() == 2


@pytest.mark.parametrize("args,needle", [
    (["--hw", "nope"], "unknown hardware 'nope'"),
    (["--block", "0"], "--block must be integers >= 1"),
    (["--block", "a,b"], "--block must be comma-separated integers"),
    (["-o", "x.txt"], "-o must end in .parquet or .csv"),
    (["--energy-table", "nope"], "unknown energy table 'nope'"),
    (["--frames", "0"], "--frames must be >= 1"),
    (["--channel-group", "0"], "--channel-group must be >= 1"),
])
def test_bad_estimate_input(small_trace, capsys, args, needle):
    assert main(["estimate", str(small_trace), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_estimate_of_a_missing_trace(tmp_path, capsys):
    assert main(["estimate", str(tmp_path / "none")]) == 2
    assert "no trace directory" in capsys.readouterr().err


def test_channel_group_changes_tiling_not_work(small_trace, tmp_path):
    outs = {}
    for g in (None, 4):
        out = tmp_path / f"g{g}.parquet"
        extra = [] if g is None else ["--channel-group", str(g)]
        assert main(["estimate", str(small_trace), "--hw", "h100", "--block", "4", "-o", str(out), *extra]) == 0
        outs[g] = pd.read_parquet(out)
    pd.testing.assert_series_equal(outs[None]["macs"], outs[4]["macs"])
    # P-Net has 2..32 output channels: a 4-wide N tile wastes less of the tile than H100's 128-wide one
    assert (outs[4]["t_util"] < outs[None]["t_util"]).all()
