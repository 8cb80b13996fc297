"""SCALE-Sim's topology CSV (conv or GEMM format), read without the simulator: the layers a trace-free
workload (`--topology FILE.csv`) and SCALE-Sim's own runs (`sparsesim.interop.scalesim`) share.

Conv rows: `Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
Strides[, Sparsity N:M],` with no padding (the IFMAP is given padded), output side ceil((H - R + S) / S).
GEMM rows (`Layer, M, N, K[, Sparsity],`) are read as SCALE-Sim reads them (an M x K map, a 1 x K filter).
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import SparsesimError


class ScaleSimInputError(SparsesimError):
    """A SCALE-Sim topology or config file sparsesim cannot read."""


@dataclass(frozen=True)
class ConvLayer:
    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    filters: int
    stride: int
    sparsity: tuple[int, int] = (1, 1)

    @property
    def ofmap(self) -> tuple[int, int]:
        return (math.ceil((self.ifmap_h - self.filter_h + self.stride) / self.stride),
                math.ceil((self.ifmap_w - self.filter_w + self.stride) / self.stride))

    @property
    def ifmap_touched(self) -> int:
        """Input words the windows read (the rows and columns a stride skips past are never read)."""
        oh, ow = self.ofmap
        return ((oh - 1) * self.stride + self.filter_h) * ((ow - 1) * self.stride + self.filter_w) * self.channels

# No real layer comes near this; a larger figure is a damaged file, and simulating it would exhaust memory.
MAX_DIMENSION = 1 << 20


def _int(path: Path, row: int, column: str, text: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ScaleSimInputError(f"{path}: row {row}: {column} must be an integer, got {text.strip()!r}") from None
    if not 1 <= value <= MAX_DIMENSION:
        raise ScaleSimInputError(f"{path}: row {row}: {column} must be in 1..{MAX_DIMENSION}, got {value}")
    return value


def _ratio(path: Path, row: int, text: str) -> tuple[int, int]:
    parts = text.strip().split(":")
    if len(parts) != 2:
        raise ScaleSimInputError(f"{path}: row {row}: sparsity must be N:M (e.g. 2:4), got {text.strip()!r}")
    n, m = (_int(path, row, "sparsity", p) for p in parts)
    if n > m:
        raise ScaleSimInputError(f"{path}: row {row}: sparsity {n}:{m} keeps more than it has")
    return n, m


CONV_COLUMNS = ("IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels", "Num Filter", "Strides")


def read_topology(path: str | Path) -> list[ConvLayer]:
    """Layers of a SCALE-Sim topology CSV (conv or GEMM format, detected from the header)."""
    path = Path(path)
    try:
        rows = [r for r in csv.reader(path.read_text().splitlines()) if any(c.strip() for c in r)]
    except FileNotFoundError:
        raise ScaleSimInputError(f"topology file not found: {path}") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise ScaleSimInputError(f"{path}: not a CSV file ({e})") from None
    if len(rows) < 2:
        raise ScaleSimInputError(f"{path}: needs a header row and at least one layer")
    header = [c.strip().lower() for c in rows[0] if c.strip()]
    conv = "ifmap height" in header
    layers = []
    for i, raw in enumerate(rows[1:], start=2):
        cells = [c for c in raw]
        while cells and not cells[-1].strip():
            cells.pop()                        # SCALE-Sim rows end with a comma
        need = 8 if conv else 4
        if len(cells) < need:
            raise ScaleSimInputError(f"{path}: row {i}: expected at least {need} columns "
                                     f"({'name, ' + ', '.join(CONV_COLUMNS) if conv else 'name, M, N, K'}), got {len(cells)}")
        ratio = _ratio(path, i, cells[need]) if len(cells) > need else (1, 1)
        name = cells[0].strip()
        if conv:
            v = [_int(path, i, col, cells[j + 1]) for j, col in enumerate(CONV_COLUMNS)]
            layer = ConvLayer(name, *v, sparsity=ratio)
            if layer.filter_h > layer.ifmap_h or layer.filter_w > layer.ifmap_w:
                raise ScaleSimInputError(f"{path}: row {i}: filter {layer.filter_h}x{layer.filter_w} "
                                         f"is larger than the ifmap {layer.ifmap_h}x{layer.ifmap_w}")
        else:
            m, n, k = (_int(path, i, col, cells[j + 1]) for j, col in enumerate("MNK"))
            layer = ConvLayer(name, m, k, 1, k, 1, n, 1, sparsity=ratio)   # SCALE-Sim's GEMM-as-conv
        layers.append(layer)
    return layers
