"""sparsesim: hardware-aware analysis of dynamic spatial sparsity in video networks.

Pipeline: video -> trace -> workload -> cost/sim -> report. See README.md.
"""
__version__ = "0.1.0"
