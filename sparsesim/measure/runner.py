"""`sparsesim measure`: time dense and block-sparse kernels per layer shape x block x density."""
from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass, replace
from importlib.util import find_spec
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from .. import trace as trace_mod
from ..atomic import table_path, write_frame
from ..errors import OptionError, SparsesimError, require
from ..workload import block_map, occupancy
from .energy import Meter
from .kernels import ConvShape, LayerState, make_state, reference
from .strategies import STRATEGIES, Strategy, layer_calls, timed_calls, with_total
from .tables import DENSE, FUSED, GATHER_SCATTER
from .timing import time_interleaved

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DEFAULT_SHAPES = (ConvShape(64, 64, 3, 1, 1, 1, 64, 64), ConvShape(32, 32, 3, 1, 1, 1, 96, 96),
                  ConvShape(128, 128, 3, 1, 1, 1, 32, 32), ConvShape(64, 64, 1, 1, 0, 1, 64, 64))
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 3e-2}
SMOKE_CHANNELS, SMOKE_SIDE = 8, 24


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
    kernels: Sequence[str] = (DENSE, GATHER_SCATTER)
    energy: bool = False       # NVML energy over a loop of each kernel (CUDA only)
    energy_s: float = 0.5      # each energy loop runs at least this long
    idle_s: float = 2.0        # the idle-power window, GPU idle, before the first case
    budget_s: float | None = None   # start no case after this many seconds (what was measured is kept)
    smoke: bool = False        # every shape shrunk to <= 8 channels and 24 x 24 (a plan's quick check)
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
        unknown = [k for k in self.kernels if k not in STRATEGIES]
        require(bool(self.kernels) and not unknown, "kernels",
                f"must be among {', '.join(STRATEGIES)}, got {', '.join(unknown) or 'none'}")
        cuda = self.device.startswith("cuda")
        require(cuda or not any(STRATEGIES[k].cuda_only for k in self.kernels), "kernels",
                "fused runs on --device cuda only (on a CPU Triton has just its interpreter, far too slow to time)")
        require(FUSED not in self.kernels or find_spec("triton") is not None, "kernels",
                "fused needs Triton: pip install 'sparsesim[gpu]' (or triton==3.6.0)")
        require(cuda or not self.energy, "energy", "{energy} reads NVML's GPU energy counter: it needs --device cuda")
        require(self.energy_s > 0 and self.idle_s > 0, ("energy_s", "idle_s"), "{energy_s} and {idle_s} must be > 0")


@dataclass(frozen=True)
class Case:
    layer: str
    shape: ConvShape
    block: int
    source: str            # synthetic | trace
    mask: torch.Tensor     # bool (out_h, out_w)


def device_info(device: str, dtype: str, kernels: Sequence[str] = (), meter: Meter | None = None) -> dict:
    info = {"device": device, "dtype": dtype, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "order": "interleaved",
            "cuda": torch.version.cuda or "", "driver": meter.driver() if meter else ""}
    if FUSED in kernels:
        import triton
        info["triton"] = triton.__version__
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        info.update(device_name=props.name, capability=f"sm_{props.major}{props.minor}")
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
    return [shrink(c) for c in out] if options.smoke else out


def shrink(case: Case) -> Case:
    """The case at smoke size: at most SMOKE_CHANNELS channels, the input cropped to SMOKE_SIDE (the mask
    cropped with the output), every other parameter kept."""
    s = case.shape
    shape = replace(s, cin=min(s.cin, SMOKE_CHANNELS), cout=min(s.cout, SMOKE_CHANNELS),
                    in_h=min(s.in_h, SMOKE_SIDE), in_w=min(s.in_w, SMOKE_SIDE))
    return replace(case, shape=shape, mask=case.mask[:shape.out_h, :shape.out_w].contiguous())


def _check(case: Case, strategy: Strategy, state: LayerState, dtype: str) -> None:
    strategy.prepare(case.shape, state, case.block)
    out = strategy.layer(case.shape, state, case.block)
    ref = reference(case.shape, state, case.block)
    err = float((out.double() - ref).norm() / ref.norm())
    if not err < TOLERANCE[dtype]:
        raise SparsesimError(f"{strategy.name} result differs from dense on {case.layer} B={case.block}: "
                             f"relative error {err:.2e}")


