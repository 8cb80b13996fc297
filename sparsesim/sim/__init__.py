"""The cycle-level simulators: event-level (folds, buffer chunks, tiles, waves), vectorised with numpy.

- `systolic` (with `buffers`): weight/output/input-stationary systolic arrays with double-buffered
  SRAMs and DRAM bandwidth limits (`simulate_gemm(Gemm, SystolicConfig) -> SystolicResult`);
- `spatial`: a row-stationary array whose PE sets take active blocks (`simulate_spatial`);
- `gpu`: implicit-GEMM thread blocks scheduled onto SMs in waves (`simulate_gpu`);
- `layer`: one layer through its kind's simulator (a registry by name), a typed `SimResult`, priced
  by the one energy pricer; `run`: `sparsesim simulate` over a trace beside the analytical model.
SCALE-Sim's own files are read by `sparsesim.interop.scalesim`.
"""
from importlib import import_module

# Exports load on first use, so that `sparsesim.sim.systolic` (SCALE-Sim's files, the light CLI path)
# does not pull in the trace, workload and GPU modules.
_EXPORTS = {"GpuResult": "gpu", "simulate_gpu": "gpu", "SIMULATORS": "layer", "SimResult": "layer",
            "register_simulator": "layer", "simulate_layer": "layer", "simulate_maps": "layer",
            "SimulateOptions": "run", "SimulateResult": "run", "run_simulate": "run", "SpatialResult": "spatial",
            "simulate_spatial": "spatial", "Gemm": "systolic", "SystolicConfig": "systolic",
            "SystolicResult": "systolic", "simulate_gemm": "systolic"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
