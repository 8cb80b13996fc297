"""Hostile inputs, fuzzed: every kind of file sparsesim reads is damaged (truncated, bytes flipped, deleted,
swapped with another's, wrong types, wrong lengths, hostile values) and handed to the command that reads
it. Whatever the damage, the command either refuses with one line on stderr, a non-zero exit, no traceback
and nothing written, or succeeds with exactly the answer of the undamaged input (never a wrong answer
printed as if all were well); only where a damaged file was given a matching manifest (a forged or
re-recorded trace) may a different answer be right.

The CLI runs in-process (`main(argv)`) so that thousands of inputs fit in CI time; an exception escaping
`main` is the traceback a user would see. A few real subprocess runs check the same at the process edge.
Every damaged input tried is counted per kind (COUNTS); the last test asserts the minimum per kind and
writes the counts to fuzz-counts.json under pytest's temporary directory (and prints them: -rP).
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsesim.cli import main
from sparsesim.trace import manifest

from conftest import moving_square

REPO = Path(__file__).resolve().parent.parent
COUNTS: Counter = Counter()      # damaged inputs tried, per file kind
OUTCOMES: Counter = Counter()    # (kind, refused | same answer | other answer, manifest forged)
MINIMUM: dict[str, int] = {}     # kind -> the least number of inputs its test must try

FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])


def fuzz(kind: str, examples: int):
    """A hypothesis test over one file kind: `examples` damaged inputs, counted under `kind`."""
    MINIMUM[kind] = MINIMUM.get(kind, 0) + examples

    def wrap(test):
        return settings(FUZZ, max_examples=examples)(test)
    return wrap


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def cli(*argv: str) -> Run:
    """`sparsesim ARGV` in-process; an exception escaping main fails the test with its traceback."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:              # argparse's --help/--version: not an error path here
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            raise AssertionError(f"traceback from sparsesim {' '.join(map(str, argv))}:\n{traceback.format_exc()}")
    return Run(code, out.getvalue(), err.getvalue())


def assert_refused(run: Run, outdir: Path | None = None, names: str | None = None) -> None:
    """One non-empty line on stderr, no traceback, a non-zero exit, nothing written to `outdir`."""
    lines = run.err.splitlines()
    assert run.code != 0, f"exit 0 on a damaged input\nstdout: {run.out[-2000:]}\nstderr: {run.err}"
    assert len(lines) == 1 and lines[0].strip() and "Traceback" not in run.err, f"stderr: {run.err!r}"
    if names is not None:
        assert names in run.err, f"{names!r} not named in: {run.err!r}"
    if outdir is not None:
        assert not any(outdir.iterdir()), f"left behind: {sorted(p.name for p in outdir.iterdir())}"


def outcome(kind: str, run: Run, outdir: Path | None, expected: str | None, forged: bool = False) -> str:
    """Refused properly, or the undamaged input's answer (`expected`), or (forged only) another answer."""
    if run.code != 0:
        assert_refused(run, outdir)
        result = "refused"
    elif expected is not None and run.out == expected:
        result = "same answer"
    else:
        assert forged, f"a wrong answer printed as if all were well:\n{run.out[-3000:]}\nexpected:\n{(expected or '')[-3000:]}"
        result = "other answer"
    OUTCOMES[(kind, result, forged)] += 1
    return result


# --------------------------------------------------------------------------------------------- traces

def _trace(video: Path, out: Path, threshold: str, prune: str) -> Path:
    code = main(["trace", str(video), "--model", "mtcnn-pnet", "--threshold", threshold, "--prune", prune,
                 "--chunk-frames", "4", "-o", str(out), "-q"])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> tuple[Path, Path]:
    """Two small traces of different runs (3 mask chunks each, with channels.parquet): the one damaged
    and the one whose files are swapped in."""
    from sparsesim.trace import video
    root = tmp_path_factory.mktemp("fuzz-traces")
    video.encode(root / "v.mp4", moving_square(10))
    return (_trace(root / "v.mp4", root / "a", "0.05", "0.25"), _trace(root / "v.mp4", root / "b", "0.1", "0.5"))


TRACE_FILES = ("meta.json", "layers.parquet", "graph.json", "frames.parquet", "channels.parquet",
               "masks/chunk-000000.parquet", "masks/chunk-000002.parquet", "manifest.json")
HOSTILE_VALUES = st.sampled_from([None, -1, 0, 2**63, -1e308, float("nan"), float("inf"), "", "x" * 300,
                                  [], {}, [1, [2, [3]]], {"a": {"b": None}}, True])


def _flip(data: bytes, offsets: list[int], xor: int) -> bytes:
    out = bytearray(data)
    for o in offsets:
        out[o % len(out)] ^= xor
    return bytes(out)


def _json_edit(data: bytes, path: list[int], value, delete: bool) -> bytes:
    """Walk `path` (indices into the keys/items met) and delete or replace what is found there."""
    doc = json.loads(data)
    node = doc
    for step in path:
        children = list(node.keys()) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not children:
            break
        key = children[step % len(children)]
        child = node[key]
        if not isinstance(child, (dict, list)) or step == path[-1]:
            if delete and isinstance(node, dict):
                del node[key]
            else:
                node[key] = value
            break
        node = child
    else:
        doc = value
    return json.dumps(doc).encode()


