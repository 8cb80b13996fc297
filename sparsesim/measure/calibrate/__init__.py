"""`sparsesim calibrate`: measure a machine and write its hardware description.

- `probes`: what is timed (copies per memory level, the indexed gather and scatter, per-call overheads,
  a grid of convs) and the plan of probes for a device;
- `clock`: the Clock protocol: the wall clock (CPU), CUDA events (GPU), a scripted clock (tests);
- `kernels`: the torch calls that run each probe (torch is imported only here and when a device opens);
- `devices`: the registered device profiles (cpu, cuda): plan, base description, YAML keys;
- `run`: `run_calibrate`: probes -> figures -> the YAML (comments kept), the conv-efficiency table the
  CPU latency model reads (`sparsesim.hardware.conv_table`) and a table of every probe, atomically.
"""
from __future__ import annotations

from .run import CalibrateOptions, Calibration, run_calibrate

__all__ = ["CalibrateOptions", "Calibration", "run_calibrate"]
