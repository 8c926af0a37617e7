"""The MIL executor's heap setting (runtime/mil/heap.py): a buffer of 1 MiB or more never grows the
heap, however the process allocated before, so a run's peak does not depend on the order of earlier frees."""

from __future__ import annotations

import subprocess
import sys

import pytest

from effconvert.runtime.mil.heap import GLIBC

# In a fresh interpreter: once a 4 MiB buffer was freed, glibc's dynamic threshold lets smaller ones
# grow the heap (the 1.5 MiB one). Then a 3 MiB buffer, more than the heap's free space: mapped only
# when settled (mallinfo2's hblkhd: bytes mapped). A 512 KiB one comes from the free space either way.
PROBE = """
import ctypes, sys
from effconvert.runtime.mil import heap

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def mapped_while_held(size):
    before = libc.mallinfo2().hblkhd
    pointer = libc.malloc(size)
    grown = libc.mallinfo2().hblkhd - before
    libc.free(pointer)
    return grown

libc.free(libc.malloc(4 << 20))
first = mapped_while_held(3 << 19)
settled = heap.settle() if sys.argv[1] == "settle" else False
print(first, settled, mapped_while_held(3 << 20), mapped_while_held(512 << 10))
"""


def _probe(mode: str) -> tuple[int, str, int, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout
    first, settled, large, small = out.split()
    return int(first), settled, int(large), int(small)


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt")
def test_a_large_buffer_is_mapped_rather_than_grow_the_heap_once_settled():
    first, settled, large, small = _probe("settle")
    assert first == 0  # glibc's dynamic threshold: on the heap, the spread's cause
    assert settled == "True" and large >= 3 << 20 and small == 0
    first, settled, large, small = _probe("default")
    assert settled == "False" and large == 0 and small == 0  # without it, the 3 MiB grew the heap
