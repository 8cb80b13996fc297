"""Write sparsesim workloads in Timeloop's formats: per layer a problem file (v0.3, and the v0.4 form
timeloopfe reads) with the densities measured on real video, a Sparseloop sparse_optimizations file,
and the architecture (v0.3)."""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from ... import trace, workload
from ...atomic import write_atomic
from ...errors import SparsesimError, require
from ...hardware import Hardware, load
from ...cost.mapspace import Problem
from ...workload import BlockWorkload, halo_tile
from .mapping import mapping_v03

DIMENSIONS = ["C", "M", "R", "S", "N", "P", "Q"]
TIMELOOP_CLASS = {"dram": "DRAM"}       # level kind -> Timeloop class (others: SRAM, or regfile per PE)
PE_LEVELS = ("rf",)                     # per-PE levels that go inside the PE subtree
# Timeloop's CNN-layer shape: R/P along the width (W strides), S/Q along the height.
PROJECTIONS = {
    "Weights": [[["C"]], [["M"]], [["R"]], [["S"]]],
    "Inputs": [[["N"]], [["C"]], [["R", "Wdilation"], ["P", "Wstride"]], [["S", "Hdilation"], ["Q", "Hstride"]]],
    "Outputs": [[["N"]], [["M"]], [["Q"]], [["P"]]],
}


@dataclass(frozen=True)
class LayerDensity:
    """Fraction of a data space a block-sparse layer touches, mean over frames, and its spread."""
    mean: float
    p10: float
    median: float
    p90: float

    @classmethod
    def of(cls, values: np.ndarray) -> "LayerDensity":
        p10, median, p90 = np.percentile(values, [10, 50, 90])
        return cls(float(values.mean()), float(p10), float(median), float(p90))

    def comment(self) -> str:
        return f"per-frame spread: p10 {self.p10:.4f}, median {self.median:.4f}, p90 {self.p90:.4f}"


def densities(wl: BlockWorkload, layer_index: int, block_index: int) -> dict[str, LayerDensity]:
    """Outputs: in-bounds output pixels of active B x B blocks; Inputs: the input they read (halos
    included, capped at the whole map); Weights: all of them whenever any block is active."""
    layer = wl.layers.iloc[layer_index]
    block = wl.blocks[block_index]
    pixels = wl.active_pixels[layer_index, :, block_index].astype(float)
    n = wl.active_blocks[layer_index, :, block_index].astype(float)
    tile = lambda k, s, d, size: min(halo_tile(block, k, s, d), size)  # noqa: E731
    tile_in = tile(layer.kernel_h, layer.stride_h, layer.dilation_h, layer.in_h) * \
        tile(layer.kernel_w, layer.stride_w, layer.dilation_w, layer.in_w)
    return {"Inputs": LayerDensity.of(np.minimum(n * tile_in / (layer.in_h * layer.in_w), 1.0)),
            "Weights": LayerDensity.of((n > 0).astype(float)),
            "Outputs": LayerDensity.of(pixels / (layer.out_h * layer.out_w))}


def _instance(layer) -> dict:
    return dict(Problem.from_layer(layer).__dict__)


def problem_v03(layer, dens: dict[str, LayerDensity]) -> dict:
    coefficients = [{"name": n, "default": 1} for n in ("Wstride", "Hstride", "Wdilation", "Hdilation")]
    spaces = [{"name": name, "projection": proj, **({"read-write": True} if name == "Outputs" else {})}
              for name, proj in PROJECTIONS.items()]
    instance = _instance(layer)
    instance["densities"] = {k: {"distribution": "fixed-structured", "density": round(d.mean, 6)} for k, d in dens.items()}
    return {"problem": {"shape": {"name": "CNN-Layer", "dimensions": DIMENSIONS, "coefficients": coefficients,
                                  "data-spaces": spaces}, "instance": instance}}


def problem_v04(layer, dens: dict[str, LayerDensity]) -> dict:
    def projection(proj) -> str:  # [[["R", "Wdilation"], ["P", "Wstride"]]] -> "[ R*Wdilation + P*Wstride ]"
        return "[ " + ", ".join(" + ".join("*".join(term) for term in dim) for dim in proj) + " ]"
    instance = _instance(layer)
    instance["densities"] = {k: {"density": round(d.mean, 6), "density_distribution": "fixed_structured"}
                             for k, d in dens.items()}
    return {"problem": {"version": 0.4, "shape": {
        "name": "CNN-Layer", "dimensions": DIMENSIONS,
        "coefficients": [{"name": n, "default": 1} for n in ("Wstride", "Hstride", "Wdilation", "Hdilation")],
        "data_spaces": [{"name": name, "projection": projection(proj), **({"read_write": True} if name == "Outputs" else {})}
                        for name, proj in PROJECTIONS.items()]}, "instance": instance}}


