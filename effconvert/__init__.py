"""effconvert: a trained efficient-ViT checkpoint in, a phone-ready artifact and a parity report out.

    import effconvert
    result = effconvert.convert("fastvit_s12.pth", targets=["coreml", "tflite"], quants=["fp16"])
    print(result.passed, result.files)

The API lives in api.py and is imported on first use, so `import effconvert` (and the CLI's
option checks) stay fast: torch and the converters load only when a stage needs them.

`effconvert.convert`, `.load`, `.fuse` and `.validate` are the API's functions, although stage
packages of the same names exist: Python would otherwise replace each function by its package as
soon as the package is imported. The stages stay importable by their full names
(`from effconvert.convert import ExportOptions`).
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import BadInput, ConversionFailed, EffconvertError, ParityFailed
from .offline import stay_offline

stay_offline()  # before anything can import onnxruntime (see offline.py)

if TYPE_CHECKING:  # for type checkers and IDEs only
    from .api import Result as Result
    from .api import convert as convert
    from .api import fuse as fuse
    from .api import load as load
    from .api import validate as validate
    from .report.schema import ArtifactReport as ArtifactReport
    from .report.schema import Report as Report

_SHADOWED = ("convert", "load", "fuse", "validate")  # API functions named like stage packages
_LAZY = {"Result": "api", "Report": "report.schema", "ArtifactReport": "report.schema"}
__all__ = ["__version__", "EffconvertError", "BadInput", "ConversionFailed", "ParityFailed", *_SHADOWED, *_LAZY]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'effconvert' has no attribute {name!r}")


def _api_function(name: str) -> property:
    def get(module: types.ModuleType) -> object:
        from . import api

        return getattr(api, name)

    def keep_function(module: types.ModuleType, value: object) -> None:
        # The import system sets a newly imported stage package here; the function stays.
        if not isinstance(value, types.ModuleType):
            raise AttributeError(f"effconvert.{name} is the API function and cannot be replaced")

    return property(get, keep_function)


class _Package(types.ModuleType):
    pass


for _name in _SHADOWED:
    setattr(_Package, _name, _api_function(_name))
sys.modules[__name__].__class__ = _Package
