"""A Core ML ML Program executor for Linux: reads a saved `.mlpackage` and runs its MIL program
in torch, so Core ML parity is measured from the artifact itself without a Mac."""

from .executor import MILExecutor, UnsupportedProgram
from .ops import OPS
from .program import MAX_CORE_ML_RANK, Program, load_program, rank_violations

__all__ = [
    "MAX_CORE_ML_RANK",
    "OPS",
    "MILExecutor",
    "Program",
    "UnsupportedProgram",
    "load_program",
    "rank_violations",
]
