"""The cycle-level simulators: event-level (folds, buffer chunks, tiles, waves), vectorised with numpy.

- `systolic`: weight/output/input-stationary systolic arrays with double-buffered SRAMs and DRAM
  bandwidth limits (`simulate_gemm(Gemm, SystolicConfig) -> SystolicResult`);
- `spatial`: a row-stationary array whose PE sets take active blocks (`simulate_spatial`);
- `gpu`: implicit-GEMM thread blocks scheduled onto SMs in waves (`simulate_gpu`);
- `scalesim`: SCALE-Sim's topology CSV and .cfg files, and its report terms (`scalesim.run`).
`sparsesim.simulating.run_simulate` runs them over a trace beside the analytical model.
"""
from .gpu import GpuResult, simulate_gpu
from .spatial import SpatialResult, simulate_spatial
from .systolic import Gemm, SystolicConfig, SystolicResult, simulate_gemm

__all__ = ["Gemm", "GpuResult", "SpatialResult", "SystolicConfig", "SystolicResult", "simulate_gemm",
           "simulate_gpu", "simulate_spatial"]
