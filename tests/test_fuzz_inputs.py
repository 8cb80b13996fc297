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
MINIMUM: dict[str, int] = {}     # kind -> the least number of inputs its tests must try (those that ran)
KINDS = {"trace meta.json", "trace layers.parquet", "trace graph.json", "trace frames.parquet",
         "trace channels.parquet", "trace masks/chunk-*.parquet", "trace manifest.json", "hardware YAML",
         "energy YAML", "Timeloop architecture", "SCALE-Sim topology CSV", "SCALE-Sim cfg", "Timeloop stats",
         "measurement table", "channel scales", "gate checkpoint", "model checkpoint", "masks .npz"}

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


# The commands that read a trace: info and estimate read every damaged copy, one of the others too.
READERS = {
    "info": lambda t, o: ("info", t),
    "estimate": lambda t, o: ("estimate", t, "--hw", "h100", "--block", "4", "-o", o / "est.csv"),
    "blocks": lambda t, o: ("blocks", t, "--hw", "h100", "--block", "4", "-o", o / "blocks.csv"),
    "simulate": lambda t, o: ("simulate", t, "--hw", "tpu-v1", "--block", "8", "--frames", "3", "-q", "-o", o / "s.csv"),
    "export": lambda t, o: ("export", "timeloop", t, "--hw", "eyeriss-timeloop", "--block", "8", "-o", o / "tl"),
}
ALWAYS, SOMETIMES = ("info", "estimate"), ("blocks", "simulate", "export")


def _read(name: str, t: Path, work: Path) -> tuple[Run, Path]:
    out = work / f"out-{name}"
    out.mkdir()
    return cli(*READERS[name](t, out)), out


def _answer(run: Run, work: Path, out: Path) -> str:
    """What the user is told: stdout and every file written, paths made relative to the work folder."""
    files = sorted(p for p in out.rglob("*") if p.is_file()) if run.code == 0 else []
    return (run.out + "".join(f"\n== {p.relative_to(out)}\n{p.read_text(errors='replace')}" for p in files)
            ).replace(str(work), "WORK")


@pytest.fixture(scope="module")
def trace_baseline(traces, tmp_path_factory) -> dict[str, str]:
    """The undamaged trace's answers, read from the same kind of place the damaged copies live."""
    work = tmp_path_factory.mktemp("baseline")
    t = shutil.copytree(traces[0], work / "t")
    answers = {}
    for name in READERS:
        run, out = _read(name, t, work)
        assert run.code == 0, run
        answers[name] = _answer(run, work, out)
    return answers


@pytest.mark.slow   # ~640 damaged traces, each read by three commands: about 40 s on 2 cores
@pytest.mark.parametrize("rel", TRACE_FILES)
def test_damaged_trace_files(traces, trace_baseline, rel):
    kind = "trace " + (rel if not rel.startswith("masks/") else "masks/chunk-*.parquet")

    @fuzz(kind, 80)
    @given(trace_damage(rel), st.sampled_from(SOMETIMES))
    def damaged(case, extra):
        how, damage, forged = case
        COUNTS[kind] += 1
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            t = shutil.copytree(traces[0], work / "t")
            before = (t / rel).read_bytes()
            after = damage(before, (traces[1] / rel).read_bytes())
            (t / rel).unlink()
            if after is not None:
                (t / rel).write_bytes(after)
            if forged:
                manifest.write(t)
            codes = {}
            for name in (*ALWAYS, extra):
                run, out = _read(name, t, work)
                codes[name] = run.code
                result = outcome(kind, Run(run.code, _answer(run, work, out), run.err), None, trace_baseline[name], forged)
                if result == "refused":
                    assert not any(out.iterdir()), f"{how}: {name} left behind {sorted(out.iterdir())}"
                    if not forged:
                        assert rel in run.err or "manifest" in run.err, f"{how}: {name} does not name the file: {run.err}"
            if how == "wrong length" or (after != before and not forged):
                assert codes["estimate"] != 0, f"{how} of {rel}: estimate did not notice"
            if after != before and not forged:   # `sparsesim check` names the damaged file
                check = cli("check", t)    # (another trace's manifest: the files it describes differently)
                named = rel == "manifest.json" and how == "swap" or f"{rel}:" in check.out + check.err
                assert check.code == 2 and named, (how, check)
    damaged()


