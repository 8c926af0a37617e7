"""The float-fallback policy: when an int8 artifact misses its gate, which layers go back to float.

The most int8-sensitive layers (sensitivity.py) first, in growing counts 1, 2, 4, ... up to a
quarter of the quantizable layers: beyond that, int8 is the wrong mode for the model and the
report says the gate was missed rather than shipping a mostly-float "int8" artifact. The pipeline
runs the attempts (convert + validate on the runtime); this module only decides them.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from .sensitivity import LayerSensitivity

MAX_FRACTION = 0.25


def attempts(ranking: Sequence[LayerSensitivity]) -> Iterator[tuple[str, ...]]:
    """The float-layer sets to try, smallest first."""
    limit = max(1, int(len(ranking) * MAX_FRACTION))
    count = 1
    while count <= limit:
        yield tuple(s.name for s in ranking[:count])
        count *= 2
