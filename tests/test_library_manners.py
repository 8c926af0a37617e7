"""A library call leaves the caller's process as it was (design.md, "library manners"): after
`effconvert.convert()` and `effconvert.validate()` return — a Core ML artifact run in the caller's
own process by the MIL executor included — the temporary-file folder, the environment, the signal
handlers, the child processes and glibc's allocator thresholds are what they were before, but for
ORT_DISABLE_TELEMETRY=1, which `import effconvert` sets unless the caller did (offline.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from effconvert.runtime.mil.heap import GLIBC

CALLER = """
import ctypes, json, os, signal, sys, tempfile

def children():
    found = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            found |= {int(p) for p in f.read().split()}
    return sorted(found)

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def mapped_while_held(size):
    # glibc's dynamic mmap threshold (untouched): after a 4 MiB free, 3 MiB comes from the heap (0 mapped);
    # effconvert's settled heap (runtime/mil/heap.py) would map it.
    libc.free(libc.malloc(4 << 20))
    before = libc.mallinfo2().hblkhd
    pointer = libc.malloc(size)
    grown = libc.mallinfo2().hblkhd - before
    libc.free(pointer)
    return grown

def state():
    return {"tempdir": tempfile.gettempdir(), "tempfile.tempdir": tempfile.tempdir, "environ": dict(os.environ),
            "children": children(), "sigint": str(signal.getsignal(signal.SIGINT)),
            "sigterm": str(signal.getsignal(signal.SIGTERM)), "mapped_3mib": mapped_while_held(3 << 20)}

before = state()
import effconvert

checkpoint, out = sys.argv[1], sys.argv[2]
result = effconvert.convert(checkpoint, targets=["coreml"], quants=["fp16"], out=out, samples=2)
package = result.files[0]
check = effconvert.validate(package, effconvert.load(checkpoint), quant="fp16")
after = state()
print(json.dumps({"before": before, "after": after, "runtime": check.runtime, "exit": result.exit_code}))
"""


@pytest.mark.slow  # 32 s of repeated conversions: `make test-slow` (the default suite's 10-minute budget)
@pytest.mark.skipif(not GLIBC or sys.platform != "linux", reason="reads /proc and glibc's mallinfo2")
def test_convert_and_validate_leave_the_callers_process_as_it_was(tmp_path, small_t8):
    done = subprocess.run(
        [sys.executable, "-c", CALLER, str(small_t8.checkpoint), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["runtime"] == "coreml-mil-executor" and seen["exit"] in (0, 1)  # the executor ran in the caller
    before, after = seen["before"], seen["after"]
    assert after["mapped_3mib"] == before["mapped_3mib"] == 0  # glibc's thresholds untouched
    # The one deliberate change, made by `import effconvert` (effconvert/offline.py): onnxruntime's
    # telemetry off, unless the caller set the variable.
    assert after.pop("environ") == before.pop("environ") | {"ORT_DISABLE_TELEMETRY": "1"}
    assert after == before