# ------------------------------------------------------------------------------ hardware, energy YAML

import math  # noqa: E402

import yaml  # noqa: E402

MODELS = REPO / "accel_models"
HARDWARE = sorted(p.name for p in MODELS.glob("*.yaml") if "timeloop:" not in p.read_text())
ENERGY = sorted(p.name for p in (MODELS / "energy").glob("*.yaml"))


def _paths(node, prefix=()) -> list[tuple]:
    """Every key path of a parsed YAML document (mappings and lists), leaves and inner nodes."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    out = []
    for key, child in items:
        out.append(prefix + (key,))
        out.extend(_paths(child, prefix + (key,)))
    return out


def _at(doc, path):
    for key in path[:-1]:
        doc = doc[key]
    return doc


NUMBER_DAMAGE = ("negative", "non-finite")
YAML_DAMAGE = ("wrong type", "missing key", "unknown kind", *NUMBER_DAMAGE, "truncate", "flip", "alias bomb",
               "recursive anchor", "deep nesting")


def _bomb(key: str, depth: int) -> str:
    """Billion laughs: `key` refers to 9**depth copies of one list, by aliases."""
    lines = ["_b0: &b0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"_b{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 9)}]" for i in range(1, depth + 1)]
    return "\n".join(lines) + f"\n{key}: *b{depth}\n"


@st.composite
def yaml_damage(draw, text: str):
    """(how, the damaged text, whether accepting it must give the undamaged file's answer: a negative or
    infinite figure is refused wherever it is read, and can change nothing where it is not)."""
    doc = yaml.safe_load(text)
    how = draw(st.sampled_from(YAML_DAMAGE))
    paths = _paths(doc)
    numbers = [p for p in paths if type(_at(doc, p)[p[-1]]) in (int, float)]
    strings = [p for p in paths if isinstance(_at(doc, p)[p[-1]], str)]
    top = [k for k in doc]
    if how in NUMBER_DAMAGE and numbers:
        path = draw(st.sampled_from(numbers))
        value = -draw(st.floats(1e-9, 1e12)) if how == "negative" else draw(st.sampled_from([math.nan, math.inf, -math.inf]))
        _at(doc, path)[path[-1]] = value
        return how, yaml.safe_dump(doc), True
    if how in ("wrong type", "missing key", "unknown kind") or how in NUMBER_DAMAGE:
        pool = strings if how == "unknown kind" else paths
        path = draw(st.sampled_from(pool))
        parent = _at(doc, path)
        if how == "missing key" and isinstance(parent, dict):
            del parent[path[-1]]
        elif how == "unknown kind":
            parent[path[-1]] = draw(st.text(min_size=1, max_size=12))
        else:
            old = parent[path[-1]]
            parent[path[-1]] = draw(st.sampled_from([v for v in ("text", 3, 2.5, True, None, [1, 2], {"a": 1})
                                                     if type(v) is not type(old)]))
        return how, yaml.safe_dump(doc), False
    if how == "truncate":
        return how, text[:int(len(text) * draw(st.floats(0, 1, exclude_max=True)))], False
    if how == "flip":
        data = _flip(text.encode(), draw(st.lists(st.integers(0, 1 << 16), min_size=1, max_size=3)),
                     draw(st.integers(1, 255)))
        return how, data.decode("latin-1") if draw(st.booleans()) else data, False
    key = draw(st.sampled_from(top))
    if how == "alias bomb":
        return how, text + "\n" + _bomb(key, draw(st.integers(3, 9))), False
    if how == "recursive anchor":
        return how, text + f"\n{key}: &loop [{draw(st.sampled_from(['*loop', '{a: *loop}', '1, *loop']))}]\n", False
    return how, text + f"\n{key}: " + "[" * draw(st.integers(50, 20000)) + "\n", False


def _write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _companions(work: Path) -> None:
    """The tables a description names beside it (a calibrated CPU's conv-efficiency CSV), undamaged."""
    for table in MODELS.glob("*.csv"):
        shutil.copyfile(table, work / table.name)


def _answer_of(write_inputs, content) -> str:
    """`hw show` of the undamaged files, paths made relative to the work folder."""
    with tempfile.TemporaryDirectory() as work:
        run = cli(*write_inputs(Path(work), content))
        assert run.code == 0, run
        return run.out.replace(work, "WORK")


def _yaml_case(kind: str, case, write_inputs, expected: str) -> None:
    how, content, same_or_refused = case
    COUNTS[kind] += 1
    with tempfile.TemporaryDirectory() as work:
        run = cli(*write_inputs(Path(work), content))
        run = Run(run.code, run.out.replace(work, "WORK"), run.err)
        result = outcome(kind, run, None, expected if same_or_refused else run.out)
        assert result != "other answer", f"{how}: accepted with another answer\n{content}"


@pytest.mark.parametrize("name", HARDWARE)
def test_damaged_hardware_yaml(name):
    text = (MODELS / name).read_text()

    def inputs(work: Path, content) -> tuple:
        _companions(work)
        return "hw", "show", _write(work / name, content)
    expected = _answer_of(inputs, text)

    @fuzz("hardware YAML", 45)
    @given(yaml_damage(text))
    def damaged(case):
        _yaml_case("hardware YAML", case, inputs, expected)
    damaged()


@pytest.mark.parametrize("name", ENERGY)
def test_damaged_energy_yaml(name):
    """The damaged table is named (energy_table: PATH) by a copy of a hardware that uses it; `hw show` prices it."""
    text = (MODELS / "energy" / name).read_text()
    hw = next(d for d in (yaml.safe_load((MODELS / h).read_text()) for h in HARDWARE)
              if Path(name).stem in (d["energy_table"], *d.get("energy_tables", ())))

    def inputs(work: Path, content) -> tuple:
        table = _write(work / name, content)
        _companions(work)
        _write(work / "hw.yaml", yaml.safe_dump({**hw, "energy_table": str(table), "energy_tables": []}))
        return "hw", "show", work / "hw.yaml"

    expected = _answer_of(inputs, text)

    @fuzz("energy YAML", 60)
    @given(yaml_damage(text))
    def damaged(case):
        _yaml_case("energy YAML", case, inputs, expected)
    damaged()


TIMELOOP_FILES = ("architecture.yaml", "ERT_summary.yaml", "constraints/eyeriss_like_arch_constraints.yaml",
                  "constraints/eyeriss_like_map_constraints.yaml")


@pytest.mark.parametrize("rel", TIMELOOP_FILES)
def test_damaged_timeloop_architecture(rel):
    """eyeriss-timeloop.yaml imports a Timeloop architecture, Accelergy ERT and constraints: each damaged."""
    source = MODELS / "timeloop" / "eyeriss_like"
    text = (source / rel).read_text()

    def inputs(work: Path, content) -> tuple:
        shutil.copytree(source, work / "timeloop" / "eyeriss_like")
        _write(work / "timeloop" / "eyeriss_like" / rel, content)
        shutil.copy(MODELS / "eyeriss-timeloop.yaml", work / "eyeriss-timeloop.yaml")
        return "hw", "show", work / "eyeriss-timeloop.yaml"

    expected = _answer_of(inputs, text)

    @fuzz("Timeloop architecture", 25)
    @given(yaml_damage(text))
    def damaged(case):
        _yaml_case("Timeloop architecture", case, inputs, expected)
    damaged()


# ------------------------------------------------------------- SCALE-Sim files, Timeloop stats, measurements

SCALESIM = REPO / "benchmarks" / "scalesim"
TOPOLOGY = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
            "a,12,12,3,3,4,8,1,\nb,10,10,3,3,8,8,2,2:4,\n")
