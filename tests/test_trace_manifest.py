"""The manifest: written last by the writer, checked cheaply on open, fully by `sparsesim check`."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sparsesim import trace
from sparsesim.cli import main
from sparsesim.errors import TraceError
from sparsesim.trace import manifest

from test_trace_format import write_trace

REPO = Path(__file__).resolve().parent.parent
COMMITTED = sorted(p.parent for p in (REPO / "traces").glob("*/meta.json"))


@pytest.fixture
def toy(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    shapes = [(5, 7), (3, 4)]
    masks = [[rng.random(s) < 0.5 for s in shapes] for _ in range(5)]
    write_trace(tmp_path / "t", shapes, masks, chunk_frames=2)
    return tmp_path / "t"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_writer_records_every_file(toy):
    m = json.loads((toy / "manifest.json").read_text())
    on_disk = sorted(p.relative_to(toy).as_posix() for p in toy.rglob("*") if p.is_file() and p.name != "manifest.json")
    assert sorted(m["files"]) == on_disk
    assert {"meta.json", "layers.parquet", "frames.parquet", "masks/chunk-000002.parquet"} <= set(on_disk)
    assert all(e["size"] == (toy / rel).stat().st_size for rel, e in m["files"].items())
    assert manifest.problems(toy) == []


DAMAGE = {
    "truncate": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "delete": lambda p: p.unlink(),
    "flip": lambda p: p.write_bytes(bytes([p.read_bytes()[0] ^ 0xFF]) + p.read_bytes()[1:]),
}


@pytest.mark.parametrize("rel", ["layers.parquet", "frames.parquet", "graph.json", "masks/chunk-000001.parquet"])
@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_damage_is_one_line_exit_2_naming_the_file(capsys, toy, tmp_path, rel, how):
    DAMAGE[how](toy / rel)
    out_file = tmp_path / "est.csv"
    code, out, err = run(capsys, "info", str(toy))
    assert code == 2 and err.count("\n") == 1 and rel in err and "Traceback" not in err
    code, out, err = run(capsys, "check", str(toy))
    assert code == 2 and f"{rel}:" in out
    assert not out_file.exists()


def test_open_check_does_not_hash_mask_chunks(toy):
    """Same size, magic intact, content flipped inside a chunk: only the full check sees it."""
    chunk = toy / "masks" / "chunk-000000.parquet"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x01
    chunk.write_bytes(bytes(data))
    trace.open(toy)                                   # cheap check passes
    assert [rel for rel, _ in manifest.problems(toy)] == ["masks/chunk-000000.parquet"]


def test_an_extra_file_and_an_edited_manifest_are_named(toy):
    shutil.copy(toy / "masks" / "chunk-000000.parquet", toy / "masks" / "chunk-000009.parquet")
    assert manifest.problems(toy) == [("masks/chunk-000009.parquet", "not in the manifest (left over or added)")]
    m = json.loads((toy / "manifest.json").read_text())
    m["files"]["layers.parquet"]["size"] += 1
    (toy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(TraceError, match="manifest.json.*checksum"):
        trace.open(toy)


def test_upgrade_migrates_a_pre_manifest_trace(capsys, toy):
    masks_before = [m.mask for m in trace.open(toy).masks()]
    (toy / "manifest.json").unlink()                  # as written before manifests existed
    with pytest.raises(TraceError, match="check --upgrade"):
        trace.open(toy)
    code, out, _ = run(capsys, "check", "--upgrade", str(toy))
    assert code == 0 and "manifest recorded" in out
    assert all((a == b).all() for a, b in zip(masks_before, (m.mask for m in trace.open(toy).masks())))
    code, out, _ = run(capsys, "check", "--upgrade", str(toy))   # idempotent
    assert code == 0 and "recorded" not in out


def test_upgrade_refuses_a_damaged_trace(capsys, toy):
    (toy / "manifest.json").unlink()
    p = toy / "layers.parquet"
    p.write_bytes(p.read_bytes()[:-10])
    code, out, _ = run(capsys, "check", "--upgrade", str(toy))
    assert code == 2 and "layers.parquet" in out and not (toy / "manifest.json").exists()


def test_every_committed_trace_passes_check(capsys):
    assert len(COMMITTED) >= 13
    code, out, _ = run(capsys, "check", *map(str, COMMITTED))
    assert code == 0, out
    assert out.count(": ok") == len(COMMITTED)


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_check_names_the_file_in_damaged_copies_of_committed_traces(capsys, tmp_path, how):
    for src in COMMITTED[:3]:
        dst = tmp_path / src.name
        shutil.copytree(src, dst)
        victims = [p.relative_to(dst).as_posix() for p in sorted(dst.rglob("*.parquet"))]
        DAMAGE[how](dst / victims[-1])
        code, out, _ = run(capsys, "check", str(dst))
        assert code == 2 and f"{victims[-1]}:" in out
