"""The trace on disk: writer, reader and schema version.

A trace is a directory that numpy/pandas/pyarrow read without sparsesim:

    meta.json             schema version, video, model, gate, software, status
    layers.parquet        one row per instrumented layer (shapes, dense MACs, weight bytes)
    graph.json            layer graph, networkx node-link JSON, nodes in data-flow order
    frames.parquet        one row per traced frame: psnr_db, reset, reset_reason ('cut': the input's
                          mean squared change `input_mse` crossed gate.cut_threshold), and `active:<layer>` fractions;
                          with ground truth (meta.json "ground_truth") also reference_frame and gt_* scores
    thresholds.parquet    relative thresholds only (gate.threshold_mode): rows (frame, layer, scale, threshold),
                          each layer's activation scale and effective threshold as each dense frame set them
    masks/chunk-*.parquet rows (frame, layer, bits): the layer's boolean output mask at frame,
                          np.packbits of the row-major (out_h, out_w) map
    manifest.json         every other file's size and SHA-256, written last (see manifest.py)

The writer builds the trace in a hidden sibling directory `.NAME.partial-PID-X` and swaps it into place
when done (or interrupted, then marked incomplete), so the target never holds a half-written trace. The
swap is one atomic renameat2(RENAME_EXCHANGE) where Linux offers it; elsewhere it is two renames
(target -> `.NAME.old-X/trace`, partial -> target), and whoever next opens or writes the trace puts a
leftover old trace back when a kill fell between them: the target holds the old trace or the new one,
never a mix, never nothing. A killed writer's partial directory is what `trace --resume` continues
(sparsesim/trace/resume.py); other writers remove it.

Test hooks (environment, read by nothing but the kill tests): SPARSESIM_TEST_KILL_AT=POINT SIGKILLs the
writer at that point of the swap ('swap', 'swap-exchanged', 'swap-old-moved');
SPARSESIM_TEST_NO_EXCHANGE=1 takes the two-rename path as if RENAME_EXCHANGE were missing.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import exchange, umask, write_atomic, write_json, write_table
from ..errors import TraceError
from . import manifest as manifest_
from .lock import OutputLock

if TYPE_CHECKING:  # resume.py reads the format: it imports this module, not the other way round
    from .resume import Resumed

SCHEMA = "sparsesim.trace"
SCHEMA_VERSION = 1
ACTIVE_PREFIX = "active:"
MASK_SCHEMA = pa.schema([("frame", pa.int32()), ("layer", pa.int16()), ("bits", pa.binary())])
KILL_AT_ENV, NO_EXCHANGE_ENV = "SPARSESIM_TEST_KILL_AT", "SPARSESIM_TEST_NO_EXCHANGE"


@dataclass(frozen=True)
class LayerInfo:
    id: int
    name: str
    op: str                 # conv2d | conv_transpose2d
    in_channels: int
    out_channels: int
    kernel_h: int
    kernel_w: int
    stride_h: int
    stride_w: int
    padding_h: int
    padding_w: int
    dilation_h: int
    dilation_w: int
    groups: int
    in_h: int
    in_w: int
    out_h: int
    out_w: int
    dense_macs: int
    weight_bytes: int


# The type of each column readers use, per table (ACTIVE_PREFIX: every `active:<layer>` column); a
# column named here of another type, or a required one missing, makes the table damaged.
COLUMNS: dict[str, dict[str, tuple[str, bool]]] = {
    "layers.parquet": {f.name: ("string" if f.type in ("str", str) else "integer", True) for f in fields(LayerInfo)},
    "frames.parquet": {"frame": ("integer", True), "psnr_db": ("floating", False), "reset": ("boolean", False),
                       ACTIVE_PREFIX: ("floating", False)},
    "channels.parquet": {"layer": ("integer", True), "kept_out": ("integer", True), "kept_in": ("integer", True),
                         "out_bits": ("binary", True), "in_bits": ("binary", True)},
}


def _wrong_columns(schema: pa.Schema, columns: dict[str, tuple[str, bool]]) -> str | None:
    """What is wrong with a table's columns, or None. All-null columns pass (psnr of unchecked frames)."""
    missing = [name for name, (_, required) in columns.items() if required and name not in schema.names]
    if missing:
        return f"no column {missing[0]!r}"
    for field in schema:
        key = ACTIVE_PREFIX if field.name.startswith(ACTIVE_PREFIX) else field.name
        kind = columns.get(key, (None,))[0]
        if kind and not (getattr(pa.types, f"is_{kind}")(field.type) or pa.types.is_null(field.type)):
            return f"column {field.name!r} holds {field.type}, expected {kind}"
    return None