def _timeloop_section(hw: Hardware) -> dict | None:
    if hw.path and Path(hw.path).exists():
        return (yaml.safe_load(Path(hw.path).read_text()) or {}).get("timeloop")
    return None


def _innermost(hw: Hardware, space: str) -> str:
    """The Timeloop storage level that feeds the MACs a data space: the innermost one keeping it (an
    imported array's real level; sparsesim's own architectures are written with its level names)."""
    arch = getattr(hw.part, "loop_arch", None)
    if arch is not None:
        return next(s.name for s in reversed(arch.stores) if space in s.keeps)
    from ...hardware.timeloop import walk        # the innermost storage `architecture_v03` writes
    tree = architecture_v03(hw)["architecture"]["subtree"][0]
    return [c.name for c in walk(tree) if c.cls != "intmac"][-1]


def sparse_optimizations(hw: Hardware) -> dict:
    """Block-sparse skipping in Sparseloop's terms: a MAC whose input lies in an inactive block does not
    happen, so the weight read (at the innermost level keeping Weights) and the partial-sum update (at
    the innermost level keeping Outputs) are skipped where the input is zero. (Sparseloop's compute
    analysis accepts operands as conditions, not the output a gate decides.) A hardware that states
    its own optimizations (`timeloop.sparse_optimizations`) exports those instead."""
    section = _timeloop_section(hw) or {}
    if section.get("sparse_optimizations"):
        return yaml.safe_load((Path(hw.path).parent / section["sparse_optimizations"]).read_text())
    targets: dict[str, list] = {}
    for space in ("Weights", "Outputs"):
        targets.setdefault(_innermost(hw, space), []).append(
            {"type": "skipping", "options": [{"target": space, "condition-on": ["Inputs"]}]})
    return {"sparse_optimizations": {"targets": [{"name": name, "action-optimization": actions}
                                                 for name, actions in targets.items()]}}


def architecture_v03(hw: Hardware) -> dict:
    """A Timeloop v0.3 tree from a sparsesim spec: DRAM, the shared on-chip levels, PEs with their
    register file and MAC. (Imported hardware copies its original file instead.)"""
    bits = 8 * hw.word_bytes
    pe_count = hw.units                      # PEs on an array (rows x cols), else SMs or cores
    mesh_x = getattr(hw.part, "cols", 0) or 1
    def storage(lv, per_unit: bool) -> dict:
        depth = int(lv.size_bytes / (pe_count if per_unit else 1) * 8 // bits) if lv.size_bytes else 0
        attributes = {"word-bits": bits, "width": bits, "depth": depth, "block-size": 1}
        if lv.kind in TIMELOOP_CLASS:   # DRAM is unbounded in Timeloop (a depth past 2^31 is refused)
            attributes.pop("depth")
        return {"name": lv.name, "class": TIMELOOP_CLASS.get(lv.kind, "regfile" if per_unit else "SRAM"),
                "attributes": attributes}
    shared = [storage(lv, False) for lv in hw.levels[1:] if lv.shared and lv.kind in ("l2", "buffer")]
    inner = [storage(lv, True) for lv in hw.levels if not lv.shared and lv.kind in PE_LEVELS]
    mac = {"name": "mac", "class": "intmac", "attributes": {"datawidth": bits, "meshX": mesh_x}}
    for item in inner:
        item["attributes"]["meshX"] = mesh_x
    return {"architecture": {"version": 0.3, "subtree": [{
        "name": "system", "local": [storage(hw.levels[0], False)],
        "subtree": [{"name": hw.name, "attributes": {"technology": "45nm"}, "local": shared,
                     "subtree": [{"name": f"PE[0..{pe_count - 1}]", "local": [*inner, mac]}]}]}]}}


def _dump(path: Path, data: dict, header: str) -> None:
    text = f"# {header}\n" + yaml.safe_dump(data, sort_keys=False)
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))   # a full disk leaves no half-written file


# timeloop-mapper's search: the exercise's own settings (mapper/mapper.yaml of the VGG02 exercise:
# random-pruned, 8 threads, stop after 500 mappings without improvement), Timeloop's order of metrics
# (fewest cycles, then least energy). The threads never exchange mappings (sync-interval 0), so each
# one's pseudo-random sequence (std::default_random_engine, default seed) and the result repeat.
MAPPER_CONFIG = {"mapper": {"optimization-metrics": ["delay", "energy"], "live-status": False, "num-threads": 8,
                            "algorithm": "random-pruned", "max-permutations-per-if-visit": 16,
                            "timeout": 15000, "victory-condition": 500, "sync-interval": 0, "log-interval": 0}}


