"""Reports: verdicts for kernel authors, tables, altair charts, the HTML page and the console views.

- `verdict`: the block-size verdict per layer and hardware (`sparsesim blocks`, `run_blocks`);
- `comparison`: `sparsesim report` (`ReportOptions`, `build`): one self-contained HTML page, summary.md, CSV;
- `charts`, `page`: the altair charts and the page that inlines Vega;
- `validation`: `sparsesim validate` (`run_validate`): errors of the cost model against measurements;
- `console`: what every command prints.
The names below load on first use, so that commands which draw no chart never import altair.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {"ReportOptions": "comparison", "Report": "comparison", "build": "comparison", "BlocksOptions": "verdict",
         "run_blocks": "verdict", "block_verdicts": "verdict", "ValidateOptions": "validation",
         "run_validate": "validation", "write_validation": "validation"}
__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
