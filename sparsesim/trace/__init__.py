"""Trace: a real model on a real video, every conv layer gated, every layer's mask per frame on disk.

The on-disk format (reader and writer) is importable without torch:

    import sparsesim.trace
    t = sparsesim.trace.open("traces/carphone_pristine-rife-input-norm-e0.05")

Modules: `format` (the trace directory), `video` (PyAV decode), `models` (the zoo), `gates`
(Skip-Conv gates), `skipconv` (the gated layers), `uncertainty` and `channels` (UGSP- and SSL-style
masks), `tracer` (video -> trace).
"""
from .format import (ACTIVE_PREFIX, SCHEMA_VERSION, LayerInfo, MaskFrame, Trace, TraceWriter, existing_identity,
                     open, pack_mask, read_meta, unpack_mask)
from ..errors import TraceError

__all__ = ["ACTIVE_PREFIX", "LayerInfo", "MaskFrame", "SCHEMA_VERSION", "Trace", "TraceError", "TraceWriter",
           "existing_identity", "open", "pack_mask", "read_meta", "unpack_mask"]
