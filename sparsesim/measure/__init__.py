"""Measured kernel timings: dense conv vs block-sparse gather -> conv -> scatter (`sparsesim measure`)."""
from .kernels import ConvShape
from .runner import MeasureOptions, run_measure

__all__ = ["ConvShape", "MeasureOptions", "run_measure"]