def input_sets(case: Case, options: MeasureOptions) -> list[LayerState]:
    """`rotate` random input sets to time on, and one more to check results on (cases of one shape share
    them: only the mask changes)."""
    dtype = DTYPES[options.dtype]
    return [make_state(case.shape, case.mask, options.device, dtype, options.seed + i)
            for i in (*range(options.rotate), 99)]


EnergyProbe = Callable[[Strategy, Case, list[LayerState], dict], dict]


def measure_case(case: Case, options: MeasureOptions, info: dict, sets: list[LayerState] | None = None,
                 energy: EnergyProbe | None = None) -> list[dict]:
    """Every kernel of the case, their steps timed interleaved (one call of each per repetition, see
    `timing.time_interleaved`), one row per kernel and step."""
    sets = input_sets(case, options) if sets is None else sets
    mask = case.mask.to(options.device)
    for s in sets:
        s.mask = mask
    states, check = sets[:-1], sets[-1]
    shape, block = case.shape, case.block
    hb, wb = block_map(case.mask.numpy()[None], block).shape[1:]
    active, active_px = (int(v[0]) for v in occupancy(case.mask.numpy()[None], block))
    base = {"layer": case.layer, "source": case.source, **asdict(shape), "out_h": shape.out_h, "out_w": shape.out_w,
            "block": block, "active_blocks": active, "total_blocks": hb * wb, "density": active / (hb * wb),
            "active_pixels": active_px, **info}
    groups = {}
    for name in options.kernels:
        strategy = STRATEGIES[name]
        if strategy.sparse:
            _check(case, strategy, check, options.dtype)
        groups.update({(name, step): calls for step, calls in timed_calls(strategy, shape, states, block).items()})
    timed = time_interleaved(groups, options.device, options.warmup, options.repeat)
    rows = []
    for name in options.kernels:
        strategy = STRATEGIES[name]
        timings = with_total(strategy, {step: t for (kernel, step), t in timed.items() if kernel == name})
        joules = energy(strategy, case, states, timings) if energy else {}
        rows += [{**base, "kernel": name, "step": step, **asdict(t), **(joules if step == "total" else {})}
                 for step, t in timings.items()]
    return rows


def energy_probe(meter: Meter, options: MeasureOptions, sync: Callable[[], None]) -> EnergyProbe:
    """Energy of each kernel over a loop of the whole layer, beside its time (columns ENERGY_COLUMNS)."""
    idle_w = meter.idle_power(options.idle_s)

    def probe(strategy: Strategy, case: Case, states: list[LayerState], timings: dict) -> dict:
        per_call = timings["e2e" if strategy.sparse else "total"].median_s
        calls = layer_calls(strategy, case.shape, states, case.block)
        return asdict(meter.loop(calls, sync, per_call, options.energy_s, idle_w))
    return probe


def run_measure(options: MeasureOptions, log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Measure every case (grouped by shape: each shape's inputs are built once), write the table."""
    options.validate()
    if options.device.startswith("cuda"):
        torch.backends.cudnn.allow_tf32 = False      # a fair fp32 baseline
        torch.backends.cuda.matmul.allow_tf32 = False
    out = table_path(options.output)
    todo = cases(options)
    meter = Meter(options.device) if options.energy else None
    info = device_info(options.device, options.dtype, options.kernels, meter)
    start, rows, sets, shape = time.monotonic(), [], None, None
    with torch.inference_mode():
        probe = energy_probe(meter, options, lambda: torch.cuda.synchronize(options.device)) if meter else None
        for i, case in enumerate(tqdm(todo, unit="case", desc="measure", disable=not options.progress)):
            if options.budget_s is not None and time.monotonic() - start > options.budget_s:
                (log or print)(f"measure: time budget of {options.budget_s:.0f} s spent: {i} of {len(todo)} cases measured")
                break
            if case.shape != shape:
                sets, shape = input_sets(case, options), case.shape
            rows += measure_case(case, options, info, sets, probe)
    table = pd.DataFrame(rows)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_frame(out, table)
    return table
