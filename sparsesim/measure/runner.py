"""`sparsesim measure`: time dense and block-sparse kernels per layer shape x block x density."""
from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .. import trace as trace_mod
from ..atomic import table_path, write_frame
from ..errors import OptionError, SparsesimError, require
from ..workload import block_map, occupancy
from .kernels import (ConvShape, LayerState, block_sparse, conv_step, dense_conv, gather_step, make_state,
                      reduce_step, reference, scatter_step)
from .timing import Timing, time_calls

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DEFAULT_SHAPES = (ConvShape(64, 64, 3, 1, 1, 1, 64, 64), ConvShape(32, 32, 3, 1, 1, 1, 96, 96),
                  ConvShape(128, 128, 3, 1, 1, 1, 32, 32), ConvShape(64, 64, 1, 1, 0, 1, 64, 64))
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 3e-2}


@dataclass(frozen=True)
class MeasureOptions:
    device: str = "cpu"
    blocks: Sequence[int] = (2, 4, 8, 16, 32)
    densities: Sequence[float] = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
    trace: str | None = None
    layers: Sequence[str] | None = None
    shapes: Sequence[ConvShape] = ()
    dtype: str = "fp32"
    repeat: int = 15
    warmup: int = 3
    rotate: int = 3
    seed: int = 0
    output: str | None = None
    progress: bool = True

    def validate(self) -> None:
        require(self.dtype in DTYPES, "dtype", f"must be one of {', '.join(DTYPES)}, got {self.dtype}")
        require(self.device == "cpu" or self.device.startswith("cuda"), "device",
                f"must be cpu or cuda, got {self.device}")
        require(not self.device.startswith("cuda") or torch.cuda.is_available(), "device",
                "{device} cuda: torch sees no CUDA GPU on this machine")
        require(self.repeat >= 1, "repeat", f"must be >= 1, got {self.repeat}")
        require(bool(self.blocks) and min(self.blocks) >= 1, "blocks", f"must be integers >= 1, got {list(self.blocks)}")
        require(bool(self.densities) and all(0 <= d <= 1 for d in self.densities), "densities",
                f"must lie in [0, 1], got {list(self.densities)}")


@dataclass(frozen=True)
class Case:
    layer: str
    shape: ConvShape
    block: int
    source: str            # synthetic | trace
    mask: torch.Tensor     # bool (out_h, out_w)


