"""No network after installing: the one switch a dependency needs.

onnxruntime (1.29 and later, Linux included) sends usage telemetry to Microsoft from a native
thread, starting with a DNS lookup of its events host as soon as its environment is created
(microsoft/onnxruntime#27379). `ORT_DISABLE_TELEMETRY=1` is its full opt-out, read once, when
that environment is created (microsoft/onnxruntime#29843), so it is set when effconvert is
imported, before any module of ours can import onnxruntime. A value the user set is kept.
Checked by tests/test_hostile_inputs.py: a conversion to every onnxruntime-run target under
strace opens no internet socket.
"""

from __future__ import annotations

import os

SWITCHES = {"ORT_DISABLE_TELEMETRY": "1"}


def stay_offline() -> None:
    for name, value in SWITCHES.items():
        os.environ.setdefault(name, value)
