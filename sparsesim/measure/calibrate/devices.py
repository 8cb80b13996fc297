"""The devices `sparsesim calibrate` knows, one registered profile each: the plan of probes, the base
description a new file starts from, the YAML keys its figures go to, and how to open the real device
(its clock, kernels, caches and library versions). Tests hand `run` an `Environment` of their own: a
scripted clock and kernels that do nothing (a fake device), so the CUDA path runs without a GPU."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from ...errors import OptionError
from .clock import QUICK, Budget, Clock, CudaClock, WallClock
from .probes import Plan, cpu_plan, cuda_plan


@dataclass(frozen=True)
class Environment:
    """An opened device: what runs the probes and what the YAML records about it."""
    device: str
    device_name: str
    caches: Mapping[str, int]         # l1, l2 (per core), llc (bytes); a GPU: l2
    threads: int                      # torch CPU threads, pinned for the whole calibration
    versions: Mapping[str, str]       # library -> version (torch, oneDNN or CUDA and cuDNN)
    clock: Clock
    kernels: object                   # .make(probe) -> a call that runs it
    cache_source: str = "sysfs"       # where `caches` came from (written beside the sizes)


@dataclass(frozen=True)
class Profile:
    name: str
    base: str                         # the description a new file starts from (accel_models/<base>.yaml)
    section: str                      # the kind's YAML section
    plan: Callable[..., Plan]
    level_kinds: Mapping[str, str]    # probe level -> the YAML memory level kind it measures
    level_key: str                    # bandwidth_gbps (a CPU's are measured) or sustained_gbps (beside a spec peak)
    overhead: str                     # the Overhead probe whose time is the per-call figure
    overhead_key: str
    open: Callable[[int | None, str], Environment]
    budget: Budget = Budget()
    sustained: bool = True            # write section.sustained_tflops from the reference conv


def _cache_bytes(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([KMG]?)", text.strip())
    return int(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2)] if m else 0


def cpu_caches(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> dict[str, int]:
    """l1 (data), l2 and llc (the largest unified level) from sysfs; {} where it is not readable."""
    found: dict[int, int] = {}
    for index in sorted(root.glob("index*")):
        try:
            level, kind = int((index / "level").read_text()), (index / "type").read_text().strip()
            size = _cache_bytes((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if kind in ("Data", "Unified") and size:
            found[level] = size
    out = {"l1": found.get(1), "l2": found.get(2), "llc": found[max(found)] if len(found) > 2 else None}
    return {k: v for k, v in out.items() if v}


def _open_cpu(threads: int | None, dtype: str) -> Environment:
    import torch

    from ..runner import _cpu_name
    from .kernels import TorchKernels
    if threads is not None:
        torch.set_num_threads(threads)
    config = torch.__config__.show()
    onednn = re.search(r"oneDNN v([\w.]+)", config) or re.search(r"MKL-DNN v([\w.]+)", config)
    return Environment("cpu", _cpu_name(), cpu_caches(), torch.get_num_threads(),
                       {"torch": torch.__version__, "oneDNN": onednn.group(1) if onednn else "unknown"},
                       WallClock(), TorchKernels("cpu", dtype))


def _open_cuda(threads: int | None, dtype: str) -> Environment:
    import torch

    from .kernels import TorchKernels
    if not torch.cuda.is_available():
        raise OptionError("device", "{device} cuda: torch sees no CUDA GPU on this machine")
    torch.backends.cudnn.allow_tf32 = False        # a fair fp32 figure, as `sparsesim measure` times
    torch.backends.cuda.matmul.allow_tf32 = False
    props = torch.cuda.get_device_properties(0)
    return Environment("cuda", props.name, {"l2": int(getattr(props, "L2_cache_size", 0)) or 40 * 2**20},
                       torch.get_num_threads(), {"torch": torch.__version__, "CUDA": torch.version.cuda or "",
                                                 "cuDNN": str(torch.backends.cudnn.version())},
                       CudaClock(lambda: torch.cuda.Event(enable_timing=True)), TorchKernels("cuda", dtype),
                       "torch.cuda.get_device_properties")


PROFILES: dict[str, Profile] = {}


def register(profile: Profile) -> None:
    PROFILES[profile.name] = profile


register(Profile("cpu", "cpu", "cpu", cpu_plan, {"dram": "dram", "llc": "l2", "l2": "buffer"}, "bandwidth_gbps",
                 "step", "op_overhead_us", _open_cpu, Budget(target_s=0.2, min_repeat=3, max_repeat=200)))
register(Profile("cuda", "h200", "gpu", cuda_plan, {"dram": "dram", "l2": "l2"}, "sustained_gbps",
                 "launch", "launch_us", _open_cuda, Budget(target_s=0.03, min_repeat=3, max_repeat=100, warmup=1),
                 sustained=False))


def profile(name: str) -> Profile:
    if name not in PROFILES:
        raise OptionError("device", f"must be one of {', '.join(PROFILES)}, got {name}")
    return PROFILES[name]


def budget(p: Profile, quick: bool) -> Budget:
    return QUICK if quick else p.budget