def _wrong_type(data: bytes, column: int, to: pa.DataType) -> bytes:
    table = pq.read_table(pa.BufferReader(data))
    i = column % table.num_columns
    field = table.schema.field(i)
    try:
        col = table.column(i).cast(to)
    except (pa.ArrowException, ValueError):
        col = pa.array([str(v) for v in table.column(i).to_pylist()], pa.string())
    sink = pa.BufferOutputStream()
    pq.write_table(table.set_column(i, pa.field(field.name, col.type), col), sink)
    return sink.getvalue().to_pybytes()


def _wrong_length(data: bytes, row: int, delta: int) -> bytes:
    table = pq.read_table(pa.BufferReader(data))
    name = "bits" if "bits" in table.column_names else "out_bits"
    bits = table.column(name).to_pylist()
    i = row % len(bits)
    bits[i] = bits[i][:max(0, len(bits[i]) + delta)] if delta < 0 else bits[i] + b"\x5a" * delta
    sink = pa.BufferOutputStream()
    pq.write_table(table.set_column(table.column_names.index(name), name, pa.array(bits, pa.binary())), sink)
    return sink.getvalue().to_pybytes()


@st.composite
def trace_damage(draw, rel: str):
    """(how, a function bytes|None -> bytes|None, whether the manifest is re-recorded after it)."""
    hows = ["truncate", "flip", "delete", "swap"]
    if rel.endswith(".parquet"):
        hows.append("wrong types")
    if rel.startswith("masks/") or rel == "channels.parquet":
        hows.append("wrong length")
    if rel.endswith(".json"):
        hows.append("edit")
    how = draw(st.sampled_from(hows))
    forged = rel != "manifest.json" and draw(st.booleans()) if how in ("truncate", "flip", "swap", "edit") else \
        how in ("wrong types", "wrong length")
    if how == "truncate":
        keep = draw(st.floats(0, 1, exclude_max=True))
        return how, lambda d, o: d[:int(len(d) * keep)], forged
    if how == "flip":
        offsets = draw(st.lists(st.integers(0, 1 << 20), min_size=1, max_size=3))
        xor = draw(st.integers(1, 255))
        return how, lambda d, o: _flip(d, offsets, xor), forged
    if how == "delete":
        return how, lambda d, o: None, False
    if how == "swap":
        return how, lambda d, o: o, forged
    if how == "wrong types":
        column = draw(st.integers(0, 40))
        to = draw(st.sampled_from([pa.string(), pa.float64(), pa.int8(), pa.bool_(), pa.binary()]))
        return how, lambda d, o: _wrong_type(d, column, to), True
    if how == "wrong length":
        row = draw(st.integers(0, 1000))
        delta = draw(st.integers(-3, 3).filter(bool))
        return how, lambda d, o: _wrong_length(d, row, delta), True
    path = draw(st.lists(st.integers(0, 20), min_size=1, max_size=4))
    value, delete = draw(HOSTILE_VALUES), draw(st.booleans())
    return how, lambda d, o: _json_edit(d, path, value, delete), forged


def _commands(t: Path, out: Path) -> list[tuple[str, ...]]:
    return [("info", t), ("estimate", t, "--hw", "h100", "--block", "4", "-o", out / "est.csv")]


def _answer(run: Run, work: Path) -> str:
    """What the user is told: stdout and the table written, paths made relative to the work folder."""
    table = work / "out" / "est.csv"
    return run.out.replace(str(work), "WORK") + (table.read_text() if run.code == 0 and table.exists() else "")


@pytest.fixture(scope="module")
def trace_baseline(traces, tmp_path_factory) -> list[str]:
    """The undamaged trace's answers, read from the same kind of place the damaged copies live."""
    work = tmp_path_factory.mktemp("baseline")
    t = shutil.copytree(traces[0], work / "t")
    (work / "out").mkdir()
    answers = []
    for c in _commands(t, work / "out"):
        run = cli(*c)
        assert run.code == 0, run
        answers.append(_answer(run, work))
    return answers


@pytest.mark.parametrize("rel", TRACE_FILES)
def test_damaged_trace_files(traces, trace_baseline, rel):
    kind = "trace " + (rel if not rel.startswith("masks/") else "masks/chunk-*.parquet")

    @fuzz(kind, 110)
    @given(trace_damage(rel))
    def damaged(case):
        how, damage, forged = case
        COUNTS[kind] += 1
        with tempfile.TemporaryDirectory() as work:
            t = shutil.copytree(traces[0], Path(work) / "t")
            out = Path(work) / "out"
            out.mkdir()
            before = (t / rel).read_bytes()
            after = damage(before, (traces[1] / rel).read_bytes())
            (t / rel).unlink()
            if after is not None:
                (t / rel).write_bytes(after)
            if forged:
                manifest.write(t)
            runs = []
            for command, expected in zip(_commands(t, out), trace_baseline):
                run = cli(*command)
                runs.append(run)
                run = Run(run.code, _answer(run, Path(work)), run.err)
                if outcome(kind, run, None, expected, forged) != "refused":
                    continue
                assert not any(out.iterdir()), f"{how}: left behind {sorted(out.iterdir())}"
                if not forged:
                    assert rel in run.err or "manifest" in run.err, f"{how}: the file is not named: {run.err}"
            if how == "wrong length" or (after != before and not forged):
                assert runs[-1].code != 0, f"{how} of {rel}: estimate did not notice"
    damaged()
