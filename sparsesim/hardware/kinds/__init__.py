"""The registry of hardware kinds, in the style of the model zoo: `register(Kind)`.

A kind owns everything that differs between GPUs, CPUs, systolic and spatial arrays: the fields of
its YAML section (its `part`), whether its block-sparse kernels are fused, how many launches a layer
costs and what one costs, the bandwidth of its indexed gather/scatter passes, its Eyexam latency
steps down to `t_occupancy`, the simulator that runs it, its default schedule, and how `sparsesim hw
show` describes it. No code outside a kind branches on a kind's name: it asks `of(hw)`.

Latency steps take the layer geometry and the executed work of `sparsesim.workload` (arrays that
broadcast to (L, T, Nb)); the kinds read their attributes and import nothing above this package.
"""
from .base import Kind, get, names, of, padding, register, unregister
from . import gpu, cpu, systolic, spatial  # noqa: E402,F401  (registers the built-in kinds, in this order)

__all__ = ["Kind", "get", "names", "of", "padding", "register", "unregister"]
