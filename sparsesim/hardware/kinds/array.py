"""What every accelerator array has: rows and columns of PEs (the kinds `systolic` and `spatial`)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArrayPart:
    rows: int
    cols: int
    rf_read_words: tuple[tuple[str, float], ...] = ()   # per PE and data type, words/cycle (imported arrays)


def array_fields(r) -> dict:
    a = r.sub("array")
    return dict(rows=a.get("rows", int, positive=True), cols=a.get("cols", int, positive=True))


def describe_array(hw) -> str:
    return f"array {hw.part.rows} x {hw.part.cols}"
