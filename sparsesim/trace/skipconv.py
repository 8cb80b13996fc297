"""Skip-Convolution layers: instrument a model so that its conv layers compute only where gated.

Every Conv2d / ConvTranspose2d is replaced by a `SkipConv` that keeps a reference input and output and
really computes the gated output, so the recorded masks are the ones that produced it:
- skip-conv semantics: the reference is the previous input x_{t-1}, z_t = z_{t-1} + g * (W * (x_t - x_{t-1}));
- delta semantics (--gate delta): the reference x_ref is the input as last propagated, z_t = z_ref + W * d_p
  with d_p the accumulated delta x_t - x_ref at the propagated locations (gates.delta_step).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Iterator

import networkx as nx
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_leaves

from ..errors import OptionError, SparsesimError
from .gates import (ConvLayer, GateConfig, LearnedGate, block_union, delta_step, dilate_mask,
                    effective_threshold, load_learned_gates, residual_gate)
from .format import LayerInfo
from . import row_bands

_SOURCE = "_sparsesim_source"  # attribute tagging tensors with the layers they derive from
LAYER_NAMES = "sparsesim_layer_names"  # a converted model's {module path: layer name in its own format}


@dataclass
class ConvState:
    """A gated layer's temporal state, kept off nn.Module (whose __setattr__ is slow per frame)."""
    gating: bool = True            # False: plain dense conv, state untouched (the quality check)
    dense_step: bool = True        # this step is a reset: compute densely and restart the state
    prev_input: torch.Tensor | None = None    # the reference input (delta semantics: as last propagated)
    owns_input: bool = False                  # prev_input is this layer's own tensor (not the model's x)
    prev_output: torch.Tensor | None = None   # the reference output
    scale: float = math.nan          # activation scale on the last dense frame (gates.activation_scale)
    threshold: float = math.nan      # the effective threshold it set (epsilon x scale when relative)
    mask: torch.Tensor | None = None   # the gate used at the current step
    calls: int = 0
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()


