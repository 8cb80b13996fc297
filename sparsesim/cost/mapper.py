"""sparsesim's small mapper: the best mapping of a conv layer on an array described as a loop-nest
machine (an Eyeriss-like row-stationary array imported from Timeloop), and its accesses, cycles and
energy by level.

The nest analysis counts what Timeloop's counts for a perfect factorisation, level by level and per
data space (per instance of a level, then times the instances used):
- fills: a level's tile is refilled each time a loop above it changes it. Loops above that do not
  index the data space reuse the tile while they are the innermost ones; from the first loop that
  indexes it outwards, every iteration refills it, except that a sliding window (Inputs along P with
  R, along Q with S) fetches only the new columns or rows, where the loop that moves it is the
  innermost one turning above the level (Timeloop finds no overlap across an irrelevant loop);
- reads of Weights and Inputs: the MACs' operands at the innermost level that keeps them, else the
  fills of the next level inward, once per distinct child (spatial loops over dimensions a data space
  does not index multicast);
- Outputs: updates are the MACs' results at the innermost level, else the drains of the level below
  (every visit of its tile) after spatial reduction; the first touch of each point needs no fill and
  nothing to accumulate on: it is left out of the fills and of the innermost level's reads;
- energy: each access at the ERT's figure for the level (reads at the read energy, fills and updates
  at the write energy), MACs at `mac_random`; cycles: the temporal loops' product, stretched where
  a level's bandwidth cannot keep up.
The search visits every mapping the constraints allow (`sparsesim.cost.mapspace`) and keeps the one
with the fewest cycles, then the least energy: the order of Timeloop's `optimization-metrics:
[delay, energy]`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import SparsesimError
from ..hardware import Hardware, kinds
from ..hardware.looparch import DATA_SPACES, DIMS, LoopArch
from .mapspace import D, RELEVANT, SP, T, Problem, enumerate_mappings, inner_extents, tile_words

# Inputs index a window: the loop's dim, its partner in the same axis, and their coefficients.
SLIDING = {"Inputs": {"P": ("R", "Wstride", "Wdilation"), "Q": ("S", "Hstride", "Hdilation"),
                      "R": ("P", "Wdilation", "Wstride"), "S": ("Q", "Hdilation", "Hstride")}}


@dataclass(frozen=True)
class Sparsity:
    """Element densities of the data spaces and the optimisations that act on them (Sparseloop's
    gating exercise: weight reads and MACs gated on zero inputs, compressed DRAM inputs and outputs)."""
    inputs: float = 1.0
    weights: float = 1.0
    outputs: float = 1.0
    gate_weights_on_inputs: str = ""          # the level whose weight reads are gated ("" = none)
    compressed: tuple[str, ...] = ()          # data spaces compressed at the outermost level

    @classmethod
    def from_optimizations(cls, data: dict, arch: LoopArch, densities: dict[str, float]) -> "Sparsity":
        """The optimisations of a Sparseloop `sparse_optimizations` file this model prices: gating of
        weight reads on inputs, and compressed formats at the outermost level; others are refused."""
        gate, compressed = "", []
        for target in (data.get("sparse_optimizations") or {}).get("targets", []):
            for action in target.get("action-optimization", []):
                options = [(o.get("target"), tuple(o.get("condition-on", []))) for o in action.get("options", [])]
                if action.get("type") != "gating" or options != [("Weights", ("Inputs",))]:
                    raise SparsesimError(f"sparsesim's mapper prices gating of Weights on Inputs only, not "
                                         f"{action.get('type')} {options} at {target.get('name')}")
                gate = target["name"]
            for space in (target.get("representation-format") or {}).get("data-spaces", []):
                if target["name"] != arch.stores[0].name:
                    raise SparsesimError(f"compressed {space['name']} at {target['name']}: sparsesim prices "
                                         f"compression at the outermost level ({arch.stores[0].name}) only")
                compressed.append(space["name"])
        return cls(inputs=densities.get("Inputs", 1.0), weights=densities.get("Weights", 1.0),
                   outputs=densities.get("Outputs", 1.0), gate_weights_on_inputs=gate, compressed=tuple(compressed))


@dataclass(frozen=True)
class LevelCounts:
    name: str
    instances: int                      # instances used
    reads: dict[str, float]             # per data space, all instances
    fills: dict[str, float]
    updates: dict[str, float]
    energy_pj: float

    def accesses(self, space: str) -> float:
        return self.reads.get(space, 0.0) + self.fills.get(space, 0.0) + self.updates.get(space, 0.0)


@dataclass(frozen=True)
class LayerMapping:
    problem: Problem
    arch: str
    factors: np.ndarray                 # (levels, 2, 7)
    cycles: float
    compute_cycles: float
    utilization: float
    macs: int
    mac_energy_pj: float
    levels: tuple[LevelCounts, ...]     # outermost first
    candidates: int = 0
    level_names: tuple[str, ...] = field(default=())

    @property
    def energy_pj(self) -> float:
        return self.mac_energy_pj + sum(lv.energy_pj for lv in self.levels)

    def level(self, name: str) -> LevelCounts:
        return next(lv for lv in self.levels if lv.name == name)


def _walk_above(arch: LoopArch, i: int):
    """Loops above level i's storage, innermost first: (level, temporal|spatial, dim)."""
    for j in range(i - 1, -1, -1):
        for d in DIMS:
            yield j, SP, d
        for d in arch.stores[j].temporal.permutation or "".join(DIMS):
            yield j, T, d


