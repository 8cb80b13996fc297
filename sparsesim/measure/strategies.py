"""The kernels `sparsesim measure` times, one registered strategy each (named as the cost model names them).

A strategy stages its steps on each rotating input set (so every step is timed on its own inputs), runs
the whole layer in one call (the `e2e` row, the correctness check, the energy loop) and says where it runs:
- `dense`: cuDNN/oneDNN `conv2d` over the whole map (one `total` row);
- `gather-scatter` (SBNet): reduce -> gather -> conv -> scatter, the steps of `kernels`;
- `fused`: the gate's reduction to a block list, then one Triton kernel (`fused_triton`) that reads x_t
  and x_{t-1} in place and adds W * (x_t - x_{t-1}) to the output state on the active blocks. CUDA only:
  on a CPU Triton has just its interpreter, which the tests use and which is far too slow to time.
A sparse strategy's `total` is the sum of its steps' medians (p10 and p90 likewise).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .kernels import (ConvShape, LayerState, block_list_step, block_sparse, block_thresholds, conv_step, dense_conv,
                      gather_step, reduce_step, scatter_step)
from .tables import DENSE, FUSED, GATHER_SCATTER
from .timing import Timing

Calls = list[Callable[[], object]]


@dataclass(frozen=True)
class Strategy:
    name: str
    steps: tuple[str, ...]                                                 # what `stage` times, in order
    stage: Callable[[ConvShape, list[LayerState], int], dict[str, Calls]]   # step -> one call per input set
    layer: Callable[[ConvShape, LayerState, int], torch.Tensor]            # the whole layer in one call
    prepare: Callable[[ConvShape, LayerState, int], None]                  # untimed, per case: fresh state
    sparse: bool = True
    cuda_only: bool = False


def _nothing(shape: ConvShape, s: LayerState, block: int) -> None:
    return None


def _dense_layer(shape: ConvShape, s: LayerState, block: int) -> torch.Tensor:
    return dense_conv(shape, s.x, s.weight, s.bias)


def _dense_stage(shape: ConvShape, states: list[LayerState], block: int) -> dict[str, Calls]:
    return {"total": [lambda s=s: _dense_layer(shape, s, block) for s in states]}


def _gs_prepare(shape: ConvShape, s: LayerState, block: int) -> None:
    s.z_pad = None     # the scatter's output state starts again from z_{t-1}


def _gs_layer(shape: ConvShape, s: LayerState, block: int) -> torch.Tensor:
    return block_sparse(shape, s, block)


def _gs_stage(shape: ConvShape, states: list[LayerState], block: int) -> dict[str, Calls]:
    staged = []
    for s in states:  # intermediate results, so that each step is timed on its own inputs
        padded, corners = reduce_step(shape, s, block)
        tiles = gather_step(shape, padded, corners, block)
        staged.append((s, padded, corners, tiles, conv_step(shape, tiles, s.weight)))
    return {
        "reduce": [lambda s=s: reduce_step(shape, s, block) for s, *_ in staged],
        "gather": [lambda p=p, c=c: gather_step(shape, p, c, block) for _, p, c, _, _ in staged],
        "conv": [lambda tl=tl, s=s: conv_step(shape, tl, s.weight) for s, _, _, tl, _ in staged],
        "scatter": [lambda s=s, u=u, c=c: scatter_step(shape, s, u, c, block) for s, _, c, _, u in staged],
    }


def _fused_prepare(shape: ConvShape, s: LayerState, block: int) -> None:
    from .fused_triton import gemm_weight
    s.thresholds = block_thresholds(s.mask, block, s.x.dtype)
    if s.w_gemm is None:
        s.w_gemm = gemm_weight(s.weight)
    s.z_fused = s.z_prev.clone()


def _fused_update(shape: ConvShape, s: LayerState, corners: torch.Tensor, block: int) -> torch.Tensor:
    from .fused_triton import fused_update
    return fused_update(s.x, s.x_prev, s.w_gemm, s.z_fused, corners, block, shape.k, shape.stride, shape.padding,
                        shape.dilation)


def _fused_layer(shape: ConvShape, s: LayerState, block: int) -> torch.Tensor:
    return _fused_update(shape, s, block_list_step(shape, s, block), block)


def _fused_stage(shape: ConvShape, states: list[LayerState], block: int) -> dict[str, Calls]:
    corners = [block_list_step(shape, s, block) for s in states]
    return {"reduce": [lambda s=s: block_list_step(shape, s, block) for s in states],
            "conv": [lambda s=s, c=c: _fused_update(shape, s, c, block) for s, c in zip(states, corners)]}


STRATEGIES: dict[str, Strategy] = {}


def register(strategy: Strategy) -> None:
    STRATEGIES[strategy.name] = strategy


register(Strategy(DENSE, ("total",), _dense_stage, _dense_layer, _nothing, sparse=False))
register(Strategy(GATHER_SCATTER, ("reduce", "gather", "conv", "scatter"), _gs_stage, _gs_layer, _gs_prepare))
register(Strategy(FUSED, ("reduce", "conv"), _fused_stage, _fused_layer, _fused_prepare, cuda_only=True))


def timed_calls(strategy: Strategy, shape: ConvShape, states: list[LayerState], block: int) -> dict[str, Calls]:
    """Step name -> one call per input set, states prepared; a sparse strategy also gets `e2e` (the layer
    in one call)."""
    for s in states:
        strategy.prepare(shape, s, block)
    staged = strategy.stage(shape, states, block)
    calls = {step: staged[step] for step in strategy.steps}
    if strategy.sparse:
        calls["e2e"] = [lambda s=s: strategy.layer(shape, s, block) for s in states]
    return calls


def with_total(strategy: Strategy, timings: dict[str, Timing]) -> dict[str, Timing]:
    """A sparse strategy's timings with `total`: the sum of its steps' medians (p10 and p90 likewise)."""
    if not strategy.sparse:
        return timings
    steps = [timings[step] for step in strategy.steps]
    return {**timings, "total": Timing(sum(t.median_s for t in steps), sum(t.p10_s for t in steps),
                                       sum(t.p90_s for t in steps), steps[0].repeats)}


def time_strategy(strategy: Strategy, shape: ConvShape, states: list[LayerState], block: int,
                  timer: Callable[[Calls], Timing]) -> dict[str, Timing]:
    """Step name -> timing, one group after the other (`sparsesim measure` interleaves them instead)."""
    calls = timed_calls(strategy, shape, states, block)
    return with_total(strategy, {step: timer(c) for step, c in calls.items()})


def layer_calls(strategy: Strategy, shape: ConvShape, states: list[LayerState], block: int) -> Calls:
    """The whole layer once per input set (what the energy loop runs)."""
    return [lambda s=s: strategy.layer(shape, s, block) for s in states]


def timed_groups(strategy: Strategy) -> int:
    """How many timed call groups `time_strategy` runs (its steps, and e2e when sparse)."""
    return len(strategy.steps) + strategy.sparse
