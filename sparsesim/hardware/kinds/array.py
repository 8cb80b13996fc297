"""What every accelerator array has: rows and columns of PEs (the kinds `systolic` and `spatial`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ArrayPart:
    rows: int
    cols: int
    rf_read_words: tuple[tuple[str, float], ...] = ()   # per PE and data type, words/cycle (imported arrays)
    loop_arch: Any = None      # the array as a loop-nest machine with its mapping constraints (imported
                               # from Timeloop with constraints): what sparsesim's mapper maps onto
    weight_prefetch: bool = False   # the next layer's weights load while this one computes (where there is room)


def array_fields(r) -> dict:
    a = r.sub("array")
    return dict(rows=a.get("rows", int, positive=True), cols=a.get("cols", int, positive=True),
                weight_prefetch=a.get("weight_prefetch", bool, False))


def describe_array(hw) -> str:
    fetch = "prefetched behind the previous layer" if hw.part.weight_prefetch else "fetched before each layer starts"
    return f"array {hw.part.rows} x {hw.part.cols}, first weights {fetch}"


def first_weights_s(hw, words: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Seconds a layer waits for the weights its first pass needs, over DRAM: zero where the array
    prefetches them behind the previous layer (the analytical model assumes the previous layer is
    long enough to hide them; the simulator checks) or where the layer has nothing to compute."""
    if hw.part.weight_prefetch:
        return np.zeros_like(np.asarray(words, np.float64))
    return np.where(active, words * hw.word_bytes / hw.levels[0].bandwidth, 0.0)


def array_loop_arch(hw):
    if hw.part.loop_arch is None:
        from ..spec import HardwareError
        raise HardwareError(f"{hw.name} states no mapping constraints: sparsesim's mapper maps onto arrays imported "
                            "from a Timeloop architecture with a `timeloop.constraints` list")
    return hw.part.loop_arch