def _copy(source: Path, target: Path, written: list[Path]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    written.append(target)


def write_architecture(hw: Hardware, out: Path) -> list[Path]:
    """Everything but the problem that Timeloop v3.0.3 needs: the v0.3 architecture, its compound
    components, Accelergy's full ERT (so Timeloop prices accesses without running Accelergy), the
    mapping constraints and the mapper's configuration."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    section = _timeloop_section(hw)
    if section:
        source = Path(hw.path).parent / section["architecture"]
        _copy(source, out / "architecture.yaml", written)
        for component in sorted((source.parent / "components").glob("*.yaml")):  # its compound classes
            _copy(component, out / "components" / component.name, written)
        ert = (Path(hw.path).parent / section["ert"]).with_name("ERT.yaml")
        if ert.exists():
            _copy(ert, out / "ERT.yaml", written)
        for c in section.get("constraints") or []:
            _copy(Path(hw.path).parent / c, out / "constraints" / Path(c).name, written)
    else:
        _dump(out / "architecture.yaml", architecture_v03(hw), f"Timeloop v0.3 architecture of {hw.name}, written by sparsesim")
        written.append(out / "architecture.yaml")
    _dump(out / "mapper.yaml", MAPPER_CONFIG, "timeloop-mapper's search, as sparsesim runs it")
    written.append(out / "mapper.yaml")
    return written


def write_mapping(hw: Hardware, problem: Problem, path: Path) -> Path | None:
    """sparsesim's own best mapping of the layer as a Timeloop mapping (None where the hardware
    states no mapping constraints)."""
    from ...cost.mapper import best_mapping
    if getattr(hw.part, "loop_arch", None) is None:
        return None
    try:
        m = best_mapping(hw, problem)
    except SparsesimError:   # no mapping fits the array's constraints: timeloop-mapper would find none either
        return None
    _dump(path, mapping_v03(hw.part.loop_arch, m.factors),
          f"sparsesim's mapping: {m.cycles:.0f} cycles, {m.energy_pj / 1e6:.2f} uJ, of {m.candidates} valid mappings")
    return path


def export(wl: BlockWorkload, hw: Hardware, block: int, out: Path, layers: Sequence[str] | None = None) -> list[Path]:
    if block not in wl.blocks:
        raise SparsesimError(f"block {block} is not in the workload's block sizes {wl.blocks}")
    j = wl.blocks.index(block)
    wanted = set(layers) if layers else None
    written = write_architecture(hw, out)
    sparse = out / "sparse_optimizations.yaml"
    _dump(sparse, sparse_optimizations(hw), f"Sparseloop optimizations for block-sparse skipping on {hw.name}")
    written.append(sparse)
    for i, layer in enumerate(wl.layers.itertuples()):
        if wanted is not None and layer.name not in wanted:
            continue
        if layer.op != "conv2d":
            continue  # transposed convs have no Timeloop CNN-layer form here
        dens = densities(wl, i, j)
        spread = "; ".join(f"{k} {d.comment()}" for k, d in dens.items())
        header = f"layer {layer.name} of trace {wl.name}, B={block} blocks over {len(wl.frames)} frames; {spread}"
        for suffix, make in (("problem.yaml", problem_v03), ("problem.v0.4.yaml", problem_v04)):
            path = out / f"{layer.name}.{suffix}"
            _dump(path, make(layer, dens), header)
            written.append(path)
        # Sparseloop reads the densities from the problem's instance; this per-layer copy of the
        # optimizations states them beside the skipping they drive.
        path = out / f"{layer.name}.sparse_optimizations.yaml"
        stated = ", ".join(f"{k} fixed-structured {d.mean:.6f}" for k, d in dens.items())
        _dump(path, sparse_optimizations(hw), f"{header}\n# densities (as in {layer.name}.problem.yaml): {stated}")
        written.append(path)
        mapping = write_mapping(hw, Problem.from_layer(layer), out / f"{layer.name}.map.yaml")
        written += [mapping] if mapping else []
    if not any(p.name.endswith(".problem.yaml") for p in written):
        raise SparsesimError("no Conv2d layer to export (transposed convs are not exported)")
    return written


@dataclass(frozen=True)
class ExportOptions:
    trace: str
    hardware: str
    block: int = 8
    output: str = "timeloop"
    layers: Sequence[str] | None = None
    frames: int | None = None

    def validate(self) -> None:
        require(self.block >= 1, "block", f"must be >= 1, got {self.block}")
        require(self.frames is None or self.frames >= 1, "frames", f"must be >= 1, got {self.frames}")


def run_export(options: ExportOptions) -> list[Path]:
    """`sparsesim export timeloop`: the trace's layers at one block size, in Timeloop's files."""
    options.validate()
    wl = workload.from_trace(trace.open(options.trace), [options.block], options.frames)
    return export(wl, load(options.hardware), options.block, Path(options.output), options.layers)


def read_problem(path: Path) -> tuple[dict, dict[str, float]]:
    """A v0.3 or v0.4 problem file -> (instance dimensions, density per data space)."""
    data = yaml.safe_load(Path(path).read_text())["problem"]
    instance = dict(data["instance"])
    dens = instance.pop("densities", {})
    return instance, {k: float(v["density"]) if isinstance(v, dict) else float(v) for k, v in dens.items()}