def _fills(arch: LoopArch, p: Problem, f: np.ndarray, ext: np.ndarray, i: int, space: str) -> np.ndarray:
    """Per-instance fills of a data space at level i: tile x the visits that change it."""
    tile = tile_words(ext[:, i], space, p).astype(np.float64)
    inner = ext[:, i].astype(np.float64).copy()        # extent of each dim inside the current loop
    found = np.zeros(len(f), dtype=bool)
    reused = np.zeros(len(f), dtype=bool)       # an irrelevant loop turned inside the first relevant one
    fills = tile.copy()
    relevant = RELEVANT[space]
    for j, kind, d in _walk_above(arch, i):
        factor = f[:, j, kind, D[d]].astype(np.float64)
        if kind == T:
            first = ~found & (factor > 1) & (d in relevant)
            if first.any():
                frac = np.ones(len(f))
                if d in SLIDING.get(space, {}):   # as Timeloop: only a window moved by the innermost loop slides
                    partner, coef, other = SLIDING[space][d]
                    extent = (inner[:, D[d]] - 1) * getattr(p, coef) + (inner[:, D[partner]] - 1) * getattr(p, other) + 1
                    step = inner[:, D[d]] * getattr(p, coef)
                    frac = np.where(reused, 1.0, np.minimum(step, extent) / extent)
                fills = np.where(first, tile * (1 + (factor - 1) * frac), fills)
            fills = np.where(found, fills * factor, fills)
            reused |= ~found & ~first & (factor > 1)
            found |= first
        inner[:, D[d]] *= factor
    return fills


def _spatial(f: np.ndarray, levels: range, dims) -> np.ndarray:
    idx = [D[d] for d in dims]
    out = np.ones(len(f), dtype=np.float64)
    for j in levels:
        out *= np.prod(f[:, j, SP][:, idx], axis=1)
    return out


def evaluate(arch: LoopArch, p: Problem, f: np.ndarray, sparsity: Sparsity | None = None) -> dict:
    """Cycles, energy and per-level counts of every candidate (arrays over candidates)."""
    s = sparsity or Sparsity()
    n_levels = len(arch.stores)
    ext = inner_extents(f)
    temporal = np.prod(f[:, :, T, :].astype(np.float64), axis=(1, 2))
    used = [_spatial(f, range(i), DIMS) for i in range(n_levels + 1)]          # instances used below level i
    counts = {name: {} for name in ("reads", "fills", "updates")}
    for space in DATA_SPACES:
        keepers = [i for i, st in enumerate(arch.stores) if space in st.keeps]
        relevant = RELEVANT[space]
        drains = {}
        for k, i in reversed(list(enumerate(keepers))):    # innermost first: a level serves its child's fills
            partition = tile_words(ext[:, i] * np.prod(f[:, :i, T, :], axis=1), space, p)
            visits = _fills(arch, p, f, ext, i, space) if k else np.zeros(len(f))
            if k + 1 < len(keepers):
                child = keepers[k + 1]
                fanin = _spatial(f, range(i, child), relevant)
                down, up = counts["fills"][(child, space)] * fanin, drains.get(child, 0.0) * fanin
            else:
                down = up = temporal * _spatial(f, range(i, n_levels), relevant)
            if space == "Outputs":   # the first touch of a point needs no fill and nothing to accumulate on
                fills, drains[i] = np.maximum(visits - partition, 0.0) if k else visits, visits
                updates, reads = up, down - partition if k + 1 == len(keepers) else down
            else:
                fills, updates, reads = visits, np.zeros(len(f)), down
            counts["fills"][(i, space)], counts["reads"][(i, space)], counts["updates"][(i, space)] = fills, reads, updates
    return _price(arch, p, f, s, counts, used, temporal)


