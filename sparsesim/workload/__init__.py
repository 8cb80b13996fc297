"""The physics both models share: layer geometry and the halo, block maps and occupancy, the work a
configuration executes, and its traffic by memory level and data type (computed once per call).

The block-map exports load on first use, so that the light modules of this package (`topology`,
read on the `simulate --topology` path) do not pull in the trace format, pandas and pyarrow."""
from importlib import import_module

from .geometry import Geometry, halo_tile
from .traffic import (DATA_TYPES, INDEX_BYTES, Traffic, Work, dense_work, inner_accesses, library_conv, sparse_work,
                      traffic)

_BLOCKS = ("BlockWorkload", "block_counts", "block_map", "from_block_maps", "from_masks", "from_trace",
           "input_coverage", "kept_channels", "occupancy")
__all__ = sorted(["DATA_TYPES", "Geometry", "INDEX_BYTES", "Traffic", "Work", "dense_work", "halo_tile",
                  "inner_accesses", "library_conv", "sparse_work", "traffic", *_BLOCKS])


def __getattr__(name: str):
    if name not in _BLOCKS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(".blocks", __name__), name)
