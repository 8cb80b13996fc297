"""Other tools' files: Timeloop/Accelergy/Sparseloop (`interop.timeloop`: export, stats, run) and
SCALE-Sim's topology and config files (`interop.scalesim`). Timeloop architectures are read as
hardware by `sparsesim.hardware.timeloop`."""
