"""User-facing errors: each one is printed as a single line by the CLI, never a traceback."""
from __future__ import annotations

from typing import Callable


class SparsesimError(Exception):
    """A problem with the user's input or environment, worded so that they can fix it."""


class VideoError(SparsesimError):
    """The video cannot be found, opened or decoded."""


class ModelError(SparsesimError):
    """Unknown model, missing weights, or a checkpoint that does not fit the model."""


class TraceError(SparsesimError):
    """A trace directory that cannot be written, or read by this version of sparsesim."""


class OptionError(SparsesimError):
    """An option of a stage that is out of range or conflicts with another. It names options by their
    field in the stage's options (`frames`, `gate.block`); the command line renders them as its flags.

        OptionError("frames", "must be >= 1, got 0")                     # 'frames must be >= 1, got 0'
        OptionError(("gate.kind", "gate.checkpoint"), "{gate.kind} learned and {gate.checkpoint} go together")

    Outside the command line a field reads as its path with dashes (`gate-block`, `quality-every`).
    """

    def __init__(self, fields: str | tuple[str, ...], text: str) -> None:
        self.fields = (fields,) if isinstance(fields, str) else tuple(fields)
        self.text = text if "{" + self.fields[0] + "}" in text else "{" + self.fields[0] + "} " + text
        super().__init__(self.render(lambda field: field.replace(".", "-").replace("_", "-")))

    def render(self, name: Callable[[str], str]) -> str:
        """The message with each field named by `name(field)` (the CLI: its flag)."""
        out = self.text
        for field in self.fields:
            out = out.replace("{" + field + "}", name(field))
        return out


def require(ok: bool, fields: str | tuple[str, ...], text: str) -> None:
    """Raise an OptionError unless `ok`."""
    if not ok:
        raise OptionError(fields, text)