class SkipConv(nn.Module):
    """A conv layer with a Skip-Convolution gate and its two reference buffers."""

    def __init__(self, conv: ConvLayer, name: str, config: GateConfig) -> None:
        super().__init__()
        self.conv, self.name, self.config = conv, name, config
        self.state = ConvState()
        self.learned: LearnedGate | None = None   # set by GatedModel.wrap for --gate learned
        self.channel_mask: torch.Tensor | None = None  # (1, C_out, 1, 1): SSL-style kept output channels

    def _conv_no_bias(self, r: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if isinstance(c, nn.ConvTranspose2d):
            return F.conv_transpose2d(r, c.weight, None, c.stride, c.padding, c.output_padding,
                                      c.groups, c.dilation)
        return c._conv_forward(r, c.weight, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.state
        if not s.gating:
            return self.conv(x)
        s.calls += 1
        if s.calls > 1:
            raise SparsesimError(f"layer {self.name} ran twice in one frame: a gated layer needs "
                                 "one call per frame to keep its temporal state")
        if s.dense_step or s.prev_input is None or s.prev_input.shape != x.shape:
            out, s.mask, reference = self._dense(x)
        else:
            out, s.mask, reference = self._STEPS[self.config.semantics](self, x)
        if self.channel_mask is not None:  # pruned channels are never computed: they stay zero
            out = out * self.channel_mask.to(out)
        s.prev_input, s.prev_output, s.owns_input = reference, out, reference is not x
        s.in_shape, s.out_shape = tuple(x.shape), tuple(out.shape)
        return out

    def _dense(self, x: torch.Tensor):
        """A reset: compute everything, restart the reference, and set the threshold from this input."""
        out = self.conv(x)
        self.state.scale, self.state.threshold = effective_threshold(x, self.conv, self.config,
                                                                     self.config.multiplier(self.name))
        return out, torch.ones((x.shape[0], 1, *out.shape[-2:]), dtype=torch.bool, device=x.device), x

    def _skip_step(self, x: torch.Tensor):
        s = self.state
        residual = x - s.prev_input
        mask = residual_gate(residual, self.conv, self.config, self.learned, s.threshold)
        return self._gated_update(s.prev_output, mask, residual), mask, x

    def _delta_step(self, x: torch.Tensor):
        s = self.state
        # the reference is updated in place once it is a tensor of this layer's own (from its first gated step)
        step = delta_step(x, s.prev_input, s.threshold, in_place=s.owns_input)
        reach = dilate_mask(step.in_mask, self.conv)
        return self._delta_update(step.propagated, reach), block_union(reach, self.config.block), step.reference

    def _delta_update(self, propagated: torch.Tensor, reach: torch.Tensor) -> torch.Tensor:
        """z_ref + W * d_p. W * d_p is exactly zero outside `reach`: the conv runs on the row bands it
        touches where they are few (row_bands), else on the whole map, the sum landing in the fresh conv
        result (the same floats as prev + update: addition commutes)."""
        prev = self.state.prev_output
        if not reach.any():
            return prev
        banded = row_bands.add_conv_rows(self.conv, propagated, reach, prev) if row_bands.banded(self.conv) else None
        return banded if banded is not None else self._conv_no_bias(propagated).add_(prev)

    _STEPS = {"skip-conv": _skip_step, "delta": _delta_step}   # by GateConfig.semantics

    def _gated_update(self, prev: torch.Tensor, mask: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        """z_{t-1} + g * (W * r), with the two uniform masks taken as shortcuts (same result)."""
        if not mask.any():
            return prev  # nothing to recompute: the layer is skipped outright
        update = self._conv_no_bias(residual)
        return prev + update if mask.all() else torch.addcmul(prev, mask, update)

    def layer_info(self, layer_id: int) -> LayerInfo:
        c = self.conv
        transposed = isinstance(c, nn.ConvTranspose2d)
        (_, cin, ih, iw), (_, cout, oh, ow) = self.state.in_shape, self.state.out_shape
        kh, kw = c.kernel_size
        # A transposed conv scatters every input pixel through the kernel; a conv gathers per output.
        macs = (ih * iw * cin * (cout // c.groups) if transposed else oh * ow * cout * (cin // c.groups)) * kh * kw
        pad = c.padding if isinstance(c.padding, tuple) else (-1, -1)  # -1: 'same'/'valid' strings
        return LayerInfo(
            id=layer_id, name=self.name, op="conv_transpose2d" if transposed else "conv2d",
            in_channels=cin, out_channels=cout, kernel_h=kh, kernel_w=kw,
            stride_h=c.stride[0], stride_w=c.stride[1], padding_h=pad[0], padding_w=pad[1],
            dilation_h=c.dilation[0], dilation_w=c.dilation[1], groups=c.groups,
            in_h=ih, in_w=iw, out_h=oh, out_w=ow, dense_macs=macs,
            weight_bytes=sum(p.numel() * p.element_size() for p in c.parameters()),
        )


def instrument(model: nn.Module, config: GateConfig) -> list[SkipConv]:
    """Replace every conv layer of `model` in place by a SkipConv; returns them in module order. Layers are
    named by module path, or as the format a model was converted from names them (its LAYER_NAMES)."""
    gated = []
    names = getattr(model, LAYER_NAMES, {})
    for name, module in list(model.named_modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            parent_name, _, child = name.rpartition(".")
            wrapper = SkipConv(module, names.get(name, name), config)
            setattr(model.get_submodule(parent_name), child, wrapper)
            gated.append(wrapper)
    if not gated:
        raise SparsesimError("the model has no Conv2d/ConvTranspose2d layer to gate")
    return gated


class _DataFlowMode(TorchFunctionMode):
    """Tags every tensor with the set of conv layers it was computed from (one traced frame), and notes
    which layers feed a pixel shuffle (their channels regroup into space)."""

    def __init__(self, flow: "DataFlow") -> None:
        super().__init__()
        self.flow = flow

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in (F.pixel_shuffle, torch.pixel_shuffle):
            factor = args[1] if len(args) > 1 else kwargs.get("upscale_factor")
            for src in getattr(args[0], _SOURCE, frozenset()):
                self.flow.shuffles[src] = int(factor)
        sources = frozenset().union(*(getattr(t, _SOURCE, frozenset())
                                      for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and not hasattr(t, _SOURCE):
                setattr(t, _SOURCE, sources)
        return out


@dataclass
class DataFlow:
    """Layer-to-layer edges seen while one frame ran, and the layers in first-call order."""
    edges: set[tuple[str, str]] = field(default_factory=set)
    order: list[str] = field(default_factory=list)
    shuffles: dict[str, int] = field(default_factory=dict)   # layer -> factor of the pixel shuffle it feeds

    def graph(self, output: torch.Tensor, layers: list[LayerInfo]) -> nx.DiGraph:
        """input -> layers -> output, nodes in data-flow order, each layer carrying its id."""
        rank = {"input": -1, **{name: i for i, name in enumerate(self.order)}}
        graph = nx.DiGraph()
        graph.add_node("input", kind="input")
        for layer in layers:
            graph.add_node(layer.name, kind="layer", layer_id=layer.id, op=layer.op)
        graph.add_node("output", kind="output")
        graph.add_edges_from(sorted(self.edges, key=lambda e: (rank[e[1]], rank[e[0]])))
        for src in sorted(getattr(output, _SOURCE, frozenset()), key=rank.__getitem__):
            graph.add_edge(src, "output")
        return graph


@contextlib.contextmanager
def record_dataflow(layers: list[SkipConv], inputs: list[torch.Tensor]) -> Iterator[DataFlow]:
    """Within the block, follow every tensor's provenance to find which layer feeds which."""
    flow = DataFlow()
    for t in inputs:
        setattr(t, _SOURCE, frozenset({"input"}))

    def pre_hook(module: SkipConv, args):
        flow.order.append(module.name)
        flow.edges.update((src, module.name) for src in getattr(args[0], _SOURCE, frozenset()))

    def post_hook(module: SkipConv, args, out):
        setattr(out, _SOURCE, frozenset({module.name}))

    hooks = [h for layer in layers for h in (layer.register_forward_pre_hook(pre_hook),
                                             layer.register_forward_hook(post_hook))]
    try:
        with _DataFlowMode(flow):
            yield flow
    finally:
        for h in hooks:
            h.remove()


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 1.0) -> float:
    mse = float(torch.mean((a.double() - b.double()) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


@dataclass
class GatedModel:
    """A model whose conv layers are SkipConvs, stepped one frame (or frame pair) at a time."""
    module: nn.Module
    layers: list[SkipConv]
    config: GateConfig

    @classmethod
    def wrap(cls, module: nn.Module, config: GateConfig) -> "GatedModel":
        layers = instrument(module, config)
        if config.kind == "uncertainty":
            if not hasattr(module, "prune"):
                raise OptionError("gate.kind", "{gate.kind} uncertainty needs a model with uncertainty-guided pruning (rife)")
            from .uncertainty import LoadedMasks, UncertaintyPruner
            module.prune = LoadedMasks.load(config.masks) if config.masks else UncertaintyPruner(config.keep)
        unknown = sorted(set(config.multipliers) - {layer.name for layer in layers})
        if unknown:   # a multiplier nothing would read: the gate asked for is not the one traced
            raise OptionError("gate.layer_multipliers", f"name layers the model lacks: {', '.join(unknown[:4])}"
                              f"{' and more' if len(unknown) > 4 else ''}")
        if config.kind == "learned":
            gates = load_learned_gates(config.checkpoint, {layer.name: layer.conv for layer in layers})
            for layer in layers:
                layer.learned = gates[layer.name]
        return cls(module, layers, config)

    def set_gating(self, on: bool) -> None:
        for layer in self.layers:
            layer.state.gating = on
        if hasattr(self.module, "prune"):  # the dense pass runs without spatial pruning
            if on and getattr(self, "_prune", None) is not None:
                self.module.prune, self._prune = self._prune, None
            elif not on:
                self._prune, self.module.prune = self.module.prune, None

    def begin_step(self, step: int, reset: str = "") -> str:
        """Start frame `step`; `reset` forces a dense frame for a reason only the run knows (a scene cut,
        a resumed trace). Returns why the frame is dense ('' when it is gated)."""
        reason = self.config.reset_reason(step) or reset
        dense = bool(reason)
        for layer in self.layers:
            layer.state.dense_step, layer.state.calls, layer.state.mask = dense, 0, None
        prune = getattr(self.module, "prune", None)
        if hasattr(prune, "step"):  # a user's per-step masks follow the step (a resumed or repeated one too)
            prune.step = step
        return reason

    def called(self) -> list[SkipConv]:
        return [layer for layer in self.layers if layer.state.calls]

    def masks(self, order: list[SkipConv]) -> list[np.ndarray]:
        """This step's masks for the given layers, bool (out_h, out_w) each (batch element 0)."""
        missing = [layer.name for layer in order if layer.state.mask is None]
        if missing:
            raise SparsesimError(f"layers did not run at this frame: {', '.join(missing[:4])}")
        regions = getattr(self.module, "last_masks", {})
        return [self._region_mask(layer, regions).cpu().numpy() for layer in order]

    @staticmethod
    def _region_mask(layer: SkipConv, regions: dict[str, torch.Tensor]) -> torch.Tensor:
        """A layer inside a spatially pruned region computes where the region's keep-mask says,
        at the layer's own resolution (a location is on if any pixel it stands for is)."""
        region = next((m for prefix, m in regions.items() if layer.name.startswith(prefix + ".")), None)
        if region is None:
            return layer.state.mask[0, 0]
        h, w = layer.state.mask.shape[-2:]
        return F.adaptive_max_pool2d(region.float(), (h, w))[0, 0] > 0

    def thresholds(self, order: list[SkipConv]) -> list[tuple[float, float]]:
        """(activation scale, effective threshold) of the given layers, as their last dense frame set them."""
        return [(layer.state.scale, layer.state.threshold) for layer in order]

    def reference_bytes(self) -> int:
        """Memory of the reference buffers (previous input and output of every gated layer)."""
        return sum(t.numel() * t.element_size() for layer in self.layers
                   for t in (layer.state.prev_input, layer.state.prev_output) if t is not None)
