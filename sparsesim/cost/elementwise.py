"""Element-wise data-space sparsity, in Sparseloop's terms: densities of Inputs, Weights and Outputs,
compute and weight reads gated where the input is zero, compressed DRAM traffic.

This is a second kind of sparsity beside sparsesim's spatial block skipping: what a zero-gating
accelerator (Eyeriss v1) does with activations that are mostly zero. It reuses the dense traffic of
the stated mapping and scales the accesses the optimisations remove; the time is the slowest of the
gated compute, the register-file reads that gating does not remove, and the (compressed) DRAM traffic.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..hardware import EnergyTable, Hardware
from ..workload import Geometry, dense_work, traffic
from ..workload.traffic import RF_PER_MAC
from .energy import energy
from .latency import latency


@dataclass(frozen=True)
class DataSpaceSparsity:
    inputs: float = 1.0
    weights: float = 1.0
    outputs: float = 1.0
    gate_on_inputs: bool = True                     # no MAC and no weight read where the input is zero
    compressed_dram: tuple[str, ...] = ("inputs", "outputs")

    def scales(self) -> dict[tuple[str, str], float]:
        density = {"inputs": self.inputs, "weights": self.weights, "outputs": self.outputs}
        out = {("dram", kind): density[kind] for kind in self.compressed_dram}
        if self.gate_on_inputs:
            out.update({("mac", "compute"): self.inputs, ("rf", "weights"): self.inputs})
        return out


def elementwise_costs(geo: Geometry, hw: Hardware, table: EnergyTable, s: DataSpaceSparsity) -> dict[str, np.ndarray]:
    """Cycles, seconds and energy (total, by level kind) of a dense layer run with element-wise sparsity."""
    work = dense_work(geo)
    moved = traffic(geo, hw, work)
    steps = latency(geo, hw, work, moved=moved)
    gate = s.inputs if s.gate_on_inputs else 1.0
    compute = steps["t_util"] * gate
    utilisation = steps["t_peak"] / steps["t_util"]             # the PEs the mapping keeps busy
    input_reads = work.macs * RF_PER_MAC[hw.tiling.dataflow].get("inputs", 0)  # not removed by gating
    rf_words_per_s = _input_read_rate(hw) * utilisation
    reads = input_reads / rf_words_per_s
    kernel = moved.kernel
    density = {"inputs": s.inputs, "weights": s.weights, "outputs": s.outputs}
    compressed = sum(v * (density[k] if k in s.compressed_dram else 1.0) for k, v in kernel.items() if k in density)
    memory = compressed * hw.word_bytes / hw.levels[0].bandwidth
    seconds = np.maximum.reduce([compute, reads, memory])
    out = energy(geo, hw, table, work, s.scales(), moved)
    return {"seconds": seconds, "cycles": seconds * hw.clock_hz, "macs_actual": work.macs * gate,
            "t_compute": compute, "t_rf_reads": reads, "t_memory": memory, **out}


def _input_read_rate(hw: Hardware) -> float:
    """Words/s the PEs can read inputs from their register files: the input scratchpad's own read
    bandwidth where the architecture says it, else an even share of the register-file level's."""
    per_pe = dict(getattr(hw.part, "rf_read_words", ())).get("inputs")
    if per_pe is not None:
        return per_pe * hw.units * hw.clock_hz
    rf = hw.level("rf")
    return rf.bandwidth / hw.word_bytes / len(RF_PER_MAC[hw.tiling.dataflow]) if rf else np.inf
