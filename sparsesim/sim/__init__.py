"""The cycle-level simulators: event-level (folds, buffer chunks, tiles, waves), vectorised with numpy.

- `systolic` (with `buffers`): weight/output/input-stationary systolic arrays with double-buffered
  SRAMs and DRAM bandwidth limits (`simulate_gemm(Gemm, SystolicConfig) -> SystolicResult`);
- `spatial`: a row-stationary array whose PE sets take active blocks (`simulate_spatial`);
- `gpu`: implicit-GEMM thread blocks scheduled onto SMs in waves (`simulate_gpu`);
- `layer`: one layer through its kind's simulator (a registry by name), a typed `SimResult`, priced
  by the one energy pricer; `run`: `sparsesim simulate` over a trace beside the analytical model.
SCALE-Sim's own files are read by `sparsesim.interop.scalesim`.
"""
from .gpu import GpuResult, simulate_gpu
from .layer import SIMULATORS, SimResult, register_simulator, simulate_layer, simulate_maps
from .run import SimulateOptions, SimulateResult, run_simulate
from .spatial import SpatialResult, simulate_spatial
from .systolic import Gemm, SystolicConfig, SystolicResult, simulate_gemm

__all__ = ["Gemm", "GpuResult", "SIMULATORS", "SimResult", "SimulateOptions", "SimulateResult", "SpatialResult",
           "SystolicConfig", "SystolicResult", "register_simulator", "run_simulate", "simulate_gemm", "simulate_gpu",
           "simulate_layer", "simulate_maps", "simulate_spatial"]
