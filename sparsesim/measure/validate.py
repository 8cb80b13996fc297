"""`sparsesim validate`: the cost model's prediction beside each measured kernel time.

Reports relative error per row, median and p90 absolute error, the Spearman rank correlation of block
sizes per layer, how often the predicted best block is the measured best (strictly, and within the
measured best's noise band: the two blocks' p10..p90 overlap, so the measurement cannot tell them apart),
predicted vs measured break-even density, and the residuals by shape class (kernel, output channels,
kernel size, stride, map size, block). Rows are split by layer shape: an optional calibration (one scale
factor per kernel, fitted in log space) is fitted on the training shapes and every error is reported on
held-out shapes; `validate_seeds` repeats the split for several seeds and reports each and the median.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..atomic import write_atomic_all
from ..cost.latency import latency
from ..errors import SparsesimError, require
from ..hardware import Hardware
from ..workload import Geometry, dense_work, sparse_work
from .tables import DENSE, GATHER_SCATTER, normalise

SHAPE = ["cin", "cout", "k", "stride", "padding", "dilation", "in_h", "in_w"]
GROUP = [*SHAPE, "source", "density_label"]
# The kernels the cost model predicts today; `fused` rows wait for its fused GPU strategy (issue 14).
PREDICTED = (DENSE, GATHER_SCATTER)


@dataclass(frozen=True)
class Validation:
    rows: pd.DataFrame          # one row per measured kernel time, with predicted_s and errors
    metrics: dict[str, float]
    break_even: pd.DataFrame    # per shape and block: measured vs predicted break-even density
    residuals: pd.DataFrame = field(default_factory=pd.DataFrame)   # held-out errors by shape class
    seeds: pd.DataFrame = field(default_factory=pd.DataFrame)       # one row of metrics per split seed (+ median)


def _layers(m: pd.DataFrame) -> pd.DataFrame:
    macs = m["out_h"] * m["out_w"] * m["cout"] * m["cin"] * m["k"] * m["k"]
    return pd.DataFrame({
        "id": range(len(m)), "name": m["layer"].to_numpy(), "op": "conv2d", "in_channels": m["cin"].to_numpy(),
        "out_channels": m["cout"].to_numpy(), "kernel_h": m["k"].to_numpy(), "kernel_w": m["k"].to_numpy(),
        "stride_h": m["stride"].to_numpy(), "stride_w": m["stride"].to_numpy(), "dilation_h": m["dilation"].to_numpy(),
        "dilation_w": m["dilation"].to_numpy(), "groups": 1, "in_h": m["in_h"].to_numpy(), "in_w": m["in_w"].to_numpy(),
        "out_h": m["out_h"].to_numpy(), "out_w": m["out_w"].to_numpy(), "dense_macs": macs.to_numpy()})


def predict(m: pd.DataFrame, hw: Hardware) -> np.ndarray:
    """Predicted seconds for every measurement row (dense rows: the dense run; sparse: total)."""
    geo = Geometry.from_layers(_layers(m))
    col = lambda c: m[c].to_numpy(dtype=np.float64).reshape(-1, 1, 1)  # noqa: E731
    dense = latency(geo, hw, dense_work(geo))["latency_s"].reshape(-1)
    work = sparse_work(geo, col("block"), col("active_blocks"), col("active_pixels"), col("total_blocks"))
    sparse = latency(geo, hw, work, col("block"))["latency_s"].reshape(-1)
    return np.where(m["kernel"].to_numpy() == DENSE, dense, sparse)


def split_by_shape(m: pd.DataFrame, holdout: float, seed: int) -> np.ndarray:
    """True for held-out rows: a deterministic hash of the layer shape, so test shapes are unseen. A
    cryptographic hash: CRC-32 is affine in its input, so seeds differing in one character flipped the
    same bits of every key's CRC, and seeds 0-7 gave 4 distinct splits (seed 4 was seed 0's)."""
    keys = m[SHAPE].astype(str).agg("x".join, axis=1)
    digest = lambda k: hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest()  # noqa: E731
    unit = keys.map(lambda k: int.from_bytes(digest(k), "big") / 2**64)
    return (unit < holdout).to_numpy()


def _spearman_and_best(sparse: pd.DataFrame) -> tuple[float, float, float, int]:
    """Mean Spearman of block sizes per group, and how often the predicted best block is the measured
    best: strictly, and within the noise band (its p10 reaches the measured best's p90; rows without a
    spread count their median as both)."""
    rhos, hits, near, groups = [], [], [], 0
    low = sparse["p10_s"] if "p10_s" in sparse else sparse["median_s"]
    high = sparse["p90_s"] if "p90_s" in sparse else sparse["median_s"]
    sparse = sparse.assign(_low=low.fillna(sparse["median_s"]), _high=high.fillna(sparse["median_s"]))
    for _, g in sparse.groupby(GROUP):
        if g["block"].nunique() < 3:
            continue
        groups += 1
        rho = g["median_s"].rank().corr(g["predicted_s"].rank())
        rhos.append(0.0 if np.isnan(rho) else rho)
        best, chosen = g.loc[g["median_s"].idxmin()], g.loc[g["predicted_s"].idxmin()]
        hits.append(best["block"] == chosen["block"])
        near.append(best["block"] == chosen["block"] or chosen["_low"] <= best["_high"])
    mean = lambda v: float(np.mean(v)) if v else np.nan  # noqa: E731
    return mean(rhos), mean(hits), mean(near), groups


SHAPE_CLASSES = {
    "kernel": lambda r: r["kernel"],
    "cout": lambda r: pd.cut(r["cout"], [0, 16, 32, 64, 128, np.inf], labels=["<=16", "17-32", "33-64", "65-128", ">128"]),
    "k": lambda r: r["k"],
    "stride": lambda r: r["stride"],
    "map": lambda r: pd.cut(r["out_h"] * r["out_w"], [0, 256, 1024, 4096, 16384, np.inf],
                            labels=["<=256 px", "257-1k", "1k-4k", "4k-16k", ">16k"]),
    "block": lambda r: r["block"],
}


def residuals(rows: pd.DataFrame) -> pd.DataFrame:
    """Per shape class (each of SHAPE_CLASSES on its own): rows, median signed error (predicted / measured
    - 1, the median taken in log space) and median absolute error: where the model runs fast or slow."""
    out = []
    for name, classify in SHAPE_CLASSES.items():
        log_ratio = np.log(rows["predicted_s"] / rows["median_s"])
        for value, g in log_ratio.groupby(classify(rows), sort=True, observed=True):   # categories in their order
            out.append({"class": name, "value": str(value), "rows": len(g), "median_error": float(np.exp(g.median()) - 1),
                        "median_abs_error": float((np.exp(g) - 1).abs().median())})
    return pd.DataFrame(out, columns=["class", "value", "rows", "median_error", "median_abs_error"])


def _crossing(density: np.ndarray, sparse: np.ndarray, dense: np.ndarray) -> float:
    """Lowest density where sparse time reaches dense time, interpolated between measured points."""
    order = np.argsort(density)
    d, gap = density[order], (sparse - dense)[order]
    if gap[0] >= 0:
        return 0.0
    for i in range(1, len(d)):
        if gap[i] >= 0:
            return float(d[i - 1] + (d[i] - d[i - 1]) * -gap[i - 1] / (gap[i] - gap[i - 1]))
    return 1.0


def break_even(rows: pd.DataFrame) -> pd.DataFrame:
    synthetic = rows[(rows["source"] == "synthetic") & (rows["step"] == "total")]
    out = []
    for key, g in synthetic.groupby([*SHAPE, "block"]):
        dense, sparse = g[g["kernel"] == DENSE], g[g["kernel"] == GATHER_SCATTER]
        pair = sparse.merge(dense[["density", "median_s", "predicted_s"]], on="density", suffixes=("", "_dense"))
        if len(pair) < 2:
            continue
        d = pair["density"].to_numpy()
        out.append({**dict(zip([*SHAPE, "block"], key)),
                    "measured": _crossing(d, pair["median_s"].to_numpy(), pair["median_s_dense"].to_numpy()),
                    "predicted": _crossing(d, pair["predicted_s"].to_numpy(), pair["predicted_s_dense"].to_numpy())})
    return pd.DataFrame(out)


def validate(measurements: pd.DataFrame, hw: Hardware, holdout: float = 0.5, seed: int = 0,
             calibrate: bool = False) -> Validation:
    need = {*SHAPE, "kernel", "step", "block", "active_blocks", "active_pixels", "total_blocks", "median_s", "density"}
    missing = need - set(measurements.columns)
    if missing:
        raise SparsesimError(f"not a sparsesim measurement table: missing columns {', '.join(sorted(missing))}")
    measurements = normalise(measurements)
    rows = measurements[(measurements["step"] == "total") & measurements["kernel"].isin(PREDICTED)]
    rows = rows.reset_index(drop=True).copy()
    rows["density_label"] = rows["density"].round(3)
    rows["predicted_s"] = predict(rows, hw)
    rows["held_out"] = split_by_shape(rows, holdout, seed)
    if calibrate:
        train = rows[~rows["held_out"]]
        scale = {k: float(np.exp(np.median(np.log(g["median_s"] / g["predicted_s"])))) for k, g in train.groupby("kernel")}
        rows["predicted_s"] = rows["predicted_s"] * rows["kernel"].map(scale).fillna(1.0)
    rows["rel_error"] = rows["predicted_s"] / rows["median_s"] - 1
    test = rows[rows["held_out"]] if rows["held_out"].any() else rows
    abs_err = test["rel_error"].abs()
    rho, best_hits, best_near, groups = _spearman_and_best(test[test["kernel"] == GATHER_SCATTER])
    be = break_even(test)
    metrics = {"rows": int(len(rows)), "held_out_rows": int(len(test)), "median_abs_error": float(abs_err.median()),
               "p90_abs_error": float(abs_err.quantile(0.9)), "spearman_blocks": rho, "best_block_match": best_hits,
               "best_block_within_noise": best_near,
               "groups": groups, "break_even_mae": float((be["measured"] - be["predicted"]).abs().mean()) if len(be) else np.nan}
    for kernel, g in test.groupby("kernel"):
        metrics[f"median_abs_error_{kernel}"] = float(g["rel_error"].abs().median())
    return Validation(rows=rows, metrics=metrics, break_even=be, residuals=residuals(test))


SEED_METRICS = ("held_out_rows", "median_abs_error", "p90_abs_error", "spearman_blocks", "best_block_match",
                "best_block_within_noise")


def validate_seeds(measurements: pd.DataFrame, hw: Hardware, seeds: list[int], holdout: float = 0.5,
                   calibrate: bool = False) -> Validation:
    """`validate` once per split seed: the first seed's rows, tables and metrics, plus `seeds` (one row of
    SEED_METRICS per seed and their median) and `metrics["median_<metric>"]` over the seeds."""
    runs = [validate(measurements, hw, holdout, seed, calibrate) for seed in seeds]
    table = pd.DataFrame([{"seed": str(seed), **{k: r.metrics[k] for k in SEED_METRICS}} for seed, r in zip(seeds, runs)])
    median = {"seed": "median", **{k: float(table[k].median()) for k in SEED_METRICS}}
    table = pd.concat([table, pd.DataFrame([median])], ignore_index=True)
    metrics = {**runs[0].metrics, "seeds": ",".join(map(str, seeds)),
               **{f"median_{k}": median[k] for k in SEED_METRICS if k != "held_out_rows"}}
    return replace(runs[0], metrics=metrics, seeds=table)


def load_measurements(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.is_file():
        raise SparsesimError(f"measurements not found: {path}")
    try:
        m = pd.read_csv(p) if p.suffix == ".csv" else _read_parquet(p)
    except Exception as e:  # pyarrow and pandas raise many types for a file that is not a table
        raise SparsesimError(f"cannot read measurements {path}: {(str(e).splitlines() or [type(e).__name__])[0][:160]}") from None
    problem = _table_problem(m)
    if problem:
        raise SparsesimError(f"measurements {path}: {problem}")
    return m


def _read_parquet(p: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq
    table = pq.read_table(p)
    table.validate(full=True)   # text that is not UTF-8 fails here, not when pandas first decodes it
    return table.to_pandas()


# The columns validation reads and what each must hold: a negative time or a text shape would otherwise
# turn into errors and break-even densities printed as if measured.
COUNTS = [*SHAPE, "out_h", "out_w", "block", "active_blocks", "total_blocks"]
TIMES = ["density", "median_s"]
TEXTS = ["layer", "source", "kernel", "step"]


def _table_problem(m: pd.DataFrame) -> str | None:
    missing = [c for c in (*COUNTS, *TIMES, *TEXTS) if c not in m.columns]
    if missing:
        return f"no column {missing[0]!r} (not a `sparsesim measure` table)"
    for c in COUNTS:
        if not pd.api.types.is_integer_dtype(m[c]) or (m[c] < 0).any():
            return f"column {c!r} must hold integers >= 0"
    for c in TIMES:
        v = m[c]
        if not pd.api.types.is_numeric_dtype(v) or pd.api.types.is_bool_dtype(v) or not np.isfinite(v).all() or (v < 0).any():
            return f"column {c!r} must hold finite numbers >= 0"
    for c in TEXTS:
        if not all(isinstance(x, str) for x in m[c]):
            return f"column {c!r} must hold text"
    return None


def load_all(paths: list[str], hw: str | None) -> pd.DataFrame:
    """Several measurement tables as one; `hw` names the hardware they were taken on (required)."""
    require(bool(hw), ("measurements", "measured_hw"), "{measurements} needs {measured_hw}: the hardware they were taken on")
    return normalise(pd.concat([load_measurements(p) for p in paths], ignore_index=True))


def write_tables(result: Validation, out: Path) -> list[Path]:
    """validation.csv, break_even.csv, residuals.csv, metrics.json (and seeds.csv with several seeds) in
    `out` (created), each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    tables = {"validation.csv": result.rows, "break_even.csv": result.break_even, "residuals.csv": result.residuals}
    if not result.seeds.empty:
        tables["seeds.csv"] = result.seeds
    metrics = json.dumps(result.metrics, indent=2, sort_keys=True)
    writes = [(out / name, lambda tmp, t=table: t.to_csv(tmp, index=False)) for name, table in tables.items()]
    writes.append((out / "metrics.json", lambda tmp: Path(tmp).write_text(metrics)))
    write_atomic_all(writes)   # the tables as one result: all replaced or none
    return [path for path, _ in writes]