def _price(arch, p, f, s: Sparsity, counts, used, temporal) -> dict:
    """Energy and cycles of the counts; Sparseloop's gating and compression where `s` states them:
    gated weight reads cost the ERT's `gated_read` and still take read bandwidth, gated MACs cost nothing
    and take no cycle, compressed data spaces move only their nonzeros at the outermost level."""
    density = {"Inputs": s.inputs, "Weights": s.weights, "Outputs": s.outputs}
    gate = s.inputs if s.gate_weights_on_inputs else 1.0
    macs = temporal * used[len(arch.stores)]
    compute = np.ceil(temporal * gate) if gate < 1 else temporal
    levels, energy, cycles = [], macs * gate * arch.mac_pj, compute.copy()
    for i, st in enumerate(arch.stores):
        per = {k: {sp: counts[k].get((i, sp), np.zeros(len(f))) for sp in DATA_SPACES} for k in counts}
        for sp in s.compressed if i == 0 else ():
            for k in per:
                per[k][sp] = per[k][sp] * density[sp]
        reads = sum(per["reads"].values())
        writes = sum(per["fills"].values()) + sum(per["updates"].values())
        gated = per["reads"]["Weights"] * (1 - gate) if st.name == s.gate_weights_on_inputs else 0.0
        e = ((reads - gated) * st.read_pj + gated * st.gated_pj + writes * st.write_pj) * used[i]
        per["reads"]["Weights"] = per["reads"]["Weights"] - gated           # what is reported: actual reads
        energy = energy + e
        cycles = np.maximum.reduce([cycles, reads / st.read_bw, writes / st.write_bw])
        levels.append((st.name, used[i], {k: {sp: v * used[i] for sp, v in d.items()} for k, d in per.items()}, e))
    return {"cycles": cycles, "compute_cycles": compute, "energy": energy, "macs": macs * gate,
            "mac_energy": macs * gate * arch.mac_pj, "levels": levels}


def loop_arch(hw: Hardware) -> LoopArch:
    return kinds.of(hw).loop_arch(hw)


def _pick(values: dict, index: int, arch: LoopArch, p: Problem, f: np.ndarray, candidates: int) -> LayerMapping:
    levels = tuple(LevelCounts(name=name, instances=int(used[index]),
                               reads={k: float(v[index]) for k, v in per["reads"].items()},
                               fills={k: float(v[index]) for k, v in per["fills"].items()},
                               updates={k: float(v[index]) for k, v in per["updates"].items()},
                               energy_pj=float(e[index])) for name, used, per, e in values["levels"])
    cycles, compute = float(values["cycles"][index]), float(values["compute_cycles"][index])
    return LayerMapping(problem=p, arch=arch.name, factors=f[index], cycles=cycles, compute_cycles=compute,
                        utilization=float(values["macs"][index]) / (cycles * arch.macs),
                        macs=int(values["macs"][index]), mac_energy_pj=float(values["mac_energy"][index]),
                        levels=levels, candidates=candidates, level_names=tuple(st.name for st in arch.stores))


def best_mapping(hw: Hardware, p: Problem) -> LayerMapping:
    """The mapping with the fewest cycles, then the least energy, of every one the constraints allow."""
    arch = loop_arch(hw)
    f = enumerate_mappings(arch, p)
    values = evaluate(arch, p, f)
    order = np.lexsort((values["energy"], values["cycles"]))
    return _pick(values, int(order[0]), arch, p, f, len(f))


def evaluate_mapping(hw: Hardware, p: Problem, factors: np.ndarray, sparsity: Sparsity | None = None) -> LayerMapping:
    """One mapping's counts (e.g. the dense best mapping run with a layer's measured densities)."""
    arch = loop_arch(hw)
    f = np.asarray(factors, dtype=np.int64)[None]
    return _pick(evaluate(arch, p, f, sparsity), 0, arch, p, f, 1)