HOSTILE_CELLS = st.sampled_from(["-1", "0", "", "x", "1.5", "nan", "inf", "3:4", "4:2", "0:0", "2:0", "1:2:3",
                                 "99999999999", str((1 << 20) + 1), "\x00", "é", ",,,", "\"", "[x]", "= 1"])


@st.composite
def text_damage(draw, text: str, sep: str):
    """Truncation, flipped bytes, a hostile cell/value, a dropped or doubled line, of a small text file."""
    how = draw(st.sampled_from(["truncate", "flip", "cell", "drop line", "double line"]))
    lines = text.splitlines(keepends=True)
    if how == "truncate":
        return how, text[:int(len(text) * draw(st.floats(0, 1, exclude_max=True)))]
    if how == "flip":
        data = _flip(text.encode(), draw(st.lists(st.integers(0, 1 << 12), min_size=1, max_size=3)), draw(st.integers(1, 255)))
        return how, data
    i = draw(st.integers(0, len(lines) - 1))
    if how == "drop line":
        return how, "".join(lines[:i] + lines[i + 1:])
    if how == "double line":
        return how, "".join(lines[:i + 1] + lines[i:])
    cells = lines[i].rstrip("\n").split(sep)
    j = draw(st.integers(0, len(cells) - 1))
    if sep == ":" and len(cells) == 1:   # a cfg line without a value: replace it whole
        cells = [draw(HOSTILE_CELLS)]
    else:
        cells[j] = (" " if sep == ":" and j else "") + draw(HOSTILE_CELLS)
    return how, "".join(lines[:i] + [sep.join(cells) + "\n"] + lines[i + 1:])


