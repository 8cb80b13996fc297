"""The model zoo: a registry of name -> ModelSpec. Adding a model is one small file that calls
`register(ModelSpec(...))` and is imported below (the registry itself is `registry.py`). Models from
outside the zoo come through sources (`onnx:`, `torchscript:`, `python:`), each one file that calls
`register_source(Source(...))`."""
from .registry import (LoadedModel, ModelSpec, Source, canonical, check, check_fits, get, load,  # noqa: F401
                       names, package_file, register, register_source, slug, source_usages)
from . import mtcnn, realesr, rife  # noqa: E402,F401  (registers the zoo)
from . import onnx_file, torch_files  # noqa: E402,F401  (registers the sources: onnx:, torchscript:, python:)

__all__ = ["LoadedModel", "ModelSpec", "Source", "canonical", "check", "check_fits", "get", "load", "names",
           "package_file", "register", "register_source", "slug", "source_usages"]
