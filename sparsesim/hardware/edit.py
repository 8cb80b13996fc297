"""Setting figures in a hardware YAML file while keeping everything else, comments included.

The descriptions are hand-written with a source comment on every figure (accel_models/README.md); a YAML
library would drop those comments on a round trip (PyYAML does; ruamel.yaml is not a dependency), so
figures are set line by line in the layout the files use: top-level keys, sections of two-space
indented keys, and `memory:` items addressed by their `name`. The result is checked by parsing it back.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import yaml

from .spec import HardwareError

COMMENT_COLUMN = 27


@dataclass(frozen=True)
class Figure:
    """`path`: (key,), (section, key) or ("memory", level name, key); `note`: its source comment."""
    path: tuple[str, ...]
    value: float | int | str | bool | dict
    note: str = ""


def set_figures(text: str, figures: Sequence[Figure]) -> str:
    """`text` with each figure set (replaced where the key exists, added otherwise)."""
    lines = text.splitlines()
    for f in figures:
        lines = _set(lines, f)
    out = "\n".join(lines) + "\n"
    _check(out, figures)
    return out


def _line(indent: int, key: str, f: Figure) -> str:
    head = f"{' ' * indent}{key}: {_scalar(f.value)}"
    return f"{head.ljust(COMMENT_COLUMN - 1)} # {f.note}" if f.note else head


def _scalar(value) -> str:
    if isinstance(value, str):
        value = str(value)          # str subclasses (torch's version) are not plain YAML strings
    elif not isinstance(value, bool) and isinstance(value, (int, float)):
        value = float(value) if isinstance(value, float) else int(value)   # numpy scalars too
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.4e}"
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def _top(line: str) -> bool:
    return bool(line) and not line[0].isspace() and not line.startswith("#")


def _block(lines: list[str], key: str) -> tuple[int, int] | None:
    """(first, end) line indices of a top-level key's block (its own line first)."""
    pattern = re.compile(rf"^{re.escape(key)}:(\s|$)")
    start = next((i for i, line in enumerate(lines) if pattern.match(line)), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if _top(lines[i])), len(lines))
    return start, end


def _key_in(lines: list[str], lo: int, hi: int, indent: int, key: str) -> int | None:
    pattern = re.compile(rf"^ {{{indent}}}{re.escape(key)}:(\s|$)")
    return next((i for i in range(lo, hi) if pattern.match(lines[i])), None)


def _last_content(lines: list[str], lo: int, hi: int) -> int:
    return max((i for i in range(lo, hi) if lines[i].strip() and not lines[i].lstrip().startswith("#")), default=lo)


def _put(lines: list[str], lo: int, hi: int, indent: int, key: str, f: Figure) -> list[str]:
    found = _key_in(lines, lo, hi, indent, key)
    if found is not None:
        return [*lines[:found], _line(indent, key, f), *lines[found + 1:]]
    at = _last_content(lines, lo, hi) + 1
    return [*lines[:at], _line(indent, key, f), *lines[at:]]


def _set(lines: list[str], f: Figure) -> list[str]:
    if len(f.path) == 1:
        block = _block(lines, f.path[0])
        if block is None:
            return [*lines, _line(0, f.path[0], f)]
        return [*lines[:block[0]], _line(0, f.path[0], f), *lines[block[0] + 1:]]
    if len(f.path) == 2:
        block = _block(lines, f.path[0])
        if block is None:
            return [*lines, f"{f.path[0]}:", _line(2, f.path[1], f)]
        return _put(lines, block[0] + 1, block[1], 2, f.path[1], f)
    section, name, key = f.path
    block = _block(lines, section)
    item = re.compile(rf"^(\s*)- name: {re.escape(name)}\s*(#.*)?$")
    start = next((i for i in range(*block) if item.match(lines[i])), None) if block else None
    if start is None:
        raise HardwareError(f"no {section} item named {name!r} to set {key} in")
    dash = len(item.match(lines[start]).group(1))
    end = next((i for i in range(start + 1, block[1]) if re.match(rf"^ {{0,{dash}}}\S", lines[i])), block[1])
    return _put(lines, start + 1, end, dash + 2, key, f)


def _check(text: str, figures: Sequence[Figure]) -> None:
    data = yaml.safe_load(text)
    for f in figures:
        node = data
        for part in f.path[:-1]:
            node = next((x for x in node if x.get("name") == part), None) if isinstance(node, list) else node.get(part)
        got = node.get(f.path[-1]) if isinstance(node, dict) else None
        if got != f.value and not (isinstance(f.value, float) and got is not None
                                   and abs(float(got) - f.value) <= 1e-3 * abs(f.value)):
            raise HardwareError(f"setting {'.'.join(f.path)} did not take (read back {got!r})")