def _simulate(work: Path, topology, config) -> tuple:
    _write(work / "t.csv", topology)
    _write(work / "s.cfg", config)
    (work / "out").mkdir()
    return "simulate", "--topology", work / "t.csv", "--config", work / "s.cfg", "-q", "-o", work / "out" / "r.csv"


def _file_case(kind: str, argv_of, outdir_of) -> None:
    COUNTS[kind] += 1
    with tempfile.TemporaryDirectory() as work:
        run = cli(*argv_of(Path(work)))
        if run.code != 0:
            assert_refused(run, outdir_of(Path(work)))
        OUTCOMES[(kind, "refused" if run.code else "accepted", False)] += 1
        return run.code != 0


def test_damaged_scalesim_topology():
    config = (SCALESIM / "a32_ws_user10_sparse.cfg").read_text()

    @fuzz("SCALE-Sim topology CSV", 120)
    @given(text_damage(TOPOLOGY, ","))
    def damaged(case):
        _file_case("SCALE-Sim topology CSV", lambda w: _simulate(w, case[1], config), lambda w: w / "out")
    damaged()


@pytest.mark.parametrize("name", ["a32_ws_user10_sparse.cfg", "a32_os_calc.cfg"])
def test_damaged_scalesim_config(name):
    config = (SCALESIM / name).read_text()

    @fuzz("SCALE-Sim cfg", 60)
    @given(text_damage(config, ":"))
    def damaged(case):
        _file_case("SCALE-Sim cfg", lambda w: _simulate(w, TOPOLOGY, case[1]), lambda w: w / "out")
    damaged()


STATS = REPO / "tests" / "data" / "timeloop-reference"


@pytest.mark.parametrize("name", sorted(p.name for p in STATS.glob("*.stats.txt")))
def test_damaged_timeloop_stats(name):
    """Timeloop's stats.txt is read by `estimate --engine timeloop` after timeloop-mapper runs (not installed
    here): its reader is called directly; it returns the stats or raises one SparsesimError line."""
    from sparsesim.errors import SparsesimError
    from sparsesim.interop.timeloop.stats import parse_stats
    text = (STATS / name).read_text()

    @fuzz("Timeloop stats", 60)
    @given(text_damage(text, ":"))
    def damaged(case):
        COUNTS["Timeloop stats"] += 1
        with tempfile.TemporaryDirectory() as work:
            path = _write(Path(work) / name, case[1])
            try:
                stats = parse_stats(path)
                stats.to_frame()
                result = "accepted"
            except SparsesimError as e:
                assert len(str(e).splitlines()) == 1 and str(e).strip(), repr(str(e))
                result = "refused"
            OUTCOMES[("Timeloop stats", result, False)] += 1
    damaged()


MEASURED = REPO / "traces" / "measurements" / "cpu-mtcnn.parquet"


