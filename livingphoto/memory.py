"""Allocator settings for a short-lived process that handles big arrays (``animate``)."""

from __future__ import annotations

import ctypes
import sys

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

_SETTINGS = (
    (M_MMAP_THRESHOLD, 32 << 20),  # blocks up to 32 MB come from the heap, not fresh mappings
    (M_TRIM_THRESHOLD, 1 << 30),  # freed heap memory is kept for reuse, not handed back
    (M_TOP_PAD, 64 << 20),  # the heap grows 64 MB at a time
)


def reuse_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory and reuse it instead of mapping fresh pages.

    By default glibc serves big blocks (a take's frames, a warp field: 1-60 MB) from fresh
    mappings and hands freed memory straight back to the kernel, so every new array costs a
    page fault and a zeroed page per 4 KB. Measured on ``livingphoto animate`` (3 takes at
    512 px, 2 cores): about 14 000 fewer page faults in the command's process (45 000 ->
    31 000), 0.03-0.08 s less CPU. For a process that exits after one job: freed memory stays
    with it until it exits (its peak does not change). Returns whether the settings applied
    (glibc on Linux; elsewhere nothing changes).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl or another C library: leave it alone
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(mallopt(parameter, value) == 1 for parameter, value in _SETTINGS)
