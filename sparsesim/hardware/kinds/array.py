"""What every accelerator array has: rows and columns of PEs (the kinds `systolic` and `spatial`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ArrayPart:
    rows: int
    cols: int
    rf_read_words: tuple[tuple[str, float], ...] = ()   # per PE and data type, words/cycle (imported arrays)
    loop_arch: Any = None      # the array as a loop-nest machine with its mapping constraints (imported
                               # from Timeloop with constraints): what sparsesim's mapper maps onto


def array_fields(r) -> dict:
    a = r.sub("array")
    return dict(rows=a.get("rows", int, positive=True), cols=a.get("cols", int, positive=True))


def describe_array(hw) -> str:
    return f"array {hw.part.rows} x {hw.part.cols}"


def array_loop_arch(hw):
    if hw.part.loop_arch is None:
        from ..spec import HardwareError
        raise HardwareError(f"{hw.name} states no mapping constraints: sparsesim's mapper maps onto arrays imported "
                            "from a Timeloop architecture with a `timeloop.constraints` list")
    return hw.part.loop_arch
