"""SIGINT and SIGTERM for the command line, honoured even inside third-party code that swallows them.

Python turns a signal into an exception where the main thread happens to be. Converters catch
everything there: coremltools imports its optional dependencies (executorch, torchao: seconds of
work) and runs many of its passes under a bare `except:` (51 of them in coremltools 9), so an
interrupt raised there is swallowed and the run goes on to exit 0 (Python itself swallows one
raised in a finaliser or a weakref callback, printing "Exception ignored in"). Calls into such code run
inside `third_party()`: a signal received there is raised again every half second until it leaves
the call, and raised on the way out if the call returned anyway; one swallowed by Python is raised
again (`sys.unraisablehook`), without the traceback. Outside those calls, and once
effconvert's own code has the exception (its `finally` blocks are cleaning up), a repeated signal
is not raised again: cleanup is not cut short.

Only the CLI installs the handlers (`install()`); a library caller keeps its own, and then
`third_party()` changes nothing.
"""

from __future__ import annotations

import _thread
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

INTERRUPT_EXITS = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal, as shells report it
REDELIVER_S = 0.5


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every `finally` (temporary folders, locks) runs."""

    exit_code = 143


class _State:
    installed = False
    pending: int | None = None  # the first signal received
    seen = False  # effconvert's own code has the exception
    depth = 0  # third_party() calls the main thread is inside
    redelivering = False
    previous_unraisable: Callable[[Any], object] = sys.__unraisablehook__


_state = _State()
_lock = threading.RLock()  # re-entrant: the handler runs in the main thread, maybe inside `with _lock`


def install(*, sigint: bool = True) -> None:
    """The CLI's handlers for SIGINT and SIGTERM (a shell starts background jobs with SIGINT
    ignored, and Python then keeps ignoring it: the interrupt contract holds however we started).
    A batch worker passes sigint=False: Ctrl-C reaches the process group, and its driver decides."""
    signal.signal(signal.SIGINT, _handler if sigint else signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _handler)
    _state.previous_unraisable = sys.unraisablehook
    sys.unraisablehook = _unraisable
    _state.installed = True


def exception_for(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def signal_of(exc: KeyboardInterrupt) -> signal.Signals:
    return signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT


def _handler(signum: int, frame: FrameType | None) -> None:
    with _lock:
        if _state.pending is None:
            _state.pending = signum
        if _state.seen:
            return  # our cleanup is running: a repeated signal must not cut it short
        if _state.depth == 0:
            _state.seen = True
        else:
            _redeliver_soon()
        pending = _state.pending
    raise exception_for(pending)


def _unraisable(info: Any) -> None:
    """Python swallows an exception raised in a finaliser or a weakref callback, printing it as
    "Exception ignored in": when it is our signal's, it is lost, not printed: raise it again."""
    if isinstance(info.exc_value, KeyboardInterrupt) and _state.pending is not None:
        with _lock:
            _state.seen = False
            _redeliver_soon()
        return
    _state.previous_unraisable(info)


def _redeliver_soon() -> None:
    if not _state.redelivering:
        _state.redelivering = True
        threading.Thread(target=_redeliver, name="effconvert-redeliver", daemon=True).start()


def _redeliver() -> None:
    """Raise the pending signal again in the main thread until effconvert's own code has it (it
    left the third-party call, or the finaliser that swallowed it)."""
    while True:
        time.sleep(REDELIVER_S)
        with _lock:
            if _state.seen or _state.pending is None:
                _state.redelivering = False
                return
            signum = _state.pending
        _thread.interrupt_main(signal.Signals(signum))


@contextlib.contextmanager
def third_party() -> Iterator[None]:
    """Run a call into code that may swallow KeyboardInterrupt (see the module docstring)."""
    if not _state.installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    with _lock:
        _state.depth += 1
    try:
        yield
    except KeyboardInterrupt:
        with _lock:
            _state.seen = True
        raise
    finally:
        with _lock:
            _state.depth -= 1
    with _lock:
        swallowed = _state.pending is not None and not _state.seen
        if swallowed:
            _state.seen = True
        pending = _state.pending
    if swallowed and pending is not None:
        raise exception_for(pending)
