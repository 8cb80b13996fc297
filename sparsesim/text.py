"""Numbers for people: SI prefixes in tables and descriptions, sizes read from the command line."""
from __future__ import annotations

from .errors import OptionError

_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def si(value: float, unit: str) -> str:
    """3 significant digits with an SI prefix: si(2.5e9, 'B/s') -> '2.5 GB/s'."""
    for factor, prefix in _PREFIXES:
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def parse_size(text: str, field: str = "size") -> tuple[int, int]:
    """'WxH' -> (W, H); errors name the option `field`."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise OptionError(field, f"must look like 176x144, got {text!r}") from None
    if w < 1 or h < 1:
        raise OptionError(field, f"must be positive, got {text!r}")
    return w, h
