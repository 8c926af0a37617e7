"""`effconvert inspect` of an ExecuTorch program: I/O, delegate coverage, methods and effconvert's metadata."""

from __future__ import annotations

from pathlib import Path

from ..errors import BadInput


def rows(path: Path) -> tuple[list[tuple[str, str]], dict[str, str]]:
    from ..convert.metadata import read_provenance
    from ..runtime.executorch import program_summary

    try:
        summary = program_summary(path)
        meta = read_provenance(path)
    except Exception as exc:  # the flatbuffer reader raises many types for a file that is not a program
        raise BadInput(f"not a readable ExecuTorch program: {path.name}") from exc
    portable = sum(summary.portable_calls.values())
    return [
        ("inputs", ", ".join(f"input {shape} float32" for shape in summary.inputs)),
        ("outputs", ", ".join(f"logits {shape} float32" for shape in summary.outputs)),
        ("delegates", ", ".join(f"{name} x{n}" for name, n in summary.backends.items()) or "none"),
        (
            "coverage",
            f"{summary.delegate_calls} delegate call(s), {portable} portable-kernel call(s)"
            + (": " + ", ".join(f"{op} {n}" for op, n in summary.portable_calls.items()) if portable else ""),
        ),
        ("methods", ", ".join(summary.methods)),
        ("size", f"{path.stat().st_size / 1e6:.2f} MB"),
    ], meta
