"""Many videos and large sweeps on Ray: local by default, a cluster by address.

`trace_many` traces each video as an independent task on a pool of actors that load each model once;
`sweep` runs the cross product trace x hardware x energy table as tasks and gathers one table, in the
same order (so with the same rows, bit for bit) as a serial run. Tasks are retried when a worker dies;
traces are written atomically and a re-run skips complete ones, so a job survives restarts.
"""
from __future__ import annotations

import glob
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd
from tqdm import tqdm

from . import hardware, models, trace, video, workload
from .atomic import write_frame
from .cost import estimate
from .errors import SparsesimError
from .tracer import TraceOptions, default_output, trace_video

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


def _check_reachable(address: str) -> None:
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SparsesimError(f"--address must be HOST:PORT, ray://HOST:PORT or auto, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise SparsesimError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None


def connect(address: str | None, workers: int) -> None:
    """Join the cluster at `address`, or start Ray on this machine with `workers` CPUs."""
    import ray
    if address:
        _check_reachable(address)  # before anything else: a clear error, fast
    if ray.is_initialized():
        return
    if address:
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
        except Exception as e:  # ray raises several types: connection, timeout, authentication
            hint = (" (the cluster uses token authentication: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH "
                    "to its token)" if "auth" in str(e).lower() else "")
            raise SparsesimError(f"cannot join the Ray cluster at {address}: {str(e).splitlines()[0][:160]}{hint}") from None
    else:
        ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)


class _Tracer:
    """A worker that keeps each model it loads, so a video costs a copy, not a load."""

    def __init__(self, threads: int | None = None) -> None:
        self.models: dict[tuple, models.LoadedModel] = {}
        if threads:  # one CPU per Ray worker: more torch threads would only fight each other
            import torch
            torch.set_num_threads(threads)

    def trace(self, options: TraceOptions) -> dict:
        key = (options.model, options.checkpoint, options.device)
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
    if workers < 1:
        raise SparsesimError(f"--workers must be >= 1, got {workers}")
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


def _estimate_task(trace_path: str, hw_name: str, table_name: str | None, blocks: tuple[int, ...]) -> pd.DataFrame:
    hw = hardware.load(hw_name)
    table = hardware.energy_table(table_name or hw.energy_table)
    wl = workload.from_trace(trace.open(trace_path), blocks)
    rows = estimate(wl, [hw], [table]).rows
    rows.insert(0, "trace", Path(trace_path).name)
    return rows


def sweep(traces: Sequence[str], hw_names: Sequence[str], blocks: Sequence[int],
          energy_tables: Sequence[str] | None = None, thresholds: Sequence[float] | None = None,
          workers: int = 1, address: str | None = None, progress: bool = True) -> pd.DataFrame:
    """The cost model over trace x hardware x energy table (blocks vectorised inside each task)."""
    chosen = [t for t in traces if thresholds is None or
              trace.open(t).meta["gate"].get("threshold") in set(thresholds)]
    if not chosen:
        raise SparsesimError("no trace matches --threshold")
    tasks = [(t, hw, tab, tuple(blocks)) for t in chosen for hw in hw_names for tab in (energy_tables or [None])]
    for name in hw_names:  # fail early and clearly on a bad name, not inside a worker
        hardware.load(name)
    results = _map(_estimate_task, tasks, workers, address, progress)
    return pd.concat(results, ignore_index=True)


def _map(fn: Callable, tasks: list[tuple], workers: int, address: str | None, progress: bool) -> list:
    """fn over tasks, in task order; on Ray when asked, in process otherwise."""
    bar = tqdm(total=len(tasks), unit="task", desc="sweep", disable=not progress)
    with bar:
        if workers == 1 and not address:
            out = []
            for task in tasks:
                out.append(fn(*task))
                bar.update()
            return out
        import ray
        connect(address, workers)
        remote = ray.remote(num_cpus=1, max_retries=3)(fn)
        refs = [remote.remote(*task) for task in tasks]
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            bar.update(len(done))
        return ray.get(refs)