@dataclass(frozen=True)
class MaskFrame:
    frame: int
    layer: int
    mask: np.ndarray        # bool (out_h, out_w)


def pack_mask(mask: np.ndarray) -> bytes:
    return np.packbits(mask.reshape(-1)).tobytes()


def unpack_mask(bits: bytes, shape: tuple[int, int]) -> np.ndarray:
    flat = np.unpackbits(np.frombuffer(bits, dtype=np.uint8), count=shape[0] * shape[1])
    return flat.reshape(shape).astype(bool)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_meta(path: Path) -> dict:
    meta_path = path / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise TraceError(f"not a trace: {path} has no meta.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise TraceError(f"not a trace: {meta_path} is not valid JSON") from None
    if meta.get("schema") != SCHEMA:
        raise TraceError(f"not a sparsesim trace: {meta_path} has schema {meta.get('schema')!r}")
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        newer = isinstance(version, int) and version > SCHEMA_VERSION
        hint = "upgrade sparsesim" if newer else "re-run `sparsesim trace` to record it again"
        raise TraceError(f"trace {path} has schema version {version} (meta.json); this sparsesim reads "
                         f"version {SCHEMA_VERSION} ({hint})")
    _check_meta(meta_path, meta)
    return meta


# What readers take from meta.json: (keys, type, required). The writer always records the required ones;
# the others are typed when present (a trace written by a library user may lack the video).
META_FIELDS = ((("complete",), bool, True), (("frames_recorded",), int, True), (("model", "name"), str, True),
               (("gate", "kind"), str, True), (("gate", "label"), str, False), (("status",), str, False),
               (("video", "name"), str, False), (("video", "size"), list, False), (("video", "start"), int, False))


def _check_meta(meta_path: Path, meta: dict) -> None:
    for keys, kind, required in META_FIELDS:
        node: Any = meta
        for key in keys:
            node = node.get(key, ...) if isinstance(node, dict) else ... if node is ... else None
        if node is ... and not required:
            continue
        ok = isinstance(node, kind) and (kind is bool or not isinstance(node, bool))
        if ok and kind is list:
            ok = len(node) == 2 and all(type(v) is int and v > 0 for v in node)
        if not ok or (kind is int and node < 0):
            what = "missing" if node is ... else f"{node!r}"[:60]
            raise TraceError(f"damaged trace: {meta_path}: {'.'.join(keys)} is {what}, expected {kind.__name__}")


class TraceWriter:
    """Streams a trace to disk chunk by chunk; `close()` renames the finished directory into place."""

    def __init__(self, target: Path, meta: dict, chunk_frames: int = 32,
                 resume: Callable[[Path], Resumed | None] | None = None) -> None:
        """`resume`: a callable (resume.adopt) that, under the lock, hands back the killed or interrupted
        trace to continue (a `Resumed`) or None; the writer then carries on after its last whole chunk."""
        self.target = Path(target)
        self.chunk_frames = chunk_frames
        self.meta = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, **meta,
                     "complete": False, "frames_recorded": 0,
                     "masks": {"chunk_frames": chunk_frames, "packing": "np.packbits, row-major, big bit order"}}
        self.layers: list[LayerInfo] = []
        self._masks: list[tuple[int, int, bytes]] = []
        self._frames: list[dict] = []
        self._thresholds: list[tuple[int, int, float, float]] = []
        self._chunk = 0
        self.frames_recorded = 0
        self.resumed: Resumed | None = None
        self.lock = OutputLock(self.target)   # before anything is written: one writer per output
        try:
            recover_swap(self.target)
            self.resumed = resume(self.target) if resume is not None else None
            if self.resumed is not None:
                self._continue(self.resumed)
            else:
                self.tmp = self._make_tmp_dir()
                (self.tmp / "masks").mkdir()
                (self.tmp / "frame-chunks").mkdir()
            write_json(self.tmp / "meta.json", self.meta)
        except BaseException:
            self.lock.release()
            raise

    def _continue(self, resumed: Resumed) -> None:
        """Carry on in the resumed trace's directory after its kept chunks, in its chunk size."""
        self.tmp, self.layers = resumed.tmp, list(resumed.layers)
        self._chunk, self.frames_recorded = resumed.chunks, resumed.frames
        self.chunk_frames = resumed.chunk_frames
        self._thresholds = _thresholds_before(resumed.tmp / "thresholds.parquet", resumed.frames)
        old = resumed.meta
        self.meta.update(started=old.get("started", self.meta.get("started")), frames_recorded=resumed.frames,
                         masks={**self.meta["masks"], "chunk_frames": resumed.chunk_frames},
                         resumed=[*old.get("resumed", []), {"frame": resumed.frames, "from": resumed.source,
                                                            "at": self.meta.get("started")}])
        self._remove_stale_partials()

    def _make_tmp_dir(self) -> Path:
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self._remove_stale_partials()
            prefix = f".{self.target.name}.partial-{os.getpid()}-"
            return Path(tempfile.mkdtemp(dir=self.target.parent, prefix=prefix))
        except OSError as e:
            raise TraceError(f"cannot write output directory {self.target}: {e.strerror}") from None

    def _remove_stale_partials(self) -> None:
        """Partial directories of writers that were killed (their process is gone) are removed."""
        for partial in self.target.parent.glob(f".{self.target.name}.partial-*-*"):
            pid = partial.name.rsplit(".partial-", 1)[1].split("-")[0]
            if pid.isdigit() and not _process_alive(int(pid)):
                shutil.rmtree(partial, ignore_errors=True)

    def set_layers(self, layers: Sequence[LayerInfo], graph: nx.DiGraph) -> None:
        self.layers = list(layers)
        table = pa.Table.from_pylist([asdict(layer) for layer in layers])
        write_table(self.tmp / "layers.parquet", table)
        data = nx.node_link_data(graph, edges="edges")
        write_json(self.tmp / "graph.json", data)

    def set_channels(self, layers: Sequence[LayerInfo], masks) -> None:
        """Static per-layer channel masks (structured channel sparsity): channels.parquet."""
        rows = [{"layer": layer.id, "name": layer.name, "kept_out": int(masks.out[layer.name].sum()),
                 "kept_in": int(masks.inp[layer.name].sum()), "out_bits": pack_mask(masks.out[layer.name]),
                 "in_bits": pack_mask(masks.inp[layer.name])} for layer in layers]
        write_table(self.tmp / "channels.parquet", pa.Table.from_pylist(rows))

    def add_thresholds(self, frame: int, values: Sequence[tuple[float, float]]) -> None:
        """(scale, threshold) per layer in layer-id order, set at `frame` (a dense one)."""
        self._thresholds.extend((frame, layer.id, scale, threshold)
                                for layer, (scale, threshold) in zip(self.layers, values))

    def _write_thresholds(self) -> None:
        if self._thresholds:
            frame, layer, scale, threshold = zip(*self._thresholds)
            write_table(self.tmp / "thresholds.parquet", pa.Table.from_arrays(
                [pa.array(frame, pa.int32()), pa.array(layer, pa.int16()), pa.array(scale, pa.float64()),
                 pa.array(threshold, pa.float64())], names=["frame", "layer", "scale", "threshold"]))

    def add_frame(self, frame: int, masks: Sequence[np.ndarray], row: dict[str, Any]) -> None:
        """Masks in layer-id order, each bool (out_h, out_w); `row` holds the frame's other columns."""
        for layer, mask in zip(self.layers, masks):
            self._masks.append((frame, layer.id, pack_mask(mask)))
            row[ACTIVE_PREFIX + layer.name] = float(mask.mean())
        self._frames.append({"frame": frame, **row})
        self.frames_recorded += 1
        if len(self._frames) >= self.chunk_frames:
            self._flush()

    def _flush(self) -> None:
        if not self._frames:
            return
        name = f"chunk-{self._chunk:06d}.parquet"
        frame, layer, bits = zip(*self._masks) if self._masks else ((), (), ())
        masks = pa.Table.from_arrays([pa.array(frame, pa.int32()), pa.array(layer, pa.int16()),
                                      pa.array(bits, pa.binary())], schema=MASK_SCHEMA)
        write_table(self.tmp / "masks" / name, masks)
        write_table(self.tmp / "frame-chunks" / name, pa.Table.from_pylist(self._frames))
        self._write_thresholds()  # small (dense frames x layers): rewritten whole, so a killed run keeps them
        self._masks, self._frames = [], []
        self._chunk += 1
        self.meta["frames_recorded"] = self.frames_recorded
        write_json(self.tmp / "meta.json", self.meta)

    def _merge_frames(self) -> None:
        """Concatenate the frame chunks into frames.parquet one chunk at a time (bounded memory)."""
        chunks = sorted((self.tmp / "frame-chunks").glob("chunk-*.parquet"))
        if chunks:
            schema = pq.read_schema(chunks[0])
            def write(tmp: str) -> None:
                with pq.ParquetWriter(tmp, schema) as out:
                    for chunk in chunks:
                        out.write_table(pq.read_table(chunk, schema=schema))
            write_atomic(self.tmp / "frames.parquet", write)
        shutil.rmtree(self.tmp / "frame-chunks")

    def close(self, complete: bool, status: str, **extra: Any) -> Path:
        self._flush()
        self._merge_frames()
        self._write_thresholds()
        self.meta.update(extra, complete=complete, status=status, frames_recorded=self.frames_recorded)
        write_json(self.tmp / "meta.json", self.meta)
        manifest_.write(self.tmp)  # last: a trace with a sound manifest is a finished one
        try:
            self._swap_into_place()
        finally:
            self.lock.release()
        return self.target

    def abort(self) -> None:
        """Drop what this run wrote; a killed writer's partial it was resuming goes back where it was found
        (with any whole chunks added), still there for the next --resume: a failed resume loses nothing."""
        try:
            if self.resumed is not None and self.resumed.source == "killed":
                os.replace(self.tmp, self.resumed.origin)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)
        finally:
            self.lock.release()

    def _swap_into_place(self) -> None:
        os.chmod(self.tmp, 0o777 & ~umask())
        _test_kill_point("swap")
        if self.target.exists() and not os.environ.get(NO_EXCHANGE_ENV) and exchange(self.tmp, self.target):
            _test_kill_point("swap-exchanged")
            # The partial directory now holds the old trace; manifest and all, so nobody resumes it.
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        old = None
        if self.target.exists():
            old = Path(tempfile.mkdtemp(dir=self.target.parent, prefix=f".{self.target.name}.old-"))
            os.replace(self.target, old / "trace")
            _test_kill_point("swap-old-moved")   # no target now: recover_swap puts the old one back
        os.replace(self.tmp, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _thresholds_before(path: Path, frames: int) -> list[tuple[int, int, float, float]]:
    """The relative thresholds a resumed trace recorded for the frames it keeps (none: an empty list)."""
    try:
        rows = pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError):
        return []
    return [(r["frame"], r["layer"], r["scale"], r["threshold"]) for r in rows if r["frame"] < frames]


