"""glibc's heap, set once per process for the executor's pattern of allocations.

A forward pass allocates and frees buffers of a few hundred KB to a few MB, op after op. With
glibc's defaults the mmap threshold is dynamic: the first large buffer is mapped, and freeing it
raises the threshold to its size, so from then on such buffers come from the heap, where the order
of a run's allocations leaves holes a slightly larger buffer cannot use. FastViT-S12's second run
grew the heap by another 0.6–8.8 MB, a different amount in every process (23–46 MB beyond the fixed
cost over ten processes, for a 19 MB package). With the threshold fixed at 1 MiB, a buffer of 1 MiB
or more that the heap's free space cannot hold is mapped (and given back at free) instead of
growing the heap, every run alike: S12 23–27 MiB in every process. The trim threshold is fixed with
it (setting one disables the dynamic adjustment of both) at 32 MiB: at glibc's 128 KiB the heap's
top was given back and faulted in again on every run, which made runs slower than with the
defaults.

Both are process-wide settings (man 3 mallopt), so a library must not make them for its caller:
`settle()` is called by the processes effconvert owns — the CLI, the bench's measuring child, the
pipeline's second process — and by a caller who opts in. Not glibc (macOS, musl): nothing changes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

MMAP_THRESHOLD = 1 << 20  # bytes: a buffer this large never grows the heap
TRIM_THRESHOLD = 32 << 20  # bytes of free heap top kept rather than given back

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_THRESHOLD = -3

_settled: bool | None = None


def settle() -> bool:
    """Fix glibc's mmap and trim thresholds, once per process. True when they are set (glibc)."""
    global _settled
    if _settled is None:
        _settled = _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return _settled


def _mallopt(option: int, value: int) -> bool:
    if not GLIBC:
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return bool(libc.mallopt(option, value))
