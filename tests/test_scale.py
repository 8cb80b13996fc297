"""Many videos and sweeps on a real local Ray cluster (two nodes on loopback, started by the test)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from conftest import moving_square
from sparsesim import trace
from sparsesim.trace import video
from sparsesim.cli import main

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).parent / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`ray start --head` plus a second worker node, both on 127.0.0.1, with Ray's token authentication
    (a token of the test's own, shared by both nodes and this driver); stopped at the end."""
    port = free_port()
    token = tmp_path_factory.mktemp("ray") / "auth_token"
    token.write_text(os.urandom(32).hex())
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0"}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)
    env = dict(os.environ)
    common = ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    subprocess.run([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", *common],
                   check=True, capture_output=True, env=env, timeout=120)
    subprocess.run([RAY, "start", f"--address=127.0.0.1:{port}", *common],
                   check=True, capture_output=True, env=env, timeout=120)
    yield f"127.0.0.1:{port}"
    import ray
    ray.shutdown()
    subprocess.run([RAY, "stop", "--force"], capture_output=True, env=env, timeout=120)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    for i in range(3):
        video.encode(root / f"clip{i}.mp4", moving_square(8, seed=i))
    return root


def read_all(root: Path) -> dict[str, list[np.ndarray]]:
    return {p.name: [m.mask for m in trace.open(p).masks()] for p in sorted(root.iterdir()) if p.is_dir()}


def test_parallel_traces_equal_serial_ones_and_reruns_skip(cluster, videos, tmp_path, capsys):
    assert main(["trace", str(videos), "--model", "mtcnn-pnet", "-o", str(tmp_path / "serial"), "-q"]) == 0
    assert main(["trace", str(videos), "--model", "mtcnn-pnet", "-o", str(tmp_path / "ray"), "-q",
                 "--workers", "2", "--address", cluster]) == 0
    serial, parallel = read_all(tmp_path / "serial"), read_all(tmp_path / "ray")
    assert sorted(serial) == sorted(parallel) and len(serial) == 3
    for name in serial:
        for a, b in zip(serial[name], parallel[name], strict=True):
            np.testing.assert_array_equal(a, b)
    index = pd.read_parquet(tmp_path / "ray" / "index.parquet")
    assert len(index) == 3 and index["complete"].all() and index["video"].is_unique
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").rglob("meta.json")}
    assert main(["trace", str(videos), "--model", "mtcnn-pnet", "-o", str(tmp_path / "ray"), "-q",
                 "--workers", "2", "--address", cluster]) == 0
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "ray").rglob("meta.json")} == before  # skipped


def test_sweep_on_the_cluster_equals_serial(cluster, videos, tmp_path):
    assert main(["trace", str(videos), "--model", "mtcnn-pnet", "-o", str(tmp_path / "t"), "-q"]) == 0
    traces = [str(p) for p in sorted((tmp_path / "t").iterdir()) if p.is_dir()]
    args = ["sweep", *traces, "--hw", "h100,eyeriss,cpu", "--block", "1,4", "--energy-table",
            "accelergy-45nm,sze-normalized", "-q"]
    assert main([*args, "-o", str(tmp_path / "serial.parquet")]) == 0
    assert main([*args, "--workers", "2", "--address", cluster, "-o", str(tmp_path / "ray.parquet")]) == 0
    serial, parallel = pd.read_parquet(tmp_path / "serial.parquet"), pd.read_parquet(tmp_path / "ray.parquet")
    assert len(serial) == 3 * 3 * 2 * 5 * 8 * 2  # traces x hw x tables x layers x frames x blocks
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)


def test_own_models_trace_on_the_cluster_as_in_one_process(cluster, videos, tmp_path, monkeypatch):
    """An ONNX file named by a relative path and a factory in a .py file: each worker loads the same model."""
    import own_nets
    from test_own_models import export
    export(own_nets.two_heads(), tmp_path / "two_heads.onnx", ["frame"], ["prob", "aux"])
    monkeypatch.chdir(tmp_path)
    for i, model in enumerate(["onnx:two_heads.onnx", f"python:{Path(__file__).parent / 'own_nets.py'}:two_heads"]):
        base = ["trace", str(videos), "--model", model, "--threshold", "0.05", "-q"]
        assert main([*base, "-o", str(tmp_path / f"serial{i}")]) == 0
        assert main([*base, "-o", str(tmp_path / f"ray{i}"), "--workers", "2", "--address", cluster]) == 0
        serial, parallel = read_all(tmp_path / f"serial{i}"), read_all(tmp_path / f"ray{i}")
        assert sorted(serial) == sorted(parallel) and len(serial) == 3
        for name in serial:
            assert len(serial[name]) == 8 * 5  # frames x layers
            for a, b in zip(serial[name], parallel[name], strict=True):
                np.testing.assert_array_equal(a, b)


def test_a_killed_worker_loses_and_duplicates_nothing(cluster, tmp_path):
    src = tmp_path / "videos"
    src.mkdir()
    for i in range(4):
        video.encode(src / f"long{i}.mp4", moving_square(40, size=(64, 64), seed=i))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sparsesim.cli", "trace", str(src), "--model", "rife", "-o", str(out), "-q",
           "--workers", "2", "--address", cluster, "--quality-every", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim, deadline = None, time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        busy = [p for p in psutil.process_iter(["cmdline"]) if "_Tracer.trace" in " ".join(p.info["cmdline"] or [])]
        victim = busy[0] if busy else None
        time.sleep(0.2)
    assert victim is not None, "no tracing worker seen"
    victim.kill()
    out_text, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    index = pd.read_parquet(out / "index.parquet")
    assert len(index) == 4 and index["video"].is_unique and index["complete"].all()
    for row in index.itertuples():
        t = trace.open(row.trace)
        assert t.complete and t.num_frames == 39 and len(list(t.masks())) == 39 * len(t.layers)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no half-written trace left behind


def test_unreachable_address_gives_a_clear_error(videos, tmp_path, capsys):
    port = free_port()  # nothing listens there
    assert main(["trace", str(videos), "--model", "mtcnn-pnet", "-o", str(tmp_path / "x"), "-q",
                 "--address", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Ray cluster" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()  # the error came before any trace was written