def _test_kill_point(point: str) -> None:
    """Test hook: the kill tests die here, as a power cut or an OOM kill would, with SIGKILL."""
    if os.environ.get(KILL_AT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _old_dirs(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.old-*"))


def recover_swap(target: Path) -> None:
    """Call with the output lock held: a writer killed between its two renames left the old trace in
    `.NAME.old-X/trace` and no target; put it back. Old directories beside a target are only garbage."""
    for old in _old_dirs(target):
        if not target.exists() and (old / "trace").is_dir():
            os.replace(old / "trace", target)
        shutil.rmtree(old, ignore_errors=True)


def _recover_if_swap_was_cut(path: Path) -> None:
    """A reader finding no trace but an old one left mid-swap restores it (taking the writer's lock, so a
    writer between its renames right now is waited for by an 'in use' error, never raced)."""
    if path.exists() or not _old_dirs(path):
        return
    lock = OutputLock(path)
    try:
        recover_swap(path)
    finally:
        lock.release()


class Trace:
    """A trace read from disk. Tables load on first use; masks are read one chunk at a time."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.meta = read_meta(self.path)
        self.manifest = manifest_.quick_check(self.path)
        self._layers: list[LayerInfo] | None = None

    def __repr__(self) -> str:
        m = self.meta
        return (f"Trace({str(self.path)!r}, model={m['model']['name']!r}, gate={m['gate']['kind']!r}, "
                f"frames={m['frames_recorded']}, complete={m['complete']})")

    @property
    def complete(self) -> bool:
        return bool(self.meta["complete"])

    @property
    def num_frames(self) -> int:
        return int(self.meta["frames_recorded"])

    @property
    def layers_df(self) -> pd.DataFrame:
        return self._table("layers.parquet")

    def _table(self, rel: str) -> pd.DataFrame:
        """A parquet file of the trace; damage the open-time check cannot see is a one-line TraceError."""
        table = self._arrow(rel)
        try:
            return table.to_pandas()
        except (pa.ArrowException, ValueError) as e:   # e.g. a string column that is not UTF-8
            raise TraceError(f"damaged trace {self.path}: {rel}: {(str(e).splitlines() or [type(e).__name__])[0][:200]}") from None

    def _arrow(self, rel: str, schema: pa.Schema | None = None, verify: bool = False) -> pa.Table:
        try:
            table = pq.read_table(self._verified(rel) if verify else self.path / rel)
            table = table if schema is None else table.select(schema.names).cast(schema)
            if not verify:
                table.validate(full=True)   # e.g. strings that are not UTF-8 (pandas would fail on first use)
        except (pa.ArrowException, OSError) as e:  # before ValueError: ArrowInvalid is one
            raise TraceError(f"damaged trace {self.path}: {rel}: {(str(e).splitlines() or [type(e).__name__])[0]}") from None
        except (KeyError, ValueError, TypeError) as e:
            raise TraceError(f"damaged trace {self.path}: {rel}: wrong columns ({e})") from None
        wrong = _wrong_columns(table.schema, COLUMNS.get(rel, {}))
        if wrong:
            raise TraceError(f"damaged trace {self.path}: {rel}: {wrong}")
        return table

    def _verified(self, rel: str) -> pa.BufferReader:
        """The file's bytes, checked against the manifest's SHA-256 as they are read. The open-time check
        does not hash mask chunks (hours of video); a flipped bit that still parses would otherwise
        change results silently. Hashing the bytes about to be parsed costs little beside parsing them."""
        data = (self.path / rel).read_bytes()
        if hashlib.sha256(data).hexdigest() != self.manifest["files"][rel]["sha256"]:
            raise TraceError(f"damaged trace {self.path}: {rel}: contents differ from the manifest's SHA-256 "
                             f"(damaged or replaced); `sparsesim check {self.path}` lists every problem")
        return pa.BufferReader(data)

    def _listed(self, rel: str) -> bool:
        return rel in self.manifest["files"]

    @property
    def layers(self) -> list[LayerInfo]:
        if self._layers is None:
            names = [f.name for f in fields(LayerInfo)]
            rows = self.layers_df.to_dict("records")
            try:
                self._layers = [LayerInfo(**{k: row[k] for k in names}) for row in rows]
            except KeyError as e:
                raise TraceError(f"damaged trace {self.path}: layers.parquet: no column {e}") from None
        return self._layers

    def layer(self, key: int | str) -> LayerInfo:
        for layer in self.layers:
            if key in (layer.id, layer.name):
                return layer
        raise TraceError(f"no layer {key!r} in trace {self.path}")

    @property
    def frames(self) -> pd.DataFrame:
        # A trace that recorded no frame has no frames.parquet; the manifest says which case this is.
        return self._table("frames.parquet") if self._listed("frames.parquet") else pd.DataFrame({"frame": []})

    @property
    def active(self) -> pd.DataFrame:
        """Active fraction, frames x layers (columns are layer names)."""
        df = self.frames.set_index("frame")
        cols = [c for c in df.columns if c.startswith(ACTIVE_PREFIX)]
        active = df[cols].rename(columns=lambda c: c[len(ACTIVE_PREFIX):])
        if len(active) and set(active.columns) != {layer.name for layer in self.layers}:
            raise TraceError(f"damaged trace {self.path}: the active:<layer> columns of frames.parquet do not "
                             "name the layers of layers.parquet")
        return active

    @property
    def channels(self) -> pd.DataFrame | None:
        """Per layer: kept output and input channel counts and masks (None without channel sparsity)."""
        if not self._listed("channels.parquet"):
            return None
        df = self._table("channels.parquet")
        sizes = {layer.id: (layer.out_channels, layer.in_channels) for layer in self.layers}
        shapes = {i: (1, sizes[i][0]) for i in sizes}
        df["out_mask"] = [self._unpack("channels.parquet", "-", i, b, shapes)[0] for i, b in zip(df["layer"], df["out_bits"])]
        shapes = {i: (1, sizes[i][1]) for i in sizes}
        df["in_mask"] = [self._unpack("channels.parquet", "-", i, b, shapes)[0] for i, b in zip(df["layer"], df["in_bits"])]
        return df.drop(columns=["out_bits", "in_bits"])

    @property
    def thresholds(self) -> pd.DataFrame | None:
        """Per dense frame and layer: activation scale and effective threshold (None: absolute thresholds,
        or a trace that predates threshold modes, whose epsilon is meta['gate']['threshold'] everywhere)."""
        if not self._listed("thresholds.parquet"):
            return None
        return self._table("thresholds.parquet")

    @property
    def graph(self) -> nx.DiGraph:
        try:
            graph = nx.node_link_graph(json.loads((self.path / "graph.json").read_text()), edges="edges")
        except (OSError, ValueError, KeyError, TypeError, AttributeError, nx.NetworkXError) as e:
            raise TraceError(f"damaged trace {self.path}: graph.json: {str(e)[:200]}") from None
        ids = {layer.id for layer in self.layers}
        bad = [n for n, d in graph.nodes(data=True)
               if d.get("kind") == "layer" and not (type(d.get("layer_id")) is int and d["layer_id"] in ids)]
        if not graph.is_directed() or graph.is_multigraph() or bad:
            what = f"node {str(bad[0])[:60]!r} names no layer" if bad else "not a directed graph"
            raise TraceError(f"damaged trace {self.path}: graph.json: {what}")
        return graph

    def masks(self, layers: Sequence[int | str] | None = None) -> Iterator[MaskFrame]:
        """Every recorded mask in (frame, layer) order, lazily, optionally for some layers only."""
        wanted = None if layers is None else {self.layer(k).id for k in layers}
        shapes = {layer.id: (layer.out_h, layer.out_w) for layer in self.layers}
        for rel in sorted(r for r in self.manifest["files"] if r.startswith("masks/chunk-")):
            table = self._arrow(rel, MASK_SCHEMA, verify=True)
            frame, layer, bits = (table.column(c).to_pylist() for c in ("frame", "layer", "bits"))
            for f, lid, b in zip(frame, layer, bits):
                if wanted is None or lid in wanted:
                    yield MaskFrame(frame=f, layer=lid, mask=self._unpack(rel, f, lid, b, shapes))

    def _unpack(self, rel: str, frame: int, lid: int, bits: bytes | None, shapes: dict) -> np.ndarray:
        shape = shapes.get(lid)
        if shape is None or bits is None or len(bits) != -(-shape[0] * shape[1] // 8):
            raise TraceError(f"damaged trace {self.path}: {rel}: the mask of layer {lid} at frame {frame} "
                             "does not fit the layer's size")
        return unpack_mask(bits, shape)

    def layer_masks(self, key: int | str) -> np.ndarray:
        """All frames' masks of one layer as a bool array (frames, out_h, out_w)."""
        layer = self.layer(key)
        stack = [m.mask for m in self.masks([layer.id])]
        return np.stack(stack) if stack else np.zeros((0, layer.out_h, layer.out_w), bool)


def open(path: str | Path) -> Trace:  # noqa: A001  (the documented API name)
    """Open a trace directory written by `sparsesim trace`."""
    path = Path(path)
    _recover_if_swap_was_cut(path)
    if not path.is_dir():
        raise TraceError(f"no trace directory at {path}")
    return Trace(path)


def existing_identity(path: Path) -> dict | None:
    """The identity of the trace already at `path` (None if nothing is there)."""
    _recover_if_swap_was_cut(path)
    if not path.exists():
        return None
    if not path.is_dir():
        raise TraceError(f"output path {path} exists and is not a directory")
    if not any(path.iterdir()):
        return None
    try:
        return read_meta(path).get("identity")
    except TraceError:
        raise TraceError(f"output directory {path} is not empty and holds no sparsesim trace; "
                         "choose another -o") from None