def device_info(device: str, dtype: str) -> dict:
    info = {"device": device, "dtype": dtype, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cuda": torch.version.cuda or "", "driver": ""}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        info.update(device_name=props.name, driver=f"sm_{props.major}{props.minor}")
    else:
        info["device_name"] = _cpu_name()
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def block_mask(shape: ConvShape, block: int, density: float, rng: np.random.Generator) -> torch.Tensor:
    """A mask whose active B x B blocks are a random `density` fraction of all blocks (at least one
    when density > 0)."""
    hb, wb = -(-shape.out_h // block), -(-shape.out_w // block)
    n = int(round(density * hb * wb))
    n = max(n, 1) if density > 0 else 0
    chosen = np.zeros(hb * wb, bool)
    chosen[rng.choice(hb * wb, n, replace=False)] = True
    full = np.kron(chosen.reshape(hb, wb), np.ones((block, block), bool))[:shape.out_h, :shape.out_w]
    return torch.from_numpy(full)


def _trace_cases(options: MeasureOptions, rng: np.random.Generator) -> Iterator[Case]:
    tr = trace_mod.open(options.trace)
    wanted = set(options.layers) if options.layers else None
    seen: set[ConvShape] = set()
    for layer in tr.layers:
        if wanted is not None and layer.name not in wanted:
            continue
        try:
            shape = ConvShape.from_layer(layer)
        except SparsesimError:
            continue  # transposed or grouped layers: no block-sparse kernel here yet
        if shape in seen:
            continue  # one layer per distinct shape: the same kernel, timed once
        seen.add(shape)
        masks = tr.layer_masks(layer.id)
        if len(masks) > 1:  # the frame of median activity, the dense first frame left out
            frame = 1 + int(np.argsort(masks[1:].reshape(len(masks) - 1, -1).mean(axis=1))[(len(masks) - 1) // 2])
            for block in options.blocks:
                yield Case(layer.name, shape, block, "trace", torch.from_numpy(masks[frame]))
        for block in options.blocks:
            for density in options.densities:
                yield Case(layer.name, shape, block, "synthetic", block_mask(shape, block, density, rng))


def cases(options: MeasureOptions) -> list[Case]:
    rng = np.random.default_rng(options.seed)
    out = list(_trace_cases(options, rng)) if options.trace else []
    shapes = options.shapes or (() if options.trace else DEFAULT_SHAPES)
    for shape in shapes:
        label = f"{shape.cin}x{shape.cout} k{shape.k}s{shape.stride} @{shape.in_h}x{shape.in_w}"
        for block in options.blocks:
            for density in options.densities:
                out.append(Case(label, shape, block, "synthetic", block_mask(shape, block, density, rng)))
    if not out:
        raise OptionError("layers", "nothing to measure: the trace has no square ungrouped Conv2d layer matching {layers}")
    return out


def _check(case: Case, state: LayerState, dtype: str) -> None:
    out = block_sparse(case.shape, state, case.block)
    ref = reference(case.shape, state, case.block)
    err = float((out.double() - ref).norm() / ref.norm())
    if not err < TOLERANCE[dtype]:
        raise SparsesimError(f"block-sparse result differs from dense on {case.layer} B={case.block}: "
                             f"relative error {err:.2e}")


def measure_case(case: Case, options: MeasureOptions, info: dict) -> list[dict]:
    dtype = DTYPES[options.dtype]
    states = [make_state(case.shape, case.mask, options.device, dtype, options.seed + i) for i in range(options.rotate)]
    _check(case, make_state(case.shape, case.mask, options.device, dtype, options.seed + 99), options.dtype)
    shape, block = case.shape, case.block
    t = lambda calls: time_calls(calls, options.device, options.warmup, options.repeat)  # noqa: E731
    timings: dict[tuple[str, str], Timing] = {
        ("dense", "total"): t([lambda s=s: dense_conv(shape, s.x, s.weight, s.bias) for s in states])}
    staged = []
    for s in states:  # intermediate results, so that each step is timed on its own inputs
        padded, corners = reduce_step(shape, s, block)
        tiles = gather_step(shape, padded, corners, block)
        staged.append((s, padded, corners, tiles, conv_step(shape, tiles, s.weight)))
    steps = {
        "reduce": [lambda s=s: reduce_step(shape, s, block) for s, *_ in staged],
        "gather": [lambda p=p, c=c: gather_step(shape, p, c, block) for _, p, c, _, _ in staged],
        "conv": [lambda tl=tl, s=s: conv_step(shape, tl, s.weight) for s, _, _, tl, _ in staged],
        "scatter": [lambda s=s, u=u, c=c: scatter_step(shape, s, u, c, block) for s, _, c, _, u in staged],
    }
    for name, calls in steps.items():
        timings[("sparse", name)] = t(calls)
    timings[("sparse", "e2e")] = t([lambda s=s: block_sparse(shape, s, block) for s in states])
    total = sum(timings[("sparse", k)].median_s for k in steps)
    timings[("sparse", "total")] = Timing(total, sum(timings[("sparse", k)].p10_s for k in steps),
                                          sum(timings[("sparse", k)].p90_s for k in steps), options.repeat)
    hb, wb = block_map(case.mask.numpy()[None], block).shape[1:]
    active, active_px = (int(v[0]) for v in occupancy(case.mask.numpy()[None], block))
    base = {"layer": case.layer, "source": case.source, **asdict(shape), "out_h": shape.out_h, "out_w": shape.out_w,
            "block": block, "active_blocks": active, "total_blocks": hb * wb, "density": active / (hb * wb),
            "active_pixels": active_px, **info}
    return [{**base, "kernel": kernel, "step": step, **asdict(timing)} for (kernel, step), timing in timings.items()]


def run_measure(options: MeasureOptions) -> pd.DataFrame:
    options.validate()
    if options.device.startswith("cuda"):
        torch.backends.cudnn.allow_tf32 = False      # a fair fp32 baseline
        torch.backends.cuda.matmul.allow_tf32 = False
    out = table_path(options.output)
    todo = cases(options)
    info = device_info(options.device, options.dtype)
    rows = []
    with torch.inference_mode():
        for case in tqdm(todo, unit="case", desc="measure", disable=not options.progress):
            rows += measure_case(case, options, info)
    table = pd.DataFrame(rows)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_frame(out, table)
    return table
