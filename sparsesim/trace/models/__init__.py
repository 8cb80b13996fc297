"""The model zoo: a registry of name -> ModelSpec. Adding a model is one small file that calls
`register(ModelSpec(...))` and is imported below (the registry itself is `registry.py`)."""
from .registry import (LoadedModel, ModelSpec, check_fits, get, load, names, package_file,  # noqa: F401
                       register)
from . import mtcnn, realesr, rife  # noqa: E402,F401  (registers the zoo)

__all__ = ["LoadedModel", "ModelSpec", "check_fits", "get", "load", "names", "package_file", "register"]
