"""User-facing errors: each one is printed as a single line by the CLI, never a traceback."""


class SparsesimError(Exception):
    """A problem with the user's input or environment, worded so that they can fix it."""


class VideoError(SparsesimError):
    """The video cannot be found, opened or decoded."""


class ModelError(SparsesimError):
    """Unknown model, missing weights, or a checkpoint that does not fit the model."""


class TraceError(SparsesimError):
    """A trace directory that cannot be written, or read by this version of sparsesim."""
