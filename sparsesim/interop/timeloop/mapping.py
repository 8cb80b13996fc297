"""sparsesim's mapping of a layer as a Timeloop v0.3 mapping file (what `timeloop-model` evaluates), and
Timeloop's own `*.map.txt` read back as factors, so that either side can evaluate the other's mapping."""
from __future__ import annotations

import re

import numpy as np

from ...cost.mapspace import D, SP, T
from ...errors import SparsesimError
from ...hardware.looparch import DATA_SPACES, DIMS, LoopArch


def mapping_v03(arch: LoopArch, factors: np.ndarray) -> dict:
    """Per level: temporal factors in the constraints' loop order, spatial factors with their X/Y
    split, and what the level keeps (the constraints' bypass)."""
    targets = []
    for i, s in enumerate(arch.stores):
        def factor_text(kind: int) -> str:
            return " ".join(f"{d}={int(factors[i, kind, D[d]])}" for d in DIMS)
        targets.append({"target": s.name, "type": "temporal", "factors": factor_text(T),
                        "permutation": s.temporal.permutation or "".join(DIMS)})
        if s.fanout_x * s.fanout_y > 1:
            order = s.spatial.permutation or "".join(DIMS)
            targets.append({"target": s.name, "type": "spatial", "factors": factor_text(SP),
                            "permutation": order, "split": s.spatial.split})
        targets.append({"target": s.name, "type": "bypass", "keep": list(s.keeps),
                        "bypass": [d for d in DATA_SPACES if d not in s.keeps]})
    return {"mapping": targets}


_LEVEL = re.compile(r"^(\S+) \[")
_LOOP = re.compile(r"for (\w) in \[0:(\d+)\)( \(Spatial-[XY]\))?")


def read_map_txt(text: str, arch: LoopArch) -> np.ndarray:
    """Factors (levels, 2, 7) of a Timeloop `timeloop-mapper.map.txt`."""
    names = [s.name for s in arch.stores]
    f = np.ones((len(names), 2, len(DIMS)), dtype=np.int64)
    level = None
    for line in text.splitlines():
        head = _LEVEL.match(line)
        if head:
            if head.group(1) not in names:
                raise SparsesimError(f"map.txt names level {head.group(1)!r}, not one of {', '.join(names)}")
            level = names.index(head.group(1))
            continue
        loop = _LOOP.search(line)
        if loop and level is not None:
            f[level, SP if loop.group(3) else T, D[loop.group(1)]] *= int(loop.group(2))
    return f


def read_mapping(data: dict, arch: LoopArch, sizes: np.ndarray) -> np.ndarray:
    """Factors (levels, 2, 7) of a Timeloop v0.3 mapping (`mapping:` list of temporal/spatial targets)
    of a problem with these dimension sizes; a factor 0 takes what the others leave, as Timeloop reads it."""
    names = [s.name for s in arch.stores]
    f = np.ones((len(names), 2, len(DIMS)), dtype=np.int64)
    for target in data.get("mapping", []):
        kind = {"temporal": T, "spatial": SP}.get(target.get("type"))
        if kind is None:
            continue
        if target.get("target") not in names:
            raise SparsesimError(f"mapping names level {target.get('target')!r}, not one of {', '.join(names)}")
        for item in str(target.get("factors", "")).split():
            dim, _, value = item.partition("=")
            f[names.index(target["target"]), kind, D[dim]] = int(value)
    for d in range(len(DIMS)):
        zero = f[:, :, d] == 0
        if zero.any():
            f[:, :, d][zero] = sizes[d] // np.prod(np.where(zero, 1, f[:, :, d]))
    return f
