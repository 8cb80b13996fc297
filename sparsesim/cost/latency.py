"""Latency, Eyexam-style: the bound at each step from the peak down, so a user sees where time goes.

Steps (each at least the previous one):
  t_peak        MACs at the hardware's peak rate
  t_parallel    workload/dataflow parallelism: only as many SMs/cores as there are tiles, only the PE
                rows a kernel height fills (row-stationary), only the array cells a fold fills (systolic)
  t_util        array utilisation: tile quantisation and the tail of the last wave (GPU), fill and
                drain per fold and the first weight load (systolic), the PE columns an output-row pass
                fills (row-stationary)
  t_occupancy   block occupancy: blocks are scheduled whole (n x B^2 pixels), edge blocks included
  t_bandwidth   the conv kernel's roofline: max(compute, bytes at its backing level / bandwidth)
and then the conv as it runs, `t_algorithm`: t_bandwidth where the direct (implicit-GEMM) kernel runs; a GPU
library's faster algorithm where it has one for the conv (Winograd's fewer multiplies can take it below
t_peak, which counts direct MACs), named in `algorithm`. Then t_overhead adds what block sparsity needs besides the conv, step by step as the kernel strategy
bills it (`sparsesim.workload.strategies`): t_mask (the mask reduction and the metadata, streaming),
t_gather and t_scatter (indexed passes) and t_launch (the host's time issuing kernel launches or operator
dispatches, or graph nodes under CUDA graphs), less t_launch_hidden: what of it runs while the device
works (a GPU's host enqueues ahead of its queue; a CPU's operators run in line and hide nothing). The
first four steps are each hardware kind's own (`sparsesim.hardware.kinds`); the roofline and the
overheads are common.
"""
from __future__ import annotations

import numpy as np

from ..hardware import Hardware, kinds
from ..workload import Geometry, Traffic, Work, library_conv, traffic

STEPS = ("t_peak", "t_parallel", "t_util", "t_occupancy", "t_bandwidth")
ALGORITHM = "t_algorithm"     # the conv in the algorithm that runs it (<= t_bandwidth)
OVERHEADS = ("t_mask", "t_gather", "t_scatter", "t_launch")
HIDDEN = "t_launch_hidden"    # subtracted: the launch time the device's own work covers


def latency(geo: Geometry, hw: Hardware, w: Work, block: np.ndarray | None = None,
            moved: Traffic | None = None) -> dict[str, np.ndarray]:
    """Per-step bounds, overhead and total latency in seconds, the kernels launched (`launches`) and the
    conv's algorithm; `block` is B for sparse work; `moved` the configuration's traffic where the caller
    has it already."""
    kind = kinds.of(hw)
    moved = moved or traffic(geo, hw, w)
    steps = kind.latency_steps(geo, hw, w, block)
    steps.append(np.maximum(steps[-1], moved.kernel_bytes / moved.bandwidth))
    steps = list(np.maximum.accumulate(np.broadcast_arrays(*steps)))
    zero = np.zeros_like(steps[-1])
    indexed = _measured_or(kind.gather_bandwidth(hw, block), moved.bandwidth)
    scattered = _measured_or(kind.scatter_bandwidth(hw, block), indexed)   # a scatter-add: 2-3x the gather per byte (CPU)
    graphs = w.kernel is not None and w.kernel.graphs
    conv = kind.conv_choice(geo, hw, w, steps[-1], moved.bandwidth, library_conv(hw, w))
    out = dict(zip(STEPS, steps))
    out[ALGORITHM] = conv.seconds + zero
    masked = kind.mask_bandwidth(hw) or moved.bandwidth   # a CPU's reduction runs below its copy bandwidth
    out.update(t_mask=moved.step_bytes["mask"] / masked + zero,
               t_gather=moved.step_bytes["gather"] / indexed + zero,
               t_scatter=moved.step_bytes["scatter"] / scattered + zero)
    busy = out[ALGORITHM] + out["t_mask"] + out["t_gather"] + out["t_scatter"]
    issued, exposed = kind.launch_s(hw, moved.total_launches, busy, graphs, conv.extra_kernels)
    out.update(t_launch=issued + zero, t_launch_hidden=issued - exposed + zero)
    out["t_overhead"] = sum(out[k] for k in OVERHEADS) - out[HIDDEN]
    out["latency_s"] = out[ALGORITHM] + out["t_overhead"]
    out["launches"] = moved.total_launches + conv.extra_kernels + zero
    out["algorithm"] = np.broadcast_to(conv.algorithm, zero.shape)
    return out


def _measured_or(rate, fallback):
    """A kind's measured rate (scalar or per block), `fallback` where it states none (0)."""
    rate = np.asarray(rate, np.float64)
    return np.where(rate > 0, rate, fallback) if rate.ndim or rate > 0 else fallback
