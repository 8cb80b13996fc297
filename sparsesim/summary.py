"""Plain-text summary of a trace (`sparsesim info`)."""
from __future__ import annotations

import numpy as np

from .trace import Trace


def describe(trace: Trace) -> str:
    m = trace.meta
    frames = trace.frames
    active = trace.active
    layers = trace.layers_df
    psnr = frames["psnr_db"].replace(np.inf, np.nan).dropna() if "psnr_db" in frames else frames.iloc[:0]
    lines = [
        f"trace      {trace.path}  ({'complete' if trace.complete else 'INCOMPLETE: ' + m.get('status', '')})",
        f"video      {m['video']['name']}  {m['video']['size'][0]}x{m['video']['size'][1]}  "
        f"from frame {m['video']['start']}",
        f"model      {m['model']['name']}  ({len(layers)} gated layers, "
        f"{layers['dense_macs'].sum() / 1e9:.3f} GMAC per frame dense)",
        f"gate       {m['gate']['label']}",
        f"frames     {trace.num_frames}",
    ]
    if len(active):
        macs = layers.set_index("name")["dense_macs"]
        weighted = float((active * macs[active.columns]).sum(axis=1).mean() / macs.sum())
        lines.append(f"active     {float(active.to_numpy().mean()):.3f} mean over layers and frames; "
                     f"{weighted:.3f} of dense MACs")
    if len(psnr):
        lines.append(f"quality    PSNR gated vs dense: mean {psnr.mean():.2f} dB, min {psnr.min():.2f} dB "
                     f"over {len(psnr)} checked frames")
    return "\n".join(lines)
