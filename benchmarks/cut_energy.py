"""Scene-cut energy of the sample videos: per frame, the mean squared difference from the previous frame
(RGB in [0, 1], native size), the statistic `sparsesim trace --cut-threshold` compares (gate_config's
DEFAULT_CUT_THRESHOLD was chosen from these figures).

    PYTHONPATH=. python benchmarks/cut_energy.py carphone_pristine bikes bigbuckbunny
"""
import sys

import numpy as np

from sparsesim.trace import video


def energies(name: str) -> tuple[video.VideoInfo, list[tuple[int, float]]]:
    path = video.resolve_video(f"sample:{name}")
    info = video.probe(path)
    prev, out = None, []
    for i, f in enumerate(video.frames(path, 0, None, (info.width, info.height), info.frame_count)):
        x = f.astype(np.float64) / 255.0
        if prev is not None:
            out.append((i, float(np.mean((x - prev) ** 2))))
        prev = x
    return info, out


def main(names: list[str]) -> None:
    for name in names:
        info, out = energies(name)
        e = np.array([v for _, v in out])
        print(f"{name} {info.width}x{info.height} frames {len(out) + 1} median {np.median(e):.5f} "
              f"p90 {np.percentile(e, 90):.5f} max {e.max():.5f}")
        print("  top:", " ".join(f"{i}:{v:.5f}" for i, v in sorted(out, key=lambda t: -t[1])[:20]))


if __name__ == "__main__":
    main(sys.argv[1:] or ["carphone_pristine", "bikes", "bigbuckbunny"])