@st.composite
def table_damage(draw):
    import numpy as np
    import pandas as pd
    data = MEASURED.read_bytes()
    how = draw(st.sampled_from(["truncate", "flip", "wrong types", "hostile values", "drop column", "as csv"]))
    if how == "truncate":
        return how, data[:int(len(data) * draw(st.floats(0, 1, exclude_max=True)))], ".parquet"
    if how == "flip":
        return how, _flip(data, draw(st.lists(st.integers(0, 1 << 20), min_size=1, max_size=3)), draw(st.integers(1, 255))), ".parquet"
    if how == "wrong types":
        return how, _wrong_type(data, draw(st.integers(0, 40)), draw(st.sampled_from([pa.string(), pa.float64(), pa.bool_(), pa.binary()]))), ".parquet"
    m = pd.read_parquet(pa.BufferReader(data))
    numeric = how == "hostile values"
    column = draw(st.sampled_from([c for c in m.columns if not numeric or pd.api.types.is_numeric_dtype(m[c])]))
    if how == "drop column":
        m = m.drop(columns=[column])
    elif how == "hostile values":
        rows = draw(st.lists(st.integers(0, len(m) - 1), min_size=1, max_size=5))
        value = draw(st.sampled_from([-1, -1e-6, np.nan, np.inf, -np.inf, 0, 10**12]))
        m[column] = m[column].astype(object)
        m.loc[rows, column] = value
        with contextlib.suppress(ValueError, TypeError):   # a numeric column stays numeric
            m[column] = pd.to_numeric(m[column])
        from sparsesim.measure import validate
        if column in (*validate.COUNTS, *validate.TIMES) and not (np.isfinite(value) and value >= 0):
            how = "read figure negative or not finite"
    if how == "as csv":
        text = m.to_csv(index=False)
        return how, text[:int(len(text) * draw(st.floats(0.05, 1)))], ".csv"
    sink = io.BytesIO()
    m.to_parquet(sink, index=False)
    return how, sink.getvalue(), ".parquet"


def test_damaged_measurement_tables():
    def argv(work: Path, case) -> tuple:
        table = _write(work / f"m{case[2]}", case[1])
        return "validate", table, "--hw", "cpu", "-o", work / "out"

    @fuzz("measurement table", 80)
    @given(table_damage())
    def damaged(case):
        refused = _file_case("measurement table", lambda w: argv(w, case), lambda w: w / "out" if (w / "out").exists() else None)
        assert refused or case[0] != "read figure negative or not finite", "a negative or infinite time was validated"
    damaged()


# ------------------------------------------------------- masks .npz, channel scales, gate checkpoints

def _saved(obj, suffix: str) -> bytes:
    import numpy as np
    import torch
    sink = io.BytesIO()
    if suffix == ".npz":
        np.savez(sink, **obj)
    else:
        torch.save(obj, sink)
    return sink.getvalue()


