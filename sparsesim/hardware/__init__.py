"""Hardware descriptions: typed specs from `accel_models/*.yaml`, energy tables and the one energy
pricer, and the registry of hardware kinds (`sparsesim.hardware.kinds`).

    hw = sparsesim.hardware.load("h100")        # or a path to your own YAML
    table = sparsesim.hardware.energy_table(hw.energy_table)
"""
from . import kinds
from .energy import Access, EnergyTable, price
from .reader import energy_table, load, models_dir, names, parse_energy_table, parse_hardware
from .spec import DATAFLOWS, DTYPE_BITS, LEVEL_KINDS, Hardware, HardwareError, MemoryLevel, Tiling

__all__ = ["Access", "DATAFLOWS", "DTYPE_BITS", "EnergyTable", "Hardware", "HardwareError", "LEVEL_KINDS",
           "MemoryLevel", "Tiling", "energy_table", "kinds", "load", "models_dir", "names", "parse_energy_table",
           "parse_hardware", "price"]
