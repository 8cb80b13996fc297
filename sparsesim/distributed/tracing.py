"""Many videos: each one an independent trace task on a pool of Ray actors that load each model once."""
from __future__ import annotations

import glob
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd
from tqdm import tqdm

from .. import trace
from ..atomic import write_frame
from ..errors import SparsesimError, require
from ..trace import models, video
from ..trace.tracer import TraceOptions, default_output, trace_video
from .cluster import connect

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")


def discover_videos(arg: str) -> list[Path]:
    """A directory (its video files), a glob pattern, or one video."""
    path = Path(arg)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    elif any(c in arg for c in "*?["):
        found = sorted(Path(p) for p in glob.glob(arg) if Path(p).is_file())
    else:
        return [video.resolve_video(arg)]
    if not found:
        raise SparsesimError(f"no video files in {arg}")
    return found


class _Tracer:
    """A worker that keeps each model it loads, so a video costs a copy, not a load."""

    def __init__(self, threads: int | None = None) -> None:
        self.models: dict[tuple, models.LoadedModel] = {}
        if threads:  # one CPU per Ray worker: more torch threads would only fight each other
            import torch
            torch.set_num_threads(threads)

    def trace(self, options: TraceOptions) -> dict:
        key = (options.model, options.checkpoint, options.device, options.preprocess)
        if key not in self.models:
            self.models[key] = models.load(*key)
        result = trace_video(options, self.models[key])
        return {"video": options.video, "trace": str(result.path), "frames": result.frames,
                "complete": result.complete, "skipped": result.skipped}


@dataclass(frozen=True)
class BatchResult:
    index: Path
    table: pd.DataFrame


def _options_for(base: TraceOptions, path: Path, out_root: Path) -> TraceOptions:
    info = video.probe(path)
    name = default_output(info, base).name
    return replace(base, video=str(path), output=str(out_root / name), progress=False, skip_complete=True,
                   handle_signals=False)


def trace_many(videos: Sequence[Path], base: TraceOptions, out_root: Path, workers: int = 1,
               address: str | None = None, progress: bool = True) -> BatchResult:
    """Trace every video (independent tasks) and write `out_root/index.parquet`."""
    base.validate()
    require(workers >= 1, "workers", f"must be >= 1, got {workers}")
    base = replace(base, model=models.canonical(base.model))  # a worker elsewhere loads the same model file
    jobs = [_options_for(base, v, out_root) for v in videos]
    bar = tqdm(total=len(jobs), unit="video", desc="trace", disable=not progress)
    rows = []
    with bar:
        for row in _run_traces(jobs, workers, address):
            rows.append(row)
            bar.update()
            bar.set_postfix(frames=sum(r["frames"] for r in rows))
    table = index_table(jobs)
    path = out_root / "index.parquet"
    write_frame(path, table)
    return BatchResult(path, table)


def _run_traces(jobs: list[TraceOptions], workers: int, address: str | None) -> Iterable[dict]:
    if workers == 1 and not address:
        tracer = _Tracer()
        for job in jobs:
            yield tracer.trace(job)
        return
    import ray
    from ray.util import ActorPool
    connect(address, workers)
    gpus = 1 if jobs and jobs[0].device.startswith("cuda") else 0  # a GPU per worker where the model runs on CUDA
    actor = ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=-1, max_task_retries=-1)(_Tracer)
    pool = ActorPool([actor.remote(threads=1) for _ in range(workers)])
    yield from pool.map_unordered(lambda a, job: a.trace.remote(job), jobs)


def index_table(jobs: Sequence[TraceOptions]) -> pd.DataFrame:
    """One row per video, read back from the traces on disk (what is there is what counts)."""
    rows = []
    for job in jobs:
        path = Path(job.output)
        try:
            t = trace.open(path)
            rows.append({"video": job.video, "trace": str(path), "frames": t.num_frames, "complete": t.complete,
                         "model": t.meta["model"]["name"], "gate": t.meta["gate"]["label"],
                         "video_sha256": t.meta["video"]["sha256"]})
        except SparsesimError:
            rows.append({"video": job.video, "trace": str(path), "frames": 0, "complete": False,
                         "model": job.model, "gate": job.gate.label, "video_sha256": ""})
    return pd.DataFrame(rows)


