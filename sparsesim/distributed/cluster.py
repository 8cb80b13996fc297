"""Ray: join a cluster or start one here, and map a function over tasks in task order."""
from __future__ import annotations

import socket
from typing import Callable

from tqdm import tqdm

from ..errors import OptionError, SparsesimError


def _check_reachable(address: str) -> None:
    if address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise OptionError("address", f"must be HOST:PORT, ray://HOST:PORT or auto, got {address!r}")
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
            raise SparsesimError(f"cannot join the Ray cluster at {address}: {(str(e).splitlines() or [type(e).__name__])[0][:160]}{hint}") from None
    else:
        ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR", log_to_driver=False)


def map_tasks(fn: Callable, tasks: list[tuple], workers: int, address: str | None, progress: bool) -> list:
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