@st.composite
def array_file_damage(draw, base: dict, suffix: str):
    """A dict of arrays saved as .npz or torch .pt, damaged as bytes or as arrays: a key dropped or added,
    a wrong shape, NaN/inf, text or a nested object in place of an array, a different dtype."""
    import numpy as np
    import torch
    how = draw(st.sampled_from(["truncate", "flip", "drop key", "extra key", "wrong shape", "non-finite",
                                "not an array", "dtype", "empty"]))
    if how in ("truncate", "flip"):
        data = _saved(base, suffix)
        if how == "truncate":
            return how, data[:int(len(data) * draw(st.floats(0, 1, exclude_max=True)))]
        return how, _flip(data, draw(st.lists(st.integers(0, 1 << 16), min_size=1, max_size=3)), draw(st.integers(1, 255)))
    obj = dict(base)
    key = draw(st.sampled_from(sorted(obj)))
    as_array = (lambda a: np.asarray(a)) if suffix == ".npz" else (lambda a: torch.as_tensor(np.asarray(a)))
    value = np.asarray(obj[key])
    if how == "drop key":
        del obj[key]
    elif how == "extra key":
        obj[draw(st.sampled_from(["zzz", "conv9", "", "a.b.c"]))] = obj[key]
    elif how == "wrong shape":
        obj[key] = as_array(np.resize(value, draw(st.sampled_from([(0,), (1,), (2, 2), value.shape + (1,)]))))
    elif how == "non-finite":
        v = value.astype(float).copy()
        v.reshape(-1)[draw(st.integers(0, max(v.size - 1, 0)))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        obj[key] = as_array(v)
    elif how == "dtype":
        obj[key] = as_array(value.astype(draw(st.sampled_from([np.int64, np.bool_, np.float16, np.uint8]))))
    elif how == "empty":
        obj = {}
    else:
        obj[key] = np.array(["text"]) if suffix == ".npz" else draw(st.sampled_from(["text", 3, [1, 2], {"a": 1}]))
    return how, _saved(obj, suffix)


@pytest.fixture(scope="module")
def pnet_layers(traces) -> list[dict]:
    return pq.read_table(traces[0] / "layers.parquet").to_pylist()


def _trace_case(kind: str, traces, flag: str, name: str, content: bytes, *gate: str, count: bool = True) -> Run:
    """`sparsesim trace` of the fuzz video with a damaged FILE: refused in one line with no trace written,
    or traced completely."""
    COUNTS[kind] += count
    with tempfile.TemporaryDirectory() as work:
        path = _write(Path(work) / name, content)
        out = Path(work) / "out"
        out.mkdir()
        run = cli("trace", traces[0].parent / "v.mp4", "--model", "mtcnn-pnet", "--frames", "2", *gate, flag, path,
                  "-o", out / "t", "-q")
        if run.code != 0:
            assert_refused(run)
            left = sorted(p.name for p in out.iterdir() if not p.name.endswith(".lock"))
            assert not left, f"left behind: {left}"
        OUTCOMES[(kind, "refused" if run.code else "accepted", False)] += count
    return run


@pytest.mark.parametrize("suffix", [".pt", ".npz"])
def test_damaged_channel_scales(traces, pnet_layers, suffix):
    import numpy as np
    import torch
    base = {layer["name"]: np.linspace(1.0, 2.0, layer["out_channels"]) for layer in pnet_layers}
    if suffix == ".pt":
        base = {k: torch.from_numpy(v) for k, v in base.items()}
    undamaged = _trace_case("channel scales", traces, "--channel-scales", f"s{suffix}", _saved(base, suffix),
                            "--prune", "0.5", count=False)
    assert undamaged.code == 0, undamaged.err

    @fuzz("channel scales", 40)
    @given(array_file_damage(base, suffix))
    def damaged(case):
        _trace_case("channel scales", traces, "--channel-scales", f"s{suffix}", case[1], "--prune", "0.5")
    damaged()


def test_damaged_gate_checkpoints(traces, pnet_layers):
    import numpy as np
    base = {}
    for layer in pnet_layers:
        base[f"{layer['name']}.weight"] = np.full((1, layer["in_channels"], layer["kernel_h"], layer["kernel_w"]), 0.1, np.float32)
        base[f"{layer['name']}.bias"] = np.zeros(1, np.float32)
    import torch
    base_t = {k: torch.from_numpy(v) for k, v in base.items()}
    undamaged = _trace_case("gate checkpoint", traces, "--gate-checkpoint", "g.pt", _saved(base_t, ".pt"),
                            "--gate", "learned", count=False)
    assert undamaged.code == 0, undamaged.err

    @fuzz("gate checkpoint", 70)
    @given(array_file_damage(base_t, ".pt"))
    def damaged(case):
        _trace_case("gate checkpoint", traces, "--gate-checkpoint", "g.pt", case[1], "--gate", "learned")
    damaged()


def test_damaged_model_checkpoints(traces):
    """`trace --checkpoint F.pt`: the model's own weights, damaged."""
    import torch
    from sparsesim.trace import models
    base = {k: v.clone() for k, v in models.load("mtcnn-pnet").module.state_dict().items()}
    undamaged = _trace_case("model checkpoint", traces, "--checkpoint", "w.pt", _saved(base, ".pt"), count=False)
    assert undamaged.code == 0, undamaged.err

    @fuzz("model checkpoint", 60)
    @given(array_file_damage(base, ".pt"))
    def damaged(case):
        _trace_case("model checkpoint", traces, "--checkpoint", "w.pt", case[1])
    damaged()


def test_damaged_uncertainty_masks():
    """`trace --gate uncertainty --masks F.npz` runs RIFE (too slow to fuzz through the tracer): the masks'
    reader and its per-step use are called directly; a few real runs are in test_uncertainty.py."""
    import numpy as np
    import torch
    from sparsesim.errors import SparsesimError
    from sparsesim.trace.uncertainty import LoadedMasks
    steps, h, w = 3, 64, 64
    base = {f"cells{c}": np.ones((steps, -(-h // c), -(-w // c)), bool) for c in (8, 4, 2)}
    undamaged = LoadedMasks.load(io.BytesIO(_saved(base, ".npz")))
    assert [len(undamaged(torch.zeros(1, 3, h, w), torch.zeros(1, 3, h, w))) for _ in range(steps)] == [3] * steps

    @fuzz("masks .npz", 80)
    @given(array_file_damage(base, ".npz"))
    def damaged(case):
        COUNTS["masks .npz"] += 1
        with tempfile.TemporaryDirectory() as work:
            path = _write(Path(work) / "m.npz", case[1])
            frame = torch.zeros(1, 3, h, w)
            try:
                masks = LoadedMasks.load(path)
                for _ in range(steps):
                    masks(frame, frame)
                result = "accepted"
            except SparsesimError as e:
                assert len(str(e).splitlines()) == 1 and str(e).strip(), repr(str(e))
                result = "refused"
            OUTCOMES[("masks .npz", result, False)] += 1
    damaged()


# --------------------------------------------------------------------------- at the process edge

def test_damaged_inputs_in_real_processes(traces, tmp_path):
    """The same promise outside pytest's process: a mask chunk with one byte flipped (it still parses), a
    hardware file that is an alias bomb, a truncated topology: exit 2, one line on stderr, nothing written."""
    t = shutil.copytree(traces[0], tmp_path / "t")
    chunk = t / "masks" / "chunk-000001.parquet"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 3] ^= 0x10
    chunk.write_bytes(bytes(data))
    hw = _write(tmp_path / "hw.yaml", (MODELS / "tpu-v1.yaml").read_text() + "\n" + _bomb("name", 9))
    topology = _write(tmp_path / "t.csv", TOPOLOGY[: len(TOPOLOGY) - 9])
    out = tmp_path / "out"
    out.mkdir()
    cases = [(("estimate", t, "--hw", "h100", "--block", "4", "-o", out / "e.csv"), "masks/chunk-000001.parquet"),
             (("hw", "show", hw), "hw.yaml"),
             (("simulate", "--topology", topology, "--config", SCALESIM / "a32_os_calc.cfg", "-o", out / "s.csv"), "t.csv")]
    env = {**__import__("os").environ, "PYTHONPATH": str(REPO)}
    for argv, names in cases:
        p = subprocess.run([sys.executable, "-m", "sparsesim.cli", *map(str, argv)], capture_output=True, text=True,
                           env=env, timeout=300)
        assert_refused(Run(p.returncode, p.stdout, p.stderr), out, names)
        assert p.returncode == 2


# ------------------------------------------------------------------------------------------- the count

def test_zz_counts(tmp_path_factory):
    """Runs last (file order): every kind whose test ran tried at least its planned number of damaged
    inputs; with every kind run, at least 2,000 in all. The counts go to fuzz-counts.json (-rP prints them)."""
    ran = {kind: n for kind, n in MINIMUM.items() if COUNTS[kind]}
    short = {kind: (COUNTS[kind], n) for kind, n in ran.items() if COUNTS[kind] < n}
    report = {"tried": dict(sorted(COUNTS.items())), "total": sum(COUNTS.values()),
              "outcomes": {f"{k} | {r} | {'manifest re-recorded' if f else 'as damaged'}": n
                           for (k, r, f), n in sorted(OUTCOMES.items())}}
    path = tmp_path_factory.getbasetemp() / "fuzz-counts.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2), f"\nwritten to {path}")
    assert not short, f"kinds that tried fewer inputs than planned (tried, planned): {short}"
    if set(ran) >= KINDS:       # the whole file ran (not a -k selection)
        assert report["total"] >= 2000
