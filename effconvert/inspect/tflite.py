"""`effconvert inspect` of a TFLite flatbuffer: tensors, ops and effconvert's metadata."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..errors import BadInput


def rows(path: Path) -> tuple[list[tuple[str, str]], dict[str, str]]:
    from ai_edge_litert.interpreter import Interpreter

    from ..convert.tflite_metadata import read_metadata
    from ..quiet import quiet_native_stderr

    try:
        with quiet_native_stderr():
            interpreter = Interpreter(model_path=str(path))
        meta = read_metadata(path)
    except Exception as exc:  # the interpreter raises ValueError/RuntimeError for a damaged file
        raise BadInput(f"not a readable TFLite model: {path.name}") from exc

    def describe(details) -> str:
        return ", ".join(f"{d['name']} {[int(v) for v in d['shape']]} {d['dtype'].__name__}" for d in details)

    ops = Counter(op["op_name"] for op in interpreter._get_ops_details())
    return [
        ("inputs", describe(interpreter.get_input_details())),
        ("outputs", describe(interpreter.get_output_details())),
        ("ops", ", ".join(f"{k} {v}" for k, v in ops.most_common())),
        ("size", f"{path.stat().st_size / 1e6:.2f} MB"),
    ], meta
