"""Time spent inside the third-party converters, apart from effconvert's own work around them.

`effconvert bench` compares the pipeline's wall time with the sum of the raw converter calls it
makes; each exporter wraps exactly those calls (trace, convert, serialise) in `clock.running()`,
and the first import of the converter's package (a script calling the converter directly pays it
too). effconvert's own work — graph rewrites, simplification, metadata, checks — stays outside.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


class Stopwatch:
    def __init__(self) -> None:
        self.seconds = 0.0

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start
