"""sparsesim beside real Timeloop v3.0.3 on many conv layers of the Eyeriss-like array of the
Timeloop exercises (accel_models/eyeriss-timeloop.yaml, its row-stationary constraints):

- dense: every Conv2d shape of the committed sample traces (RIFE, MTCNN P-Net, Real-ESRGAN compact)
  and of VGG-16 and ResNet-18 at 224 x 224. Timeloop: `timeloop-mapper` (random-pruned search,
  `MAPPER_CONFIG` in sparsesim.interop.timeloop.export) and `timeloop-model` on sparsesim's own
  mapping. sparsesim: its mapper (every mapping the constraints allow, fewest cycles then least energy,
  as Timeloop's [delay, energy]), its nest analysis on Timeloop's mapping, and its plain analytical
  model (the YAML's fixed tiling, no mapper);
- gating: every Conv2d layer of three traces at B=8 with the trace's measured densities, on the
  Sparseloop exercise's array (accel_models/eyeriss-sparseloop.yaml: gating of weight reads on zero
  inputs, compressed DRAM inputs and outputs), `timeloop-model` and sparsesim on sparsesim's mapping.

Timeloop's outputs are cached as small JSON files under benchmarks/results/timeloop-3.0.3/ (the stats
by level and data space, the mapping, the command, its wall time); `--run` runs Timeloop on the cases
not cached yet (`make timeloop` builds it), `--rerun` on all. Without either, sparsesim is run live
against the cache. The table goes to benchmarks/results/timeloop_crosscheck.csv.

Usage: python benchmarks/timeloop_crosscheck.py [--run | --rerun] [--only SUBSTRING]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sparsesim import hardware, trace, workload
from sparsesim.cost.mapper import Sparsity, best_mapping, evaluate_mapping, loop_arch
from sparsesim.cost.mapspace import Problem
from sparsesim.interop.timeloop import export as tl_export
from sparsesim.interop.timeloop.mapping import mapping_v03, read_map_txt
from sparsesim.interop.timeloop.run import arch_inputs, run_tool

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / "results" / "timeloop-3.0.3"
TABLE = HERE / "results" / "timeloop_crosscheck.csv"
DENSE_HW, SPARSE_HW, BLOCK = "eyeriss-timeloop", "eyeriss-sparseloop", 8
TRACES = {"rife": "carphone_pristine-rife-input-norm-e0.05", "mtcnn-pnet": "carphone_pristine-mtcnn-pnet-input-norm-e0.05",
          "realesr": "carphone_pristine-realesr-compact-input-norm-e0.05"}
# (name, C, M, kernel, stride, output side) at 224 x 224
CLASSIC = [("vgg16.conv1_1", 3, 64, 3, 1, 224), ("vgg16.conv1_2", 64, 64, 3, 1, 224), ("vgg16.conv2_1", 64, 128, 3, 1, 112),
           ("vgg16.conv2_2", 128, 128, 3, 1, 112), ("vgg16.conv3_1", 128, 256, 3, 1, 56), ("vgg16.conv3_2", 256, 256, 3, 1, 56),
           ("vgg16.conv4_1", 256, 512, 3, 1, 28), ("vgg16.conv4_2", 512, 512, 3, 1, 28), ("vgg16.conv5_1", 512, 512, 3, 1, 14),
           ("resnet18.conv1", 3, 64, 7, 2, 112), ("resnet18.layer1", 64, 64, 3, 1, 56), ("resnet18.layer2.down", 64, 128, 3, 2, 28),
           ("resnet18.layer2", 128, 128, 3, 1, 28), ("resnet18.layer2.proj", 64, 128, 1, 2, 28),
           ("resnet18.layer3.down", 128, 256, 3, 2, 14), ("resnet18.layer3", 256, 256, 3, 1, 14),
           ("resnet18.layer3.proj", 128, 256, 1, 2, 14), ("resnet18.layer4.down", 256, 512, 3, 2, 7),
           ("resnet18.layer4", 512, 512, 3, 1, 7), ("resnet18.layer4.proj", 256, 512, 1, 2, 7)]
MAPPER = tl_export.MAPPER_CONFIG["mapper"]
LEVELS = ("DRAM", "shared_glb", "ifmap_spad", "weights_spad", "psum_spad")


def case_id(p: Problem) -> str:
    return f"C{p.C}-M{p.M}-R{p.R}S{p.S}-P{p.P}Q{p.Q}-s{p.Wstride}x{p.Hstride}-d{p.Wdilation}x{p.Hdilation}"


def classic_problems() -> dict[Problem, list[str]]:
    out: dict[Problem, list[str]] = {}
    for name, c, m, k, s, side in CLASSIC:
        out.setdefault(Problem(C=c, M=m, R=k, S=k, N=1, P=side, Q=side, Wstride=s, Hstride=s), []).append(name)
    return out


def trace_layers() -> list[tuple[str, str, object, dict[str, float]]]:
    """(model, layer name, layer row, densities at B=8) for every Conv2d layer of the sample traces."""
    rows = []
    for model, name in TRACES.items():
        wl = workload.from_trace(trace.open(ROOT / "traces" / name), [BLOCK])
        for i, layer in enumerate(wl.layers.itertuples()):
            if layer.op == "conv2d":
                dens = {k: d.mean for k, d in tl_export.densities(wl, i, 0).items()}
                rows.append((model, layer.name, layer, dens))
    return rows


def dense_cases() -> dict[Problem, list[str]]:
    cases = {}
    for model, name, layer, _ in trace_layers():
        cases.setdefault(Problem.from_layer(layer), []).append(f"{model}.{name}")
    for p, names in classic_problems().items():
        cases.setdefault(p, []).extend(names)
    return cases


def problem_yaml(p: Problem, densities: dict[str, float] | None = None) -> dict:
    layer = pd.Series(dict(in_channels=p.C, groups=1, out_channels=p.M, kernel_w=p.R, kernel_h=p.S, out_w=p.P,
                           out_h=p.Q, stride_w=p.Wstride, stride_h=p.Hstride, dilation_w=p.Wdilation,
                           dilation_h=p.Hdilation))
    data = tl_export.problem_v03(layer, {k: tl_export.LayerDensity(v, v, v, v) for k, v in (densities or {}).items()})
    if not densities:
        data["problem"]["instance"].pop("densities")
    return data


def _summary(run) -> dict:
    s = run.stats
    return {"command": " ".join(Path(a).name if "/" in a else a for a in run.command), "seconds": round(run.seconds, 3),
            "cycles": s.cycles, "energy_pj": s.energy_pj, "utilization": s.utilization,
            "levels": {lv.name: {"energy_pj": lv.energy_pj, **{sp: lv.accesses(sp) for sp in lv.spaces}} for lv in s.levels},
            "mac_energy_pj": next(lv.energy_pj for lv in s.levels if "mac" in lv.name.lower())}


def energy_pj(summary: dict) -> float:
    """Timeloop's energy as the sum of its levels' (printed in pJ; the summary's uJ has two decimals)."""
    return sum(level["energy_pj"] for level in summary["levels"].values())


def run_dense(p: Problem, names: list[str]) -> dict:
    hw = hardware.load(DENSE_HW)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        tl_export.write_architecture(hw, d)
        (d / "problem.yaml").write_text(yaml.safe_dump(problem_yaml(p)))
        start = time.perf_counter()
        mine = best_mapping(hw, p)
        mine_s = time.perf_counter() - start
        (d / "map.yaml").write_text(yaml.safe_dump(mapping_v03(loop_arch(hw), mine.factors)))
        arch = [f for f in arch_inputs(d) if "constraints" not in str(f)]  # timeloop-model checks no constraints
        model = run_tool("timeloop-model", d / "model", [*arch, d / "problem.yaml", d / "map.yaml"])
        mapper = run_tool("timeloop-mapper", d / "mapper", [*arch_inputs(d), d / "problem.yaml", d / "mapper.yaml"])
        return {"timeloop": "3.0.3", "problem": p.__dict__, "layers": names, "sparsesim_mapping": mine.factors.tolist(),
                "sparsesim_mapper_seconds": round(mine_s, 3),
                "mapper": {**_summary(mapper), "map": (mapper.work / "timeloop-mapper.map.txt").read_text()},
                "model_on_sparsesim_mapping": _summary(model)}


EXHAUSTIVE = {"mapper": {**MAPPER, "algorithm": "exhaustive", "num-threads": 2, "timeout": 0, "victory-condition": 0,
                         "search-size": 0}}


def run_exhaustive(path: Path) -> None:
    """Timeloop's exhaustive search on one cached dense case (minutes): the optimum of its mapspace, to
    tell a search gap of the random-pruned mapper from a model difference."""
    data = json.loads(path.read_text())
    hw = hardware.load(DENSE_HW)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        tl_export.write_architecture(hw, d)
        (d / "problem.yaml").write_text(yaml.safe_dump(problem_yaml(Problem(**data["problem"]))))
        (d / "exhaustive.yaml").write_text(yaml.safe_dump(EXHAUSTIVE))
        run = run_tool("timeloop-mapper", d / "mapper", [*arch_inputs(d), d / "problem.yaml", d / "exhaustive.yaml"], 7200)
        data["exhaustive"] = {**_summary(run), "map": (run.work / "timeloop-mapper.map.txt").read_text()}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def run_gating(model_name: str, name: str, p: Problem, dens: dict[str, float]) -> dict:
    hw = hardware.load(SPARSE_HW)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        tl_export.write_architecture(hw, d)
        (d / "problem.yaml").write_text(yaml.safe_dump(problem_yaml(p, dens)))
        (d / "sparse.yaml").write_text(yaml.safe_dump(tl_export.sparse_optimizations(hw)))
        mine = best_mapping(hw, p)
        (d / "map.yaml").write_text(yaml.safe_dump(mapping_v03(loop_arch(hw), mine.factors)))
        arch = [f for f in arch_inputs(d) if "constraints" not in str(f)]
        model = run_tool("timeloop-model", d / "model", [*arch, d / "sparse.yaml", d / "problem.yaml", d / "map.yaml"])
        return {"timeloop": "3.0.3", "problem": p.__dict__, "layer": f"{model_name}.{name}", "densities": dens,
                "sparsesim_mapping": mine.factors.tolist(), "model_on_sparsesim_mapping": _summary(model)}


def _cache(path: Path, make, rerun: bool) -> dict | None:
    if path.exists() and not rerun:
        return json.loads(path.read_text())
    if make is None:
        return None
    data = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return data


def dense_row(data: dict) -> dict:
    """sparsesim beside Timeloop on one dense case (sparsesim run now)."""
    hw = hardware.load(DENSE_HW)
    p = Problem(**data["problem"])
    start = time.perf_counter()
    mine = best_mapping(hw, p)
    mapper_s = time.perf_counter() - start
    tl = data["mapper"]
    theirs = read_map_txt(tl["map"], loop_arch(hw))
    start = time.perf_counter()
    on_theirs = evaluate_mapping(hw, p, theirs)
    eval_s = time.perf_counter() - start
    model = data["model_on_sparsesim_mapping"]
    row = {"case": case_id(p), "layers": " ".join(data["layers"]), "macs": p.macs,
           "timeloop_cycles": tl["cycles"], "sparsesim_cycles": mine.cycles,
           "timeloop_energy_uj": energy_pj(tl) / 1e6, "sparsesim_energy_uj": mine.energy_pj / 1e6,
           "timeloop_util": tl["utilization"], "sparsesim_util": mine.utilization,
           "model_on_theirs_cycles_err": on_theirs.cycles / tl["cycles"] - 1,
           "model_on_theirs_energy_err": on_theirs.energy_pj / energy_pj(tl) - 1,
           "model_on_mine_energy_err": mine.energy_pj / energy_pj(model) - 1 if np.array_equal(
               np.array(data["sparsesim_mapping"]), mine.factors) else np.nan,
           "timeloop_mapper_s": tl["seconds"], "timeloop_model_s": model["seconds"],
           "sparsesim_mapper_s": mapper_s, "sparsesim_eval_s": eval_s,
           "sparsesim_mapper_s_in_run": data["sparsesim_mapper_seconds"]}  # timed beside Timeloop, same load
    for lv in LEVELS:
        row[f"timeloop_{lv}_uj"] = tl["levels"][lv]["energy_pj"] / 1e6
        row[f"sparsesim_{lv}_uj"] = mine.level(lv).energy_pj / 1e6
        for sp in ("Weights", "Inputs", "Outputs"):
            if sp in tl["levels"][lv]:
                row[f"timeloop_{lv}_{sp}"] = tl["levels"][lv][sp]
                row[f"sparsesim_{lv}_{sp}"] = mine.level(lv).accesses(sp)
    row["cycles_err"] = row["sparsesim_cycles"] / row["timeloop_cycles"] - 1
    row["energy_err"] = row["sparsesim_energy_uj"] / row["timeloop_energy_uj"] - 1
    row["plain_model_cycles_err"], row["plain_model_energy_err"] = plain_model(p, tl)
    row["note"] = note(row, data)
    if "exhaustive" in data:    # Timeloop's own optimum, where it was searched exhaustively
        row["exhaustive_cycles"], row["exhaustive_energy_uj"] = data["exhaustive"]["cycles"], energy_pj(data["exhaustive"]) / 1e6
    return row


def note(row: dict, data: dict) -> str:
    """Why sparsesim and Timeloop differ on a layer, where they do."""
    out = []
    if abs(row["cycles_err"]) > 0.05 or abs(row["energy_err"]) > 0.10:
        if abs(row["model_on_theirs_energy_err"]) < 1e-4 and row["sparsesim_cycles"] <= row["timeloop_cycles"]:
            gap = f"Timeloop's random-pruned search stopped {-row['energy_err'] / (1 + row['energy_err']):.0%} above a mapping sparsesim found"
            if "exhaustive" in data:
                gap += f"; its exhaustive search finds {energy_pj(data['exhaustive']) / 1e6:,.2f} uJ (sparsesim {row['sparsesim_energy_uj']:,.2f})"
            out.append(gap + " (both models agree on Timeloop's mapping)")
        else:
            out.append("model difference")
    if abs(row["plain_model_cycles_err"]) > 0.05 or abs(row["plain_model_energy_err"]) > 0.10:
        out.append(f"without a mapper (the YAML's VGG02 tiling): cycles {row['plain_model_cycles_err']:+.0%}, "
                   f"energy {row['plain_model_energy_err']:+.0%} (Timeloop fills {row['timeloop_util']:.0%} of the PEs)")
    return "; ".join(out)


def plain_model(p: Problem, tl: dict) -> tuple[float, float]:
    """sparsesim's analytical model without a mapper (the YAML's fixed tiling) against Timeloop's mapper."""
    from sparsesim.cost.energy import energy
    from sparsesim.cost.latency import latency
    from sparsesim.workload import Geometry, dense_work
    hw = hardware.load(DENSE_HW)
    layer = pd.DataFrame([dict(id=0, name="x", op="conv2d", in_channels=p.C, out_channels=p.M, kernel_h=p.S, kernel_w=p.R,
                               stride_h=p.Hstride, stride_w=p.Wstride, padding_h=0, padding_w=0, dilation_h=p.Hdilation,
                               dilation_w=p.Wdilation, groups=1, in_h=(p.Q - 1) * p.Hstride + p.S, in_w=(p.P - 1) * p.Wstride + p.R,
                               out_h=p.Q, out_w=p.P, dense_macs=p.macs, weight_bytes=2 * p.C * p.M * p.R * p.S)])
    geo = Geometry.from_layers(layer)
    cycles = latency(geo, hw, dense_work(geo))["latency_s"].item() * hw.clock_hz
    pj = energy(geo, hw, hardware.energy_table(hw.energy_table), dense_work(geo))["energy_pj"].item()
    return cycles / tl["cycles"] - 1, pj / energy_pj(tl) - 1


def gating_row(data: dict) -> dict:
    hw = hardware.load(SPARSE_HW)
    p = Problem(**data["problem"])
    sparsity = Sparsity.from_optimizations(tl_export.sparse_optimizations(hw), loop_arch(hw), data["densities"])
    mine = evaluate_mapping(hw, p, np.array(data["sparsesim_mapping"]), sparsity)
    dense = evaluate_mapping(hw, p, np.array(data["sparsesim_mapping"]))
    tl = data["model_on_sparsesim_mapping"]
    row = {"case": f"gating {data['layer']}", "layers": data["layer"], "macs": p.macs,
           **{f"density_{k.lower()}": v for k, v in data["densities"].items()},
           "timeloop_cycles": tl["cycles"], "sparsesim_cycles": mine.cycles,
           "timeloop_energy_uj": energy_pj(tl) / 1e6, "sparsesim_energy_uj": mine.energy_pj / 1e6,
           "dense_energy_uj": dense.energy_pj / 1e6}
    for lv in LEVELS:
        row[f"timeloop_{lv}_uj"] = tl["levels"][lv]["energy_pj"] / 1e6
        row[f"sparsesim_{lv}_uj"] = mine.level(lv).energy_pj / 1e6
    row["energy_err"] = row["sparsesim_energy_uj"] / row["timeloop_energy_uj"] - 1
    row["cycles_err"] = row["sparsesim_cycles"] / row["timeloop_cycles"] - 1
    return row


def collect(run: bool, rerun: bool, only: str = "") -> pd.DataFrame:
    rows = []
    for p, names in dense_cases().items():
        if only and not any(only in n for n in names):
            continue
        data = _cache(CACHE / "dense" / f"{case_id(p)}.json", (lambda: run_dense(p, names)) if run or rerun else None, rerun)
        if data is None:
            print(f"not cached (use --run): {case_id(p)}", file=sys.stderr)
            continue
        rows.append(dense_row(data))
    for model, name, layer, dens in trace_layers():
        if only and only not in f"{model}.{name}":
            continue
        p = Problem.from_layer(layer)
        path = CACHE / "gating" / f"{model}.{name}.json"
        data = _cache(path, (lambda: run_gating(model, name, p, dens)) if run or rerun else None, rerun)
        if data is not None:
            rows.append(gating_row(data))
    return pd.DataFrame(rows)


def report(table: pd.DataFrame) -> None:
    dense = table[~table["case"].str.startswith("gating")]
    gating = table[table["case"].str.startswith("gating")]
    pct = lambda s: f"{100 * s.mean():.0f}%"  # noqa: E731
    cols = ["case", "timeloop_cycles", "sparsesim_cycles", "cycles_err", "timeloop_energy_uj", "sparsesim_energy_uj",
            "energy_err", "model_on_theirs_energy_err", "plain_model_cycles_err", "plain_model_energy_err"]
    print(dense[cols].to_string(index=False, float_format=lambda v: f"{v:,.3f}"))
    for row in dense[(dense["cycles_err"].abs() > 0.05) | (dense["energy_err"].abs() > 0.10)].itertuples():
        print(f"outlier {row.case} ({row.layers}): {row.note}")
    both = (dense["cycles_err"].abs() <= 0.05) & (dense["energy_err"].abs() <= 0.10)
    print(f"\ndense: {len(dense)} shapes; cycles within 5%: {pct(dense['cycles_err'].abs() <= 0.05)}, energy within 10%: "
          f"{pct(dense['energy_err'].abs() <= 0.10)}, both: {pct(both)}; sparsesim's model on Timeloop's mapping: "
          f"max |energy error| {dense['model_on_theirs_energy_err'].abs().max():.2e}, "
          f"max |cycles error| {dense['model_on_theirs_cycles_err'].abs().max():.2e}; without a mapper (fixed tiling): "
          f"cycles within 5% {pct(dense['plain_model_cycles_err'].abs() <= 0.05)}, "
          f"energy within 10% {pct(dense['plain_model_energy_err'].abs() <= 0.10)}")
    mapper_ratio = dense["timeloop_mapper_s"] / dense["sparsesim_mapper_s_in_run"]
    model_ratio = dense["timeloop_model_s"] / dense["sparsesim_eval_s"]
    print(f"time per layer (timed in the --run, same load): timeloop-mapper / sparsesim's mapper median "
          f"{np.median(mapper_ratio):,.0f}x (range {mapper_ratio.min():,.0f}-{mapper_ratio.max():,.0f}x); sparsesim's mapper "
          f"{dense['sparsesim_mapper_s_in_run'].median():.2f} s, timeloop-mapper {dense['timeloop_mapper_s'].median():.1f} s median; "
          f"timeloop-model (one process per layer) / sparsesim on one mapping (now) median {np.median(model_ratio):,.0f}x")
    if len(gating):
        print(f"gating: {len(gating)} layers; energy within 15%: {pct(gating['energy_err'].abs() <= 0.15)} "
              f"(max |error| {gating['energy_err'].abs().max():.2%}); cycles within 5%: {pct(gating['cycles_err'].abs() <= 0.05)}")


ACCEPT_HW = ("eyeriss-timeloop", "eyeriss-sparseloop", "eyeriss", "tpu-v1", "gemmini", "h100")
QUICK_MAPPER = {"mapper": {"optimization-metrics": ["delay", "energy"], "live-status": False, "num-threads": 1,
                           "search-size": 50, "timeout": 100000}}


def accept_one(hw_name: str, trace_name: str, layers: list[str] | None) -> list[dict]:
    """`sparsesim export timeloop` of a trace, every exported layer given to real Timeloop: timeloop-model
    on sparsesim's mapping with the layer's densities and sparse optimizations where the hardware states
    mapping constraints, else timeloop-mapper (50 valid mappings) on the problem and optimizations."""
    from sparsesim.errors import SparsesimError
    hw = hardware.load(hw_name)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        wl = workload.from_trace(trace.open(ROOT / "traces" / trace_name), [BLOCK])
        files = tl_export.export(wl, hw, BLOCK, d, layers)
        (d / "quick.yaml").write_text(yaml.safe_dump(QUICK_MAPPER))
        for problem in (f for f in files if f.name.endswith(".problem.yaml")):
            layer = problem.name.removesuffix(".problem.yaml")
            mapping, opt = d / f"{layer}.map.yaml", d / f"{layer}.sparse_optimizations.yaml"
            arch = [f for f in arch_inputs(d) if "constraints" not in str(f)]
            tool, inputs = ("timeloop-model", [*arch, problem, opt, mapping]) if mapping.exists() else \
                ("timeloop-mapper", [*arch_inputs(d), problem, opt, d / "quick.yaml"])
            try:
                run = run_tool(tool, d / "runs" / layer, inputs, timeout_s=600)
                rows.append({"hw": hw_name, "trace": trace_name, "layer": layer, "tool": tool, "accepted": True,
                             "error": "", "cycles": run.stats.cycles, "energy_pj": run.stats.energy_pj})
            except SparsesimError as e:
                rows.append({"hw": hw_name, "trace": trace_name, "layer": layer, "tool": tool, "accepted": False,
                             "error": str(e), "cycles": 0, "energy_pj": 0.0})
    return rows


def accept(run: bool) -> pd.DataFrame:
    """Every layer of the three traces on the imported arrays, the P-Net trace on sparsesim's own arrays."""
    path = CACHE / "accept.json"
    if run or not path.exists():    # the hardware not cached yet or with a rejection, again
        rows = json.loads(path.read_text())["runs"] if path.exists() else []
        again = {r["hw"] for r in rows if not r["accepted"]} | (set(ACCEPT_HW) - {r["hw"] for r in rows})
        rows = [r for r in rows if r["hw"] not in again]
        for hw_name in (h for h in ACCEPT_HW if h in again):
            imported = getattr(hardware.load(hw_name).part, "loop_arch", None) is not None
            for name in (TRACES.values() if imported else [TRACES["mtcnn-pnet"]]):
                rows += accept_one(hw_name, name, None)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"timeloop": "3.0.3", "runs": rows}, indent=1) + "\n")
    table = pd.DataFrame(json.loads(path.read_text())["runs"])
    print(table.groupby(["hw", "tool"])["accepted"].agg(["sum", "count"]).to_string())
    for row in table[~table["accepted"]].itertuples():
        print(f"rejected: {row.hw} {row.layer}: {row.error}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run Timeloop on the cases not cached yet")
    parser.add_argument("--rerun", action="store_true", help="run Timeloop on every case again")
    parser.add_argument("--only", default="", help="only the cases whose layer names contain this")
    parser.add_argument("--exhaustive", default="", help="run Timeloop's exhaustive search on the dense case with this id")
    parser.add_argument("--accept", action="store_true", help="give every exported file to Timeloop (cached in accept.json)")
    args = parser.parse_args()
    if args.accept:
        accept(args.run or args.rerun)
        return
    if args.exhaustive:
        run_exhaustive(CACHE / "dense" / f"{args.exhaustive}.json")
    table = collect(args.run, args.rerun, args.only)
    if not args.only:
        live = ["sparsesim_mapper_s", "sparsesim_eval_s"]   # timed now: left out, so the table repeats
        TABLE.write_text(table.drop(columns=live).to_csv(index=False, float_format="%.6g"))
    report(table)


if __name__ == "__main__":
    main()
