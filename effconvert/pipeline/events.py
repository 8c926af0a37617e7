"""Progress as typed events: what starts, and what finished with its own time and outcome.

The pipeline emits them; the CLI draws them (a spinner for `Started`, one line per `Done`), a
batch ignores them, an API caller may pass its own `on_event`. `seconds` is the step's own time
(a conversion's, a validation's), never the time since some other event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Status = Literal["ok", "failed", "warning"]


@dataclass(frozen=True)
class Started:
    what: str  # e.g. "converting tflite fp16"


@dataclass(frozen=True)
class Done:
    step: str  # load | inputs | fuse | calibrate | equalize | bias | sensitivity | convert | validate | fallback | skip
    message: str
    seconds: float | None = None  # the step's own time; None where it has none (a note)
    status: Status = "ok"
    artifact: str | None = None  # convert: the file it finished writing

    @property
    def failed(self) -> bool:
        return self.status == "failed"


Event = Started | Done
EventCallback = Callable[[Event], None]


def ignore(event: Event) -> None:
    """The default listener."""
