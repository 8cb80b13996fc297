"""The physics both models share: layer geometry and the halo, block maps and occupancy, the work a
configuration executes, and its traffic by memory level and data type (computed once per call)."""
from .blocks import (BlockWorkload, block_counts, block_map, from_block_maps, from_masks, from_trace,
                     input_coverage, kept_channels, occupancy)
from .geometry import Geometry, halo_tile
from .traffic import (DATA_TYPES, INDEX_BYTES, Traffic, Work, dense_work, inner_accesses, library_conv, sparse_work,
                      traffic)

__all__ = ["BlockWorkload", "DATA_TYPES", "Geometry", "INDEX_BYTES", "Traffic", "Work", "block_counts", "block_map",
           "dense_work", "from_block_maps", "from_masks", "from_trace", "halo_tile", "inner_accesses",
           "input_coverage", "kept_channels", "library_conv", "occupancy", "sparse_work", "traffic"]
